"""`redline lake compact`: a stream's small files rewritten into one, seen once by readers."""

from delta.tables import DeltaTable

from redline import catalog
from redline import lake as lake_io


def _drain(spark, source: str, sink: str, ckpt: str) -> None:
    """Stream everything new in ``source`` into ``sink`` (available-now)."""
    (spark.readStream.format("delta").load(source).writeStream.format("delta")
     .option("checkpointLocation", ckpt).trigger(availableNow=True).start(sink)
     .awaitTermination())


def test_compaction_rewrites_small_files_and_streams_do_not_read_them_again(spark, lake):
    table = catalog.bronze("vehicle_telemetry")
    path = catalog.location(lake, table)
    for i in range(6):  # six micro-batches of one small file each
        spark.range(i * 10, i * 10 + 10).coalesce(1).write.format("delta").mode("append") \
            .save(path)
    sink, ckpt = f"{lake}/_test/sink", f"{lake}/_test/ckpt"
    _drain(spark, path, sink, ckpt)

    result = lake_io.compact(spark, lake, table)

    assert (result["files_before"], result["files_after"]) == (6, 1)
    history = DeltaTable.forPath(spark, path).history(1).first()
    assert history.operation == "OPTIMIZE"
    assert sorted(r.id for r in spark.read.format("delta").load(path).collect()) == \
        list(range(60))
    # A stream that had read the six files skips the compaction and reads only new rows.
    spark.range(60, 65).write.format("delta").mode("append").save(path)
    _drain(spark, path, sink, ckpt)
    assert sorted(r.id for r in spark.read.format("delta").load(sink).collect()) == \
        list(range(65))


def test_silver_compaction_leaves_files_of_disjoint_event_times(spark, lake):
    """Six batches, each mixing on-time and week-old event times, compacted into files
    whose event-time ranges do not overlap (they may touch at a shared value), so a
    re-send check for one event time reads one file (what it prunes by)."""
    from datetime import datetime, timedelta

    from pyspark.sql import functions as F

    table = catalog.silver("station_results")
    path = catalog.location(lake, table)
    now = datetime(2026, 3, 10, 12)
    for b in range(6):
        rows = [(f"e{b}-{i}", now - timedelta(days=7 * (i % 2), minutes=b * 10 + i))
                for i in range(40)]
        spark.createDataFrame(rows, "event_id string, event_time timestamp").coalesce(1) \
            .write.format("delta").mode("append").save(path)
    previous = spark.conf.get("spark.databricks.delta.optimize.maxFileSize", None)
    spark.conf.set("spark.databricks.delta.optimize.maxFileSize", "2000")  # several files
    try:
        result = lake_io.compact(spark, lake, table)
    finally:
        if previous is None:
            spark.conf.unset("spark.databricks.delta.optimize.maxFileSize")
        else:
            spark.conf.set("spark.databricks.delta.optimize.maxFileSize", previous)
    assert result["files_before"] == 6 and result["files_after"] > 1
    ranges = sorted((r.lo, r.hi) for r in spark.read.format("delta").load(path)
                    .groupBy(F.input_file_name()).agg(F.min("event_time").alias("lo"),
                                                       F.max("event_time").alias("hi"))
                    .collect())
    assert len(ranges) == result["files_after"]
    assert all(a[1] <= b[0] for a, b in zip(ranges, ranges[1:])), ranges
    assert spark.read.format("delta").load(path).count() == 240


def test_an_unknown_table_is_refused_by_name(capsys):
    from redline.cli import main

    assert main(["lake", "compact", "silver.nope"]) == 2
    err = capsys.readouterr().err
    assert "TABLE_UNKNOWN" in err and "silver.nope" in err
