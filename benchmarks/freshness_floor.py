"""Freshness floor: how fresh silver can be on this machine, whatever silver does.

Runs the ingest benchmark's freshness measurement (``redline ingest`` continuously, the
producer at a steady rate, latency = silver commit time - Kafka timestamp) three times in
one sitting, each with its own broker and lake:

- ``real``: the project's silver stage (parse, rules, dedupe, two idempotent appends);
- ``txn``: the silver stage replaced by one append of the bronze rows' Kafka coordinates
  and payload, with ``txnAppId``/``txnVersion`` (what idempotence costs by itself);
- ``plain``: the same append without ``txnAppId``: the least a second Delta hop costs.

The bronze query is the project's own in all three. The gap between ``plain`` and the
target (p95 <= 5 s) is what no change to the silver logic can win back.

    .venv/bin/python benchmarks/freshness_floor.py [--seconds 40] [--modes real,txn,plain]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

import ingest_benchmark as bench  # noqa: E402  (a sibling script, not a package)

MODES = ("real", "txn", "plain")


def one_append(with_txn: bool):
    """A stand-in for ``streaming.silver.write_batch``: one append of the bronze rows."""

    def write_batch(batch, batch_id, lake_root, topic, app_id, stats=None, rules=None,
                    max_record_bytes=0, late_after_minutes=0.0):
        from pyspark.sql import functions as F

        from redline import catalog

        rows = batch.select(F.col("partition").alias("kafka_partition"),
                            F.col("offset").alias("kafka_offset"), "kafka_timestamp", "value")
        writer = (rows.write.format("delta").mode("append")
                  .option("delta.enableChangeDataFeed", "true"))
        if with_txn:
            writer = writer.option("txnAppId", app_id).option("txnVersion", batch_id)
        writer.save(catalog.location(lake_root, catalog.silver(topic)))
        counts = {"rows": 0, "silver": 0, "quarantined": 0, "duplicates": 0, "warned": 0}
        if stats is not None:
            stats.add(batch_id, counts)
        return counts

    return write_batch


def measure(mode: str, seconds: float, rate: float, port: int) -> dict:
    from redline.config import load
    from redline.services.kafka import KafkaBroker
    from redline.spark import build_session
    from redline.streaming import silver

    home = Path(tempfile.mkdtemp(prefix=f"redline-floor-{mode}-"))
    env = dict(os.environ)
    env.update({"REDLINE_HOME": str(home), "REDLINE_KAFKA_PORT": str(port),
                "REDLINE_KAFKA_CONTROLLER_PORT": str(port + 1),
                "REDLINE_KAFKA_TOPIC_PREFIX": "fresh.", "REDLINE_KAFKA_HEAP_MB": "1024"})
    env.pop("REDLINE_PROFILE", None)
    os.environ["REDLINE_HOME"] = str(home)
    cfg = load("local", env)
    real = silver.write_batch
    if mode != "real":
        silver.write_batch = one_append(with_txn=(mode == "txn"))
    broker = KafkaBroker(cfg)
    spark = None
    try:
        broker.start(progress=bench.log)
        spark = build_session(cfg, app_name=f"redline-freshness-floor-{mode}")
        spark.sparkContext.setLogLevel("ERROR")
        return bench.freshness(spark, cfg, str(home / "lake"), rate, seconds, 10.0)
    finally:
        silver.write_batch = real
        if spark is not None:
            for q in spark.streams.active:
                q.stop()
            spark.stop()
        broker.stop(progress=bench.log)
        shutil.rmtree(home, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seconds", type=float, default=40.0, help="steady seconds per mode")
    ap.add_argument("--rate", type=float, default=2000.0, help="events/s")
    ap.add_argument("--modes", default=",".join(MODES), help="comma-separated: real,txn,plain")
    ap.add_argument("--port", type=int, default=29492, help="Kafka port (controller: +1)")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" /
                                         "freshness_floor.json"))
    args = ap.parse_args(argv)
    modes = [m for m in args.modes.split(",") if m]
    unknown = set(modes) - set(MODES)
    if unknown:
        ap.error(f"unknown mode(s) {sorted(unknown)}; choose from {', '.join(MODES)}")
    results = {"benchmark": "freshness_floor", "started_at": datetime.now(UTC)
               .isoformat(), "machine_start": bench.machine(), "rate": args.rate,
               "seconds": args.seconds, "modes": {}}
    for mode in modes:
        bench.log(f"freshness with silver stage '{mode}', {args.rate:,.0f} events/s for "
                  f"{args.seconds:.0f} s")
        began = time.time()
        r = measure(mode, args.seconds, args.rate, args.port)
        results["modes"][mode] = r
        bench.log(f"  {mode}: p50 {r['p50_s']} s, p95 {r['p95_s']} s, max {r['max_s']} s "
                  f"({time.time() - began:.0f} s)")
    results["machine_end"] = bench.machine()
    results["finished_at"] = datetime.now(UTC).isoformat()
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(results, indent=2, default=str))
    print(f"\nfreshness floor at {args.rate:,.0f} events/s, {args.seconds:.0f} s per mode "
          f"(target p95 <= 5 s)")
    for mode, r in results["modes"].items():
        batches = {q.split("_", 1)[0]: v.get("addBatch") for q, v in
                   r["mean_ms_per_batch"].items()}
        print(f"  {mode:6s} p50 {r['p50_s']:6.2f} s  p95 {r['p95_s']:6.2f} s  "
              f"max {r['max_s']:6.2f} s  mean addBatch ms {batches}")
    print(f"\nwritten to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
