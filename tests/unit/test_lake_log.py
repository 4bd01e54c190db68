"""Table versions and last-commit metrics read from the Delta log on the driver agree with
Delta's own history, and still work through history() when the log API is unavailable."""

from delta.tables import DeltaTable
from py4j.protocol import Py4JError

from redline import catalog
from redline import lake as lake_io


def _write_three_commits(spark, lake):
    table = catalog.get("ops.job_runs")
    path = catalog.location(lake, table)
    for n in (3, 5, 7):
        spark.range(n).write.format("delta").mode("append").save(path)
    return table, path


def test_version_and_last_commit_agree_with_delta_history(spark, lake):
    table = catalog.get("ops.job_runs")
    assert lake_io.table_version(spark, lake, table) is None
    assert lake_io.last_commit(spark, lake, table) is None

    table, path = _write_three_commits(spark, lake)

    last = DeltaTable.forPath(spark, path).history(1).first()
    assert last.version == 2
    assert lake_io.table_version(spark, lake, table) == 2
    version, metrics = lake_io.last_commit(spark, lake, table)
    assert version == 2
    assert metrics["numOutputRows"] == "7" == last.operationMetrics["numOutputRows"]
    # A commit made through another path (another process would do the same) is seen.
    spark.range(11).write.format("delta").mode("append").save(path)
    assert lake_io.table_version(spark, lake, table) == 3
    assert lake_io.last_commit(spark, lake, table)[1]["numOutputRows"] == "11"


def test_without_the_log_api_history_gives_the_same_answers(spark, lake, monkeypatch):
    table, _ = _write_three_commits(spark, lake)

    def unavailable(*_):
        raise Py4JError("no such method")

    monkeypatch.setattr(lake_io, "_updated_log", unavailable)
    assert lake_io.table_version(spark, lake, table) == 2
    version, metrics = lake_io.last_commit(spark, lake, table)
    assert (version, metrics["numOutputRows"]) == (2, "7")
