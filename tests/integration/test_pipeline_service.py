"""Drills of the continuous pipeline service against the real broker, Spark with Delta and
a local webhook. (A record produced with Kafka's console producer reaching gold and the
webhook by itself, the status and a clean stop are in the end-to-end test, on the
pipeline `make demo` leaves running.)"""

from __future__ import annotations

import json
import subprocess
import time
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from webhook_receiver import Receiver

from redline import catalog
from redline.cli import main
from redline.config import load
from redline.services.pipeline import PipelineService
from redline.streaming.kafka_options import topic_name
from redline.streaming.producer import ensure_topics

pytestmark = pytest.mark.integration

HOOK_ENV = "REDLINE_TEST_PIPELINE_WEBHOOK"
#: Bolt torque at one station: 25 in-control points (the I chart's baseline, centre 50,
#: moving ranges 0.4 to 0.8), then one at 60, far beyond the upper limit (about 51.6).
BASELINE = [50.0, 50.4, 49.8, 50.2, 49.6, 50.1, 49.9, 50.3, 49.7, 50.0,
            50.4, 49.8, 50.2, 49.6, 50.1, 49.9, 50.3, 49.7, 50.0, 50.4,
            49.8, 50.2, 49.6, 50.1, 49.9]
OUT_OF_CONTROL = 60.0


def _result(seq: int, value: float, at: datetime, tag: str) -> dict:
    return {"event_id": f"{tag}-{seq}", "event_time": at.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "schema_version": 1, "unit_serial": f"U{tag}{seq:03d}", "plant": "PLT-P",
            "line": "L1", "station": "S010", "operation": "torque", "shift": "A",
            "attempt": 1, "result": "PASS", "cycle_time_s": 50.0, "defect_codes": [],
            "measurements": [{"characteristic": "bolt_torque_nm", "value": value,
                              "unit": "Nm", "lsl": 40.0, "usl": 60.5, "target": 50.0}]}


@pytest.fixture
def pipeline_env(cfg, kafka_broker, lake, monkeypatch, tmp_path):
    """Own topics and lake; gold every 2 s, no audits (a cycle's speed is not under test
    here); the webhook URL in ``HOOK_ENV``. Yields the configuration."""
    receiver = Receiver().__enter__()
    monkeypatch.setenv("REDLINE_KAFKA_TOPIC_PREFIX", f"pipe-{uuid.uuid4().hex[:8]}.")
    monkeypatch.setenv("REDLINE_LAKE_ROOT", lake)
    monkeypatch.setenv("REDLINE_PIPELINE_GOLD_INTERVAL_SECONDS", "2")
    monkeypatch.setenv("REDLINE_QUALITY_AUDIT_GOLD", "false")
    monkeypatch.setenv("REDLINE_ALERTS_WEBHOOK_URL_ENV", HOOK_ENV)
    monkeypatch.setenv(HOOK_ENV, receiver.url)
    pipe_cfg = load()
    ensure_topics(pipe_cfg)
    try:
        yield pipe_cfg, receiver
    finally:
        main(["down", "pipeline"])
        receiver.__exit__()


def _produce(broker, cfg, lines: list[str], tmp_path) -> None:
    settings = tmp_path / "producer.properties"
    assert main(["kafka", "client-config", "--user", "producer", "--out", str(settings)]) == 0
    cmd = broker.java("org.apache.kafka.tools.ConsoleProducer",
                      "--bootstrap-server", cfg.kafka.servers,
                      "--command-config", str(settings),
                      "--topic", topic_name(cfg, "station_results"))
    done = subprocess.run(cmd, input="\n".join(lines) + "\n", text=True,
                          capture_output=True, timeout=120)
    assert done.returncode == 0, done.stderr


def _wait(what: str, condition, timeout: float = 300.0, every: float = 2.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = condition()
        if found:
            return found
        time.sleep(every)
    raise AssertionError(f"{what}: not within {timeout:.0f}s")


@pytest.mark.drill
def test_kill_9_in_a_gold_cycle_loses_and_doubles_nothing(pipeline_env, spark, kafka_broker,
                                                           tmp_path):
    """kill -9 of the whole pipeline (driver JVM included) while a gold cycle runs, then a
    restart: every event is in silver and in gold.spc_points exactly once, and the
    out-of-control episode is posted once."""
    import os
    import signal

    cfg, receiver = pipeline_env
    service = PipelineService(cfg)
    assert main(["up", "pipeline"]) == 0
    tag = uuid.uuid4().hex[:6]
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)
    lines = [json.dumps(_result(i, v, start + timedelta(minutes=2 * i), tag))
             for i, v in enumerate([*BASELINE, OUT_OF_CONTROL])]
    _produce(kafka_broker, cfg, lines, tmp_path)
    # The first gold cycle has begun once its first job (SPC, which alerts wait on) is
    # in the log.
    began = _wait("a gold cycle", lambda: "] gold_spc: silver.station_results" in
                  service.log_file.read_text(errors="replace"), every=0.5)
    assert began
    time.sleep(3)  # into the cycle: a job is running or committing
    os.killpg(service.pid(), signal.SIGKILL)
    _wait("the pipeline's end", lambda: not service.running(), timeout=60)
    assert main(["up", "pipeline"]) == 0

    def all_points():
        if not catalog.exists(spark, cfg.lake_root, catalog.SPC_POINTS):
            return None
        points = catalog.read(spark, cfg.lake_root, catalog.SPC_POINTS).where(
            f"event_id LIKE '{tag}-%'")
        return points.count() >= len(lines) and points

    points = _wait("every point in gold.spc_points", all_points)
    assert _wait("the alert", lambda: receiver.requests)
    time.sleep(6)  # a few more cycles: nothing more to post
    assert points.count() == points.select("event_id").distinct().count() == len(lines)
    silver = catalog.read(spark, cfg.lake_root, catalog.silver("station_results"))
    assert silver.count() == silver.select("event_id").distinct().count() == len(lines)
    assert len(receiver.requests) == 1
