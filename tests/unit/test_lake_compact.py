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


def test_an_unknown_table_is_refused_by_name(capsys):
    from redline.cli import main

    assert main(["lake", "compact", "silver.nope"]) == 2
    err = capsys.readouterr().err
    assert "TABLE_UNKNOWN" in err and "silver.nope" in err
