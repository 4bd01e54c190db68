"""Write-audit-publish: a gold job whose output fails an error check leaves the published
table exactly as it was, its run recorded as failed with the gate's findings."""

from datetime import UTC, datetime

import pytest
from pyspark.sql import functions as F

from redline import catalog
from redline import lake as lake_io
from redline.errors import RedlineError
from redline.jobs import runner
from redline.jobs.dimensions import dim_station
from redline.jobs.first_pass_yield import first_pass_yield
from redline.quality.gate import auditor

RESULTS = catalog.silver("station_results")


def _results(spark, n):
    rows = [{"event_id": f"e{i}", "event_time": datetime(2026, 1, 5, 8), "schema_version": 1,
             "unit_serial": f"U{i}", "plant": "P", "line": "L", "station": "S010",
             "operation": "op", "shift": "A", "attempt": 1,
             "result": "PASS" if i % 4 else "FAIL", "measurements": [], "defect_codes": [],
             "cycle_time_s": 1.0, "kafka_topic": "t", "kafka_partition": 0, "kafka_offset": i,
             "kafka_timestamp": datetime.now(UTC)} for i in range(n)]
    return spark.createDataFrame([tuple(r.get(f.name) for f in RESULTS.schema().fields)
                                  for r in rows], RESULTS.schema())


def _bad(t):
    """First-pass yield with every rate doubled: above 1, out of its range."""
    return {catalog.FIRST_PASS_YIELD: first_pass_yield(t[RESULTS])
            .withColumn("fpy", F.col("fpy") * 2)}


def test_a_failing_output_is_never_what_readers_see(spark, lake, tmp_path):
    audit = auditor(tmp_path / "reports")
    job = runner.get("gold_first_pass_yield")
    lake_io.overwrite(_results(spark, 8), lake, RESULTS)
    assert runner.run(spark, lake, job, "b1", audit=audit)["audit"] == "passed"
    published = catalog.read(spark, lake, catalog.FIRST_PASS_YIELD).collect()
    assert [(r.units, r.fpy) for r in published] == [(8, 0.75)]  # 6 of 8 passed first time

    lake_io.append(_results(spark, 4), lake, RESULTS)  # new silver rows
    with pytest.raises(RedlineError, match="not published") as caught:
        runner.run(spark, lake, runner.with_transform(job, _bad), "b2", full=True,
                   audit=audit)
    assert "gold.first_pass_yield expect_column_values_to_be_between column=fpy" in str(
        caught.value)
    assert "restored to version 0" in str(caught.value)
    # Readers see exactly the rows of the published version.
    after = catalog.read(spark, lake, catalog.FIRST_PASS_YIELD).collect()
    assert sorted(after) == sorted(published)
    run = (catalog.read(spark, lake, catalog.JOB_RUNS).where(F.col("batch_id") == "b2")
           .first())
    assert run.status == "FAILED" and "QUALITY_GATE_FAILED" in run.error
    assert "column=fpy" in run.error
    # The gate's findings are in the history too.
    failed = (catalog.read(spark, lake, catalog.QUALITY_RESULTS)
              .where(~F.col("success") & (F.col("column") == "fpy")).count())
    assert failed == 1


def test_a_failing_first_write_leaves_no_table(spark, lake, tmp_path):
    lake_io.overwrite(_results(spark, 8), lake, RESULTS)
    job = runner.with_transform(runner.get("gold_first_pass_yield"), _bad)
    with pytest.raises(RedlineError, match="removed \\(it did not exist before\\)"):
        runner.run(spark, lake, job, "b1", audit=auditor(tmp_path / "reports"))
    assert not catalog.exists(spark, lake, catalog.FIRST_PASS_YIELD)


def _at_station(df, station):
    return df.withColumn("station", F.lit(station)).withColumn(
        "event_id", F.concat(F.col("event_id"), F.lit(f"-{station}")))


def test_an_audit_checks_references_only_against_what_the_run_refreshed(spark, lake,
                                                                         tmp_path):
    """Once, `redline jobs run gold_spc` alone failed its audit after station results of a
    new station arrived: gold.spc_points referenced gold.dim_station, which another job
    writes and that run had not refreshed. gold.first_pass_yield has the same reference."""
    audit = auditor(tmp_path / "reports")
    fpy = runner.get("gold_first_pass_yield")
    lake_io.overwrite(_at_station(_results(spark, 8), "S010"), lake, RESULTS)
    # gold.dim_station as gold_dimensions writes it (that job also needs vehicle builds).
    lake_io.overwrite(dim_station(catalog.read(spark, lake, RESULTS)), lake,
                      catalog.DIM_STATION)
    assert runner.run(spark, lake, fpy, "b1", audit=audit)["audit"] == "passed"

    lake_io.append(_at_station(_results(spark, 4), "S020"), lake, RESULTS)  # a new station
    # The job alone: gold.dim_station is not its input and was not refreshed, so its
    # reference is reported as not checked (a warning), and the new station is published.
    assert runner.run(spark, lake, fpy, "b2", audit=audit)["audit"] == "passed"
    stations = {r.station for r in catalog.read(spark, lake, catalog.FIRST_PASS_YIELD)
                .collect()}
    assert stations == {"S010", "S020"}
    skipped = (catalog.read(spark, lake, catalog.QUALITY_RESULTS)
               .where((F.col("table") == "gold.first_pass_yield")
                      & F.col("detail").contains("neither an input of the job nor refreshed"))
               .count())
    assert skipped == 2  # the runs b1 and b2, each alone
    # When the same run did refresh gold.dim_station, the reference is checked: here the
    # dimension is stale (it lacks S020), so the audit refuses to publish.
    lake_io.append(_at_station(_results(spark, 2), "S030"), lake, RESULTS)
    with pytest.raises(RedlineError, match="not published") as caught:
        runner.run(spark, lake, fpy, "b3", audit=audit, refreshed={"gold.dim_station"})
    assert "gold.first_pass_yield" in str(caught.value) and "S030" in str(caught.value)



def test_what_an_audit_checks_references_against():
    """A job's inputs and outputs and the tables refreshed earlier in its run; not the
    dimension another job writes."""
    spc = runner.get("gold_spc")
    assert runner.checkable(spc) == {"silver.station_results", "gold.spc_points",
                                     "gold.spc_subgroups", "gold.spc_violations"}
    assert "gold.dim_station" in runner.checkable(spc, {"gold.dim_station"})
