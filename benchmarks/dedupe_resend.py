"""Benchmark: the silver check for re-sent records, on silver of 10M and 40M rows.

A silver micro-batch checks its event ids against silver before it appends
(``streaming.silver.new_events``), reading only silver's files within the event-time
spans of the batch (``streaming/event_spans.py``). This builds silver tables of
``--rows`` (10M and 40M) of a live stream at ``--rate`` events/s, laid out as the stream
writes them: per ``--batch-seconds`` micro-batch one on-time file and one file per event
day of its late records (a tenth of the events, late by up to 7 days). It then times,
with the median of ``--repeats``, three checks of a 2,000-record batch (``--batch``):

- ``live``: new records of the last 30 s arriving now (the steady state);
- ``mixed``: new records, a tenth of them late by up to 7 days (eight spans);
- ``resend_day_old``: copies of silver records of a day ago, sent again (all found).

Each check also reports how many silver files its read touches. What matters is the
ratio 40M / 10M: a check bounded by the spans it touches stays flat as silver grows.
The tables go to a temporary folder, removed at the end; results to ``--out``.

    .venv/bin/python benchmarks/dedupe_resend.py [--rows 10000000,40000000]
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
CHECKS = ("live", "mixed", "resend_day_old")


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rows", default="10000000,40000000",
                   help="rows of silver per table, comma-separated (default 10M,40M)")
    p.add_argument("--rate", type=int, default=2000, help="events/s of the stream (2,000)")
    p.add_argument("--batch-seconds", type=int, default=60,
                   help="seconds of stream per silver micro-batch of the built table (60)")
    p.add_argument("--batch", type=int, default=2000, help="records in each checked batch")
    p.add_argument("--late-share", type=float, default=0.1,
                   help="share of events late by up to 7 days (default 0.1)")
    p.add_argument("--repeats", type=int, default=3, help="checks per table and kind")
    p.add_argument("--out", default=str(ROOT / "benchmarks/results/dedupe_resend.json"),
                   help="JSON results file")
    return p.parse_args(argv)


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def build(spark, path: str, rows: int, rate: int, batch_seconds: int,
          late_share: float) -> dict:
    """A silver-like table of ``rows`` events ending at NOW, one file per (micro-batch,
    span) as ``event_spans.one_file_set_per_span`` writes them."""
    from pyspark.sql import functions as F

    from redline import lake
    from redline.streaming.event_spans import file_keys

    per_batch = rate * batch_seconds
    batches = -(-rows // per_batch)
    seconds = rows / rate
    arrived = F.lit(NOW) - F.make_interval(
        secs=(F.lit(seconds) - F.col("id") / rate).cast("decimal(18,6)"))
    late_by = F.make_interval(secs=(F.rand(7) * 7 * 86400).cast("decimal(18,6)"))
    df = (spark.range(rows)
          .withColumn("kafka_timestamp", arrived)
          .withColumn("is_late", F.rand(3) < late_share)
          .withColumn("event_time", F.when(F.col("is_late"), arrived - late_by)
                      .otherwise(arrived))
          # The file a row goes to: its micro-batch, then on time (0) or its late day (1-8).
          .withColumn("_file", (F.col("id") / per_batch).cast("long") * 9 + F.when(
              F.col("is_late"), 1 + F.datediff(F.to_date("kafka_timestamp"),
                                                F.to_date("event_time"))).otherwise(0)))
    n = batches * 9
    keys = spark.createDataFrame(list(enumerate(file_keys(n))), "_file long, _key long")
    began = time.monotonic()
    (df.join(F.broadcast(keys), "_file").repartition(n, "_key")
     .select(F.expr("uuid()").alias("event_id"), "event_time",
             (F.col("id") % 2).cast("int").alias("kafka_partition"),
             F.col("id").alias("kafka_offset"), "kafka_timestamp",
             F.rand(5).alias("value"))
     .write.format("delta")
     .option("delta.dataSkippingStatsColumns", lake.TOPIC_STATS_COLUMNS)
     .save(path))
    files = spark.sql(f"DESCRIBE DETAIL delta.`{path}`").first().numFiles
    return {"rows": rows, "files": files, "batches": batches,
            "build_s": round(time.monotonic() - began, 1)}


def batch_of(spark, path: str, kind: str, size: int):
    from pyspark.sql import functions as F

    at = NOW + timedelta(seconds=1)
    if kind == "resend_day_old":
        day_ago = NOW - timedelta(days=1)
        return (spark.read.format("delta").load(path)
                .where(F.col("event_time").between(day_ago - timedelta(minutes=5), day_ago))
                .limit(size).select("event_id", "event_time", "kafka_partition",
                                    "kafka_offset")).cache()
    # Live records happened in the last 30 s (so they overlap silver's newest files);
    # mixed ones are late by up to 7 days one time in ten.
    live = F.lit(at) - F.make_interval(secs=(F.rand(17) * 30).cast("decimal(18,6)"))
    late = F.lit(at) - F.make_interval(secs=(F.rand(11) * 7 * 86400).cast("decimal(18,6)"))
    event_time = F.when(F.rand(13) < 0.1, late).otherwise(live) if kind == "mixed" else live
    return spark.range(size).select(
        F.expr("uuid()").alias("event_id"), event_time.alias("event_time"),
        (F.col("id") % 2).cast("int").alias("kafka_partition"),
        F.col("id").alias("kafka_offset")).cache()


def check(spark, path: str, kind: str, size: int, repeats: int) -> dict:
    """Seconds of ``new_events`` (spans included) for a batch of ``kind``."""
    from redline.streaming import event_spans
    from redline.streaming.silver import new_events

    batch = batch_of(spark, path, kind, size)
    n = batch.count()
    cut = event_spans.late_before(NOW + timedelta(seconds=1), 15.0)
    out = []
    for _ in range(repeats + 1):  # the first check warms the table's snapshot up
        began = time.monotonic()
        found = event_spans.spans(batch, cut)
        fresh, removed = new_events(batch, path, found, n)
        kept = fresh.count()
        out.append(round(time.monotonic() - began, 3))
    expected = 0 if kind == "resend_day_old" else n
    if kept != expected:
        raise RuntimeError(f"{kind}: {kept} of {n} records kept, expected {expected}")
    files = len(spark.read.format("delta").load(path)
                .where(event_spans.covering(found)).inputFiles())
    batch.unpersist()
    return {"records": n, "spans": len(found), "files_read": files, "seconds": out[1:],
            "median_s": statistics.median(out[1:])}


def main(argv=None) -> int:
    args = parse_args(argv)
    sizes = [int(r) for r in args.rows.split(",")]
    from redline.config import load
    from redline.spark import build_session

    spark = build_session(load("local", os.environ), app_name="redline-dedupe-benchmark")
    spark.sparkContext.setLogLevel("ERROR")
    home = tempfile.mkdtemp(prefix="redline-dedupe-")
    results = {"benchmark": "dedupe_resend",
               "started_at": datetime.now(UTC).isoformat(),
               "cores": os.cpu_count(), "load_average_start": list(os.getloadavg()),
               "rate": args.rate, "batch_seconds": args.batch_seconds, "batch": args.batch,
               "late_share": args.late_share, "tables": []}
    try:
        for rows in sizes:
            path = os.path.join(home, f"silver_{rows}")
            table = build(spark, path, rows, args.rate, args.batch_seconds, args.late_share)
            log(f"silver of {rows:,} rows in {table['files']:,} files "
                f"({table['build_s']} s to build)")
            for kind in CHECKS:
                table[kind] = check(spark, path, kind, args.batch, args.repeats)
                log(f"  {kind:<15} {table[kind]['records']:,} records, "
                    f"{table[kind]['spans']} spans, {table[kind]['files_read']:,} files read: "
                    f"median {table[kind]['median_s']:.2f} s ({table[kind]['seconds']})")
            results["tables"].append(table)
            shutil.rmtree(path, ignore_errors=True)
    finally:
        spark.stop()
        shutil.rmtree(home, ignore_errors=True)
    results["load_average_end"] = list(os.getloadavg())
    print()
    print(f"{'rows':>12} {'files':>7} " + " ".join(f"{k + ' s':>17}" for k in CHECKS))
    for t in results["tables"]:
        print(f"{t['rows']:>12,} {t['files']:>7,} "
              + " ".join(f"{t[k]['median_s']:>17.2f}" for k in CHECKS))
    if len(results["tables"]) >= 2:
        small, big = results["tables"][0], results["tables"][-1]
        results["ratio_largest_to_smallest"] = {
            k: round(big[k]["median_s"] / small[k]["median_s"], 2) for k in CHECKS}
        print(f"ratio {big['rows']:,} / {small['rows']:,}: "
              + ", ".join(f"{k} {v}" for k, v in results["ratio_largest_to_smallest"].items()))
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(results, indent=2))
    print(f"results in {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
