"""Kafka -> bronze against the real broker and real Spark with Delta."""

import json
import subprocess

import pytest

from redline import catalog
from redline.cli import main
from redline.config import load
from redline.streaming.kafka_options import topic_name
from redline.streaming.producer import ensure_topics

pytestmark = pytest.mark.integration


def test_console_producer_line_lands_in_bronze(cfg, spark, kafka_broker, lake, monkeypatch,
                                               tmp_path):
    # Own topics and lake, so other tests' events and tables are not mixed in.
    monkeypatch.setenv("REDLINE_KAFKA_TOPIC_PREFIX", "console-test.")
    monkeypatch.setenv("REDLINE_LAKE_ROOT", lake)
    cfg = load()
    ensure_topics(cfg)
    line = json.dumps({"event_id": "console-1", "event_time": "2026-02-01T10:00:00Z",
                       "schema_version": 1, "vin": "RDLCONSOLE0000001", "odometer_km": 12.5})
    # Kafka's own tool logs in as `producer` with the file `redline kafka client-config`
    # writes (private to its owner: it holds the password).
    settings = tmp_path / "producer.properties"
    assert main(["kafka", "client-config", "--user", "producer", "--out", str(settings)]) == 0
    assert settings.stat().st_mode & 0o777 == 0o600
    cmd = kafka_broker.java("org.apache.kafka.tools.ConsoleProducer",
                            "--bootstrap-server", cfg.kafka.servers,
                            "--command-config", str(settings),
                            "--topic", topic_name(cfg, "vehicle_telemetry"))
    done = subprocess.run(cmd, input=line + "\n", text=True, capture_output=True, timeout=120)
    assert done.returncode == 0, done.stderr

    assert main(["ingest", "--available-now", "--topics", "vehicle_telemetry"]) == 0

    bronze = catalog.read(spark, cfg.lake_root, catalog.bronze("vehicle_telemetry"))
    rows = bronze.where(bronze.value.cast("string") == line).collect()
    assert len(rows) == 1
    assert rows[0].topic == "console-test.vehicle_telemetry"
    assert rows[0].offset >= 0 and rows[0].ingest_time is not None

    # Ingest again: nothing new in Kafka, nothing new in bronze (checkpointed).
    before = bronze.count()
    assert main(["ingest", "--available-now", "--topics", "vehicle_telemetry"]) == 0
    assert catalog.read(spark, cfg.lake_root, catalog.bronze("vehicle_telemetry")).count() == before
