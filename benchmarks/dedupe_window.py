"""Benchmark: the silver event-id check against hours of live silver.

A silver micro-batch checks its event ids against silver before it appends
(``streaming.silver.new_events``). This measures that check for a 2,000-record batch
against silver tables holding 15 minutes, 1 hour and 4 hours of a live stream at 2,000
events/s (``--hours``, ``--rate``): one file per 7-second micro-batch, and a tenth of the
events late by up to 7 days, as from vehicles that were offline. Two bounds of the silver
scan, in the same run:

- ``event_time``: silver rows within ``DEDUPE_WATERMARK_HOURS`` (24) of the batch's event
  times only (the stream's check before the dedupe window). Live data's event times are
  all recent, so this reads every file of the last day;
- ``arrival_window``: also only rows that reached Kafka within
  ``ingest.dedupe_window_minutes`` (15) of the batch, which Delta prunes by the Kafka
  timestamp's file statistics: about the last 15 minutes of files, however much silver
  holds.

It prints the median of ``--repeats`` checks per table and bound and writes a JSON
(``--out``). The tables go to a temporary folder, removed at the end.

    .venv/bin/python benchmarks/dedupe_window.py [--hours 0.25,1,4]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NOW = datetime(2026, 11, 22, 12, 0, 0)
BATCH_SECONDS = 7
"""One silver file per micro-batch of this many seconds (a steady-state silver batch)."""
BOUNDS = ("event_time", "arrival_window")


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--hours", default="0.25,1,4",
                   help="hours of live silver per table, comma-separated (default 0.25,1,4)")
    p.add_argument("--rate", type=int, default=2000, help="events/s of the stream (2,000)")
    p.add_argument("--batch", type=int, default=2000, help="records in the checked batch")
    p.add_argument("--late-share", type=float, default=0.1,
                   help="share of events late by up to 7 days (default 0.1)")
    p.add_argument("--repeats", type=int, default=3, help="checks per table and bound")
    p.add_argument("--out", default=str(ROOT / "benchmarks/results/dedupe_window.json"),
                   help="JSON results file")
    return p.parse_args(argv)


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def build(spark, path: str, hours: float, rate: int, late_share: float) -> dict:
    """A silver-like table of ``hours`` of a live stream ending at NOW."""
    from pyspark.sql import functions as F

    from redline import lake

    rows = int(hours * 3600 * rate)
    files = max(1, int(hours * 3600 / BATCH_SECONDS))
    arrived = F.lit(NOW) - F.make_interval(
        secs=(F.lit(hours * 3600) - F.col("id") / rate).cast("decimal(18,6)"))
    late = F.make_interval(secs=(F.rand(7) * 7 * 86400).cast("decimal(18,6)"))
    began = time.monotonic()
    (spark.range(rows).repartitionByRange(files, "id")
     .select(F.expr("uuid()").alias("event_id"),
             F.when(F.rand(3) < late_share, arrived - late).otherwise(arrived)
             .alias("event_time"),
             (F.col("id") % 2).cast("int").alias("kafka_partition"),
             F.col("id").alias("kafka_offset"), arrived.alias("kafka_timestamp"),
             F.rand(5).alias("value"))
     .write.format("delta")
     .option("delta.dataSkippingStatsColumns", lake.TOPIC_STATS_COLUMNS)
     .save(path))
    return {"hours": hours, "rows": rows, "files": files,
            "build_s": round(time.monotonic() - began, 1)}


def check(spark, path: str, bound: str, size: int, repeats: int) -> list[float]:
    """Seconds of ``new_events`` for a batch of ``size`` new records arriving now."""
    from pyspark.sql import functions as F

    from redline.streaming.silver import new_events

    at = NOW + timedelta(seconds=1)
    batch = spark.range(size).select(
        F.expr("uuid()").alias("event_id"), F.lit(at).alias("event_time"),
        (F.col("id") % 2).cast("int").alias("kafka_partition"),
        F.col("id").alias("kafka_offset")).cache()
    batch.count()
    arrival = (at, at) if bound == "arrival_window" else None
    out = []
    for _ in range(repeats + 1):  # the first check warms the table's snapshot up
        began = time.monotonic()
        fresh, removed = new_events(batch, path, None, size, arrival=arrival)
        out.append(round(time.monotonic() - began, 3))
        if removed:
            raise RuntimeError("a batch of new uuids was found in silver")
    batch.unpersist()
    return out[1:]


def main(argv=None) -> int:
    args = parse_args(argv)
    hours = [float(h) for h in args.hours.split(",")]
    from redline.config import load
    from redline.spark import build_session

    spark = build_session(load("local", os.environ), app_name="redline-dedupe-benchmark")
    spark.sparkContext.setLogLevel("ERROR")
    home = tempfile.mkdtemp(prefix="redline-dedupe-")
    results = {"benchmark": "dedupe_window",
               "started_at": datetime.now(UTC).isoformat(),
               "cores": os.cpu_count(), "load_average_start": list(os.getloadavg()),
               "rate": args.rate, "batch": args.batch, "late_share": args.late_share,
               "tables": []}
    try:
        for h in hours:
            path = os.path.join(home, f"silver_{h}")
            table = build(spark, path, h, args.rate, args.late_share)
            log(f"silver of {h} h: {table['rows']:,} rows in {table['files']:,} files "
                f"({table['build_s']} s to build)")
            for bound in BOUNDS:
                secs = check(spark, path, bound, args.batch, args.repeats)
                table[bound] = {"seconds": secs, "median_s": statistics.median(secs)}
                log(f"  {bound:<15} check of {args.batch:,} ids: median "
                    f"{statistics.median(secs):.2f} s  ({', '.join(map(str, secs))})")
            table["ratio_event_time_to_window"] = round(
                table["event_time"]["median_s"] / table["arrival_window"]["median_s"], 2)
            results["tables"].append(table)
            shutil.rmtree(path, ignore_errors=True)
    finally:
        spark.stop()
        shutil.rmtree(home, ignore_errors=True)
    results["load_average_end"] = list(os.getloadavg())
    print()
    print(f"{'silver':>8} {'rows':>12} {'files':>7} {'event_time s':>13} "
          f"{'window s':>9} {'ratio':>6}")
    for t in results["tables"]:
        print(f"{t['hours']:>6} h {t['rows']:>12,} {t['files']:>7,} "
              f"{t['event_time']['median_s']:>13.2f} {t['arrival_window']['median_s']:>9.2f} "
              f"{t['ratio_event_time_to_window']:>6}")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(results, indent=2))
    print(f"results in {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
