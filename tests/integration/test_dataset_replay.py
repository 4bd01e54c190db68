"""Public data sets through the real path: replay -> Kafka -> bronze -> silver.

Silver row counts must equal the source files' line counts, counted here independently
of the readers; a second replay of the same file must not add a row to silver.
"""

import gzip
import time
from pathlib import Path

import pytest

from redline import catalog
from redline.config import load
from redline.streaming import ingest
from redline.streaming.replay import replay

pytestmark = pytest.mark.integration


def _data_lines(path: Path) -> int:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8-sig") as fh:
        return sum(1 for line in fh if line.strip())


def test_replayed_data_sets_land_in_silver_once(spark, kafka_only, lake, monkeypatch):
    monkeypatch.setenv("REDLINE_KAFKA_TOPIC_PREFIX", "replay-test.")
    monkeypatch.setenv("REDLINE_LAKE_ROOT", lake)
    cfg = load()
    root = cfg.replay.datasets_dir
    assert (root / "cmapss").is_dir(), (
        f"public data sets not found under {root}; set REDLINE_REPLAY_DATASETS")
    fd001 = _data_lines(root / "cmapss" / "train_FD001.txt.gz")
    ai4i = _data_lines(root / "ai4i2020" / "ai4i2020.csv.gz") - 1  # header

    cm = replay(cfg, "cmapss", ["train_FD001"], rate=0)
    ai = replay(cfg, "ai4i", rate=0)
    again = replay(cfg, "ai4i", rate=0)  # same event ids: duplicates for silver to drop
    assert cm.acknowledged == {"cmapss_cycles": fd001} and fd001 == 20631
    assert ai.acknowledged == again.acknowledged == {"ai4i_process": ai4i} and ai4i == 10000
    print(f"\nproducer: {cm.summary()}\nproducer: {ai.summary()}")

    topics = ["cmapss_cycles", "ai4i_process"]
    began = time.monotonic()
    rows = ingest.run(spark, cfg, cfg.lake_root, topics, available_now=True,
                      progress=lambda _: None)
    print(f"ingest (Kafka -> bronze -> silver): {time.monotonic() - began:.1f}s")
    assert rows == {
        "cmapss_cycles": {"bronze": fd001, "silver": fd001, "quarantined": 0, "duplicates": 0},
        "ai4i_process": {"bronze": 2 * ai4i, "silver": ai4i, "quarantined": 0,
                         "duplicates": ai4i}}

    def table(name):
        return catalog.read(spark, cfg.lake_root, catalog.get(name))

    assert table("bronze.cmapss_cycles").count() == fd001
    assert table("bronze.ai4i_process").count() == 2 * ai4i
    cmapss = table("silver.cmapss_cycles")
    assert cmapss.count() == fd001
    assert table("silver.ai4i_process").count() == ai4i
    assert cmapss.select("engine_id").distinct().count() == 100
    last = cmapss.where("engine_id = 'FD001-train-001'").agg({"cycle": "max"}).first()[0]
    assert last == 192  # engine 1 of train_FD001 runs 192 cycles to failure
    assert table("silver.ai4i_process").where("machine_failure").count() == 339
