"""Kafka-side faults: the broker killed mid-stream, and records Kafka lost before ingest.

Real broker, real Spark, real Delta; every wait bounded. The broker-kill test runs its own
broker (on ports next to the test broker's) because it kills it.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import pytest
from waiting import exited, until

from redline import catalog
from redline.cli import main
from redline.config import load
from redline.services.kafka import KafkaBroker
from redline.streaming.kafka_options import client_options, topic_name
from redline.streaming.producer import ensure_topics

pytestmark = pytest.mark.integration

TOPIC = "vehicle_telemetry"
REDLINE = str(Path(sys.executable).parent / "redline")


def _event(n: int) -> dict:
    return {"event_id": str(uuid.uuid4()), "event_time": "2026-02-01T10:00:00Z",
            "schema_version": 1, "vin": f"RDLFAULT{n:09d}", "odometer_km": float(n)}


class AckedProducer:
    """acks=all producer that remembers which events the broker acknowledged."""

    def __init__(self, cfg):
        from kafka import KafkaProducer

        self.topic = topic_name(cfg, TOPIC)
        self.producer = KafkaProducer(acks="all", retries=1_000_000, linger_ms=5,
                                      max_in_flight_requests_per_connection=1,
                                      delivery_timeout_ms=120_000, request_timeout_ms=10_000,
                                      reconnect_backoff_max_ms=1000,
                                      **client_options(cfg, user="producer"))
        self.acked: set[str] = set()
        self.failed: list[BaseException] = []
        self.lock = threading.Lock()

    def send(self, event: dict) -> None:
        def ok(_meta, eid=event["event_id"]):
            with self.lock:
                self.acked.add(eid)
        fut = self.producer.send(self.topic, key=event["vin"].encode(),
                                 value=json.dumps(event).encode())
        fut.add_callback(ok).add_errback(self.failed.append)

    def close(self) -> None:
        self.producer.flush(180)
        self.producer.close(10)


def _end_offsets(cfg) -> dict[int, int]:
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(**client_options(cfg, user="ingest"))
    try:
        name = topic_name(cfg, TOPIC)
        tps = [TopicPartition(name, p) for p in sorted(consumer.partitions_for_topic(name))]
        return {tp.partition: o for tp, o in consumer.end_offsets(tps).items()}
    finally:
        consumer.close()


def _bronze_ids(spark, root) -> list[str]:
    rows = catalog.read(spark, root, catalog.bronze(TOPIC)).select("value").collect()
    return [json.loads(bytes(r.value))["event_id"] for r in rows]


@pytest.fixture
def own_broker(cfg, lake, tmp_path, monkeypatch):
    """A broker only this test uses, with its own state folder, topics and lake."""
    monkeypatch.setenv("REDLINE_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("REDLINE_KAFKA_PORT", str(cfg.kafka.port + 10))
    monkeypatch.setenv("REDLINE_KAFKA_CONTROLLER_PORT", str(cfg.kafka.controller_port + 10))
    monkeypatch.setenv("REDLINE_KAFKA_TOPIC_PREFIX", f"bk-{uuid.uuid4().hex[:8]}.")
    monkeypatch.setenv("REDLINE_LAKE_ROOT", lake)
    own = load()
    broker = KafkaBroker(own)
    broker.start()
    try:
        ensure_topics(own)
        yield own, broker
    finally:
        broker.stop()


@pytest.mark.drill
def test_broker_sigkill_mid_stream_loses_nothing_acknowledged(own_broker, spark, tmp_path):
    cfg, broker = own_broker
    root = cfg.lake_root
    producer = AckedProducer(cfg)
    sent: list[str] = []
    stop = threading.Event()

    def produce() -> None:
        n = 0
        while not stop.is_set():
            e = _event(n)
            producer.send(e)
            sent.append(e["event_id"])
            n += 1
            time.sleep(0.01)

    log = tmp_path / "ingest.log"
    ingest = subprocess.Popen([REDLINE, "ingest", "--topics", TOPIC], stdout=log.open("ab"),
                              stderr=subprocess.STDOUT, start_new_session=True)
    thread = threading.Thread(target=produce, daemon=True)
    thread.start()
    try:
        # Until ingest has committed a bronze batch, then a few seconds more of traffic.
        commits = Path(catalog.checkpoint(root, f"bronze/{TOPIC}")) / "commits"
        until(lambda: commits.is_dir() and any(commits.iterdir()),
              "ingest commits a bronze batch", proc=ingest, log=log,
              watch=[commits.parent])
        time.sleep(4)
        acked_before = len(producer.acked)
        os.killpg(broker.pid(), signal.SIGKILL)  # the broker dies mid-stream
        time.sleep(6)
        broker.start()  # same data folder, same ports
        time.sleep(6)
    finally:
        stop.set()
        thread.join(30)
        producer.close()
    print(f"acknowledged {acked_before} before the kill, {len(producer.acked)} in all; "
          f"{len(producer.failed)} sends failed (not acknowledged); sent {len(sent)}")
    assert len(producer.acked) > acked_before  # traffic was acknowledged after the restart

    # The running ingest rides out the outage: it is still up and catches up.
    until(lambda: catalog.exists(spark, root, catalog.silver(TOPIC)) and
          catalog.read(spark, root, catalog.silver(TOPIC)).count() >= len(producer.acked),
          "ingest rides out the broker's death and catches up", proc=ingest, log=log,
          watch=[Path(root, "_checkpoints")], poll=2)
    ingest.send_signal(signal.SIGTERM)
    assert exited(ingest, "ingest stops on SIGTERM", log=log) == 0, log.read_text()[-3000:]

    assert main(["ingest", "--available-now", "--topics", TOPIC]) == 0
    in_kafka = sum(_end_offsets(cfg).values())
    bronze = catalog.read(spark, root, catalog.bronze(TOPIC))
    ids = _bronze_ids(spark, root)
    assert len(ids) == in_kafka  # every record Kafka holds, once
    assert bronze.select("partition", "offset").distinct().count() == in_kafka
    assert producer.acked <= set(ids)  # nothing acknowledged is lost
    silver_ids = [r.event_id for r in
                  catalog.read(spark, root, catalog.silver(TOPIC)).select("event_id").collect()]
    assert len(silver_ids) == len(set(silver_ids)) == len(set(ids))


def _produce(cfg, n: int, start: int = 0) -> None:
    producer = AckedProducer(cfg)
    for i in range(start, start + n):
        producer.send(_event(i))
    producer.close()
    assert len(producer.acked) == n, producer.failed[:3]


def test_records_lost_in_kafka_stop_ingest_naming_the_gap(stream_cfg, spark, capsys):
    from kafka import KafkaAdminClient, TopicPartition

    cfg = stream_cfg
    name = topic_name(cfg, TOPIC)
    _produce(cfg, 12)
    assert main(["ingest", "--available-now", "--topics", TOPIC]) == 0
    read_to = _end_offsets(cfg)  # what bronze has consumed, per partition
    assert sum(read_to.values()) == 12

    # Retention passes before ingest runs again: Kafka deletes records bronze never read.
    _produce(cfg, 20, start=100)
    now_end = _end_offsets(cfg)
    admin = KafkaAdminClient(**client_options(cfg, user="admin"))
    try:
        admin.delete_records({TopicPartition(name, p): o for p, o in now_end.items()})
    finally:
        admin.close()

    capsys.readouterr()
    assert main(["ingest", "--available-now", "--topics", TOPIC]) == 2
    err = capsys.readouterr().err
    assert "KAFKA_DATA_LOSS" in err
    for p, end in now_end.items():
        if end > read_to[p]:
            assert (f"{name} partition {p}: offsets {read_to[p]}..{end - 1} "
                    f"({end - read_to[p]:,} records) were removed from Kafka") in err, err
    assert catalog.read(spark, cfg.lake_root, catalog.bronze(TOPIC)).count() == 12

    # `redline ingest status` shows the gap too, and exits non-zero.
    assert main(["ingest", "status", "--topics", TOPIC]) == 1
    assert "DATA LOSS" in capsys.readouterr().out


def test_recreated_topic_stops_ingest(stream_cfg, spark, kafka_broker, capsys):
    from kafka import KafkaAdminClient
    from kafka.errors import TopicAlreadyExistsError

    cfg = stream_cfg
    name = topic_name(cfg, TOPIC)
    _produce(cfg, 10)
    assert main(["ingest", "--available-now", "--topics", TOPIC]) == 0

    admin = KafkaAdminClient(**client_options(cfg, user="admin"))
    try:
        admin.delete_topics([name])
        until(lambda: name not in admin.list_topics(), "the topic's deletion",
              log=kafka_broker.log_file)
    finally:
        admin.close()

    def recreated() -> bool:  # the controller may still be finishing the deletion
        try:
            ensure_topics(cfg)
            return True
        except TopicAlreadyExistsError:
            return False

    until(recreated, "the topic's creation", log=kafka_broker.log_file, poll=1)
    # More records than before: offsets alone look fine, the records are not the same.
    _produce(cfg, 40, start=500)

    capsys.readouterr()
    assert main(["ingest", "--available-now", "--topics", TOPIC]) == 2
    err = capsys.readouterr().err
    assert "KAFKA_DATA_LOSS" in err and "recreated" in err, err
    assert catalog.read(spark, cfg.lake_root, catalog.bronze(TOPIC)).count() == 10
