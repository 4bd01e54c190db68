"""Recovery faults: damaged checkpoints, two owners of one checkpoint, services restarted
under running work, and a lake whose disk fills up.

Real broker, real Spark with Delta, real MLflow, Thrift Server and Superset. Every test
compares what it produced (counted by hand) with what bronze and silver hold: nothing
lost, nothing doubled. Every wait follows observed progress (``tests/waiting.py``).
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from redline import catalog
from redline.cli import main
from redline.streaming import bronze, silver
from redline.streaming.producer import produce
from redline.streaming.simulator import Event

pytestmark = pytest.mark.integration

TOPIC = "vehicle_telemetry"
REDLINE = str(Path(sys.executable).parent / "redline")


def _events(n: int, start: int = 0, **extra) -> list[dict]:
    return [{"event_id": str(uuid.uuid4()), "event_time": "2026-02-01T10:00:00Z",
             "schema_version": 1, "vin": f"RDLRECOV{i:09d}", "odometer_km": float(i),
             **extra} for i in range(start, start + n)]


def _publish(cfg, events: list[dict]) -> list[str]:
    """Send ``events`` (acknowledged by all replicas); their event ids."""
    report = produce(cfg, [Event(TOPIC, e["vin"], e) for e in events],
                     progress=lambda _: None)
    assert report.acknowledged == {TOPIC: len(events)} and report.failed == 0
    return [e["event_id"] for e in events]


def _bronze_ids(spark, root: str) -> list[str]:
    rows = catalog.read(spark, root, catalog.bronze(TOPIC)).select("value").collect()
    return [json.loads(bytes(r.value))["event_id"] for r in rows]


def _silver_ids(spark, root: str) -> list[str]:
    df = catalog.read(spark, root, catalog.silver(TOPIC))
    return [r.event_id for r in df.select("event_id").collect()]


def assert_exactly_once(spark, root: str, produced: list[str]) -> None:
    """Bronze holds each produced record once, silver each produced event once."""
    bronze_df = catalog.read(spark, root, catalog.bronze(TOPIC))
    assert bronze_df.count() == len(produced)
    assert bronze_df.select("partition", "offset").distinct().count() == len(produced)
    assert sorted(_bronze_ids(spark, root)) == sorted(produced)
    silver_df = catalog.read(spark, root, catalog.silver(TOPIC))
    assert silver_df.count() == silver_df.select("event_id").distinct().count() \
        == len(produced)
    assert sorted(_silver_ids(spark, root)) == sorted(produced)


# -- 1. a damaged commits/N ------------------------------------------------------------------
def _latest_commit(checkpoint: str) -> Path:
    commits = Path(checkpoint) / "commits"
    return commits / str(max(int(p.name) for p in commits.iterdir() if p.name.isdigit()))


def _damage(commit: Path, how: str) -> None:
    if how == "deleted":
        commit.unlink()
    elif how == "empty":
        commit.write_bytes(b"")  # a crash after the rename, before the data reached disk
    else:
        data = commit.read_bytes()
        commit.write_bytes(data[:len(data) // 2])


@pytest.mark.parametrize("how", ["deleted", "empty", "half"])
def test_damaged_commit_file_reruns_the_batch_once(stream_cfg, spark, how, capsys):
    root = stream_cfg.lake_root
    produced = _publish(stream_cfg, _events(40))
    assert main(["ingest", "--available-now", "--topics", TOPIC]) == 0
    assert_exactly_once(spark, root, produced)

    damaged = {}
    for name, ckpt in (("bronze", bronze.checkpoint(root, TOPIC)),
                       ("silver", silver.checkpoint(root, TOPIC))):
        commit = _latest_commit(ckpt)
        damaged[name] = (commit, commit.read_text())
        _damage(commit, how)
    produced += _publish(stream_cfg, _events(25, start=40))

    capsys.readouterr()
    assert main(["ingest", "--available-now", "--topics", TOPIC]) == 0, \
        capsys.readouterr().err
    assert_exactly_once(spark, root, produced)
    for commit, text in damaged.values():
        # Spark ran the batch again and committed it again, whole.
        assert commit.read_text() == text
