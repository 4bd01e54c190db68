"""gold_spc's incremental path (``spc_tail``): series brought up to date from their first
changed point equal a full rebuild, late points (which renumber the points after them)
and Nelson episodes that run across the first changed point included; a change of the
analysis settings, or a late point inside a date-range baseline, recomputes the series
whose baseline it changes, whole."""

from datetime import datetime, timedelta

import pytest
from pyspark.sql import functions as F
from simulated import typed

from redline import catalog
from redline import lake as lake_io
from redline.config import AnalysisConfig
from redline.jobs.runner import JOBS
from redline.jobs.runner import run as run_job
from redline.schemas.payloads import latest
from redline.streaming.simulator import SimulationSpec, Simulator

SPEC = SimulationSpec(vehicles=240, days=8, seed=5)
SPLIT_DAY = 3
TABLES = ("gold.spc_points", "gold.spc_subgroups", "gold.spc_violations")


@pytest.fixture(scope="module")
def parts():
    """(part 1, part 2, held-back results): every 4th attempt 1 of the 12 hours before the
    split is held back and arrives with part 2, late (after every series' baselines)."""
    split = datetime.combine(SPEC.start + timedelta(days=SPLIT_DAY), datetime.min.time())
    one, two, late = [], [], []
    for i, event in enumerate(e for e in Simulator(SPEC).events()
                              if e.topic == "station_results"):
        row = typed(event.payload)
        if row["event_time"].replace(tzinfo=None) >= split:
            two.append(row)
        elif (row["attempt"] == 1 and i % 4 == 0
              and row["event_time"].replace(tzinfo=None) >= split - timedelta(hours=12)):
            late.append(row)
        else:
            one.append(row)
    return one, two + late, late


def _write(spark, lake, rows):
    df = (spark.createDataFrame(rows, latest("station_results").struct)
          .withColumn("kafka_topic", F.lit("station_results"))
          .withColumn("kafka_partition", F.lit(0))
          .withColumn("kafka_offset", F.monotonically_increasing_id())
          .withColumn("kafka_timestamp", F.current_timestamp()))
    lake_io.append(df, lake, catalog.silver("station_results"))


def _run(spark, lake, batch, full=False, settings=None):
    run_job(spark, lake, JOBS["gold_spc"], batch, full, settings=settings)
    return next(r.metrics for r in catalog.read(spark, lake, catalog.get("ops.job_runs"))
                .where(F.col("batch_id") == batch).collect())


def _rounded(df):
    return df.select(*[F.round(c, 9).alias(c) if t == "double" else F.col(c)
                       for c, t in df.dtypes])


def _same_tables(spark, inc, full):
    for name in TABLES:
        a = _rounded(catalog.read(spark, inc, catalog.get(name)))
        b = _rounded(catalog.read(spark, full, catalog.get(name)))
        assert a.count() == b.count() > 0, name
        assert a.exceptAll(b).count() == 0, f"{name}: rows only in the incremental lake"
        assert b.exceptAll(a).count() == 0, f"{name}: rows only in the full rebuild"


def test_series_updated_from_their_first_changed_point_equal_a_full_rebuild(
        spark, tmp_path, parts):
    one, two, late = parts
    inc, full = str(tmp_path / "inc"), str(tmp_path / "full")
    _write(spark, inc, one)
    first = _run(spark, inc, "run-1")
    points = catalog.get("gold.spc_points")
    key = ["plant", "line", "station", "characteristic"]
    count_before = {tuple(r[:4]): r[4] for r in catalog.read(spark, inc, points)
                    .groupBy(*key).count().collect()}

    _write(spark, inc, two)
    second = _run(spark, inc, "run-2")

    _write(spark, full, one + two)
    _run(spark, full, "full", full=True)

    assert first["mode"] == "full"
    # Every series had its baselines before the late points: none was recomputed whole.
    assert second["mode"] == "incremental", second
    # Three lines of nine characteristics each (3 + 2 + 2 + 2 over the four stations).
    assert int(second["keys"]) == 27 and second["whole_series"] == "0", second
    # Late points landed inside the part of their series kept from run 1: the points
    # after them were renumbered.
    late_ids = [r["event_id"] for r in late]
    late_seq = (catalog.read(spark, inc, points).where(F.col("event_id").isin(late_ids))
                .select(*key, "seq").collect())
    assert any(r.seq <= count_before[tuple(r[:4])] for r in late_seq)
    _same_tables(spark, inc, full)
    # The comparison covers episodes on both charts.
    charts = {r.chart for r in catalog.read(spark, full, catalog.get("gold.spc_violations"))
              .select("chart").distinct().collect()}
    assert charts == {"I", "XBAR"}

    # New settings, no new data: the leak-rate series get another baseline and subgroup
    # size, and fewer rules are on everywhere. The leak-rate series are recomputed whole,
    # the others keep their points and limits; every table equals a full rebuild.
    settings = AnalysisConfig(spc_rules="1,2,5", characteristic=(
        ("leak_rate_ccm", (("spc_baseline_points", 30), ("spc_subgroup_size", 4))),))
    third = _run(spark, inc, "run-3", settings=settings)
    _run(spark, full, "full-2", full=True, settings=settings)
    leak = catalog.read(spark, full, points).where("characteristic = 'leak_rate_ccm'") \
        .select(*key).distinct().count()
    assert third["mode"] == "incremental" and third["changed_rows"] == "0", third
    assert int(third["keys"]) == int(third["whole_series"]) == leak > 0, third
    _same_tables(spark, inc, full)
    labels = {(r.characteristic, r.baseline) for r in
              catalog.read(spark, inc, points).select("characteristic", "baseline")
              .distinct().collect()}
    assert ("leak_rate_ccm", "first 30 points") in labels
    assert ("bolt_torque_nm", "first 25 points") in labels
    sizes = {(r.characteristic, r.subgroup_size, r.baseline) for r in
             catalog.read(spark, inc, catalog.get("gold.spc_subgroups"))
             .select("characteristic", "subgroup_size", "baseline").distinct().collect()}
    assert ("leak_rate_ccm", 4, "first 5 subgroups of 4") in sizes
    assert ("bolt_torque_nm", 5, "first 5 subgroups of 5") in sizes
    rules = {r.rule for r in catalog.read(spark, inc, catalog.get("gold.spc_violations"))
             .select("rule").distinct().collect()}
    assert rules and rules <= {1, 2, 5}
    # The same settings again: nothing to do.
    assert _run(spark, inc, "run-4", settings=settings)["mode"] == "unchanged"


def test_a_late_point_inside_a_date_range_baseline_recomputes_its_series(
        spark, tmp_path, parts):
    """Late points arrive for the evening before the split (day 2). The leak-rate series'
    baseline runs to day 2, so a late point falls inside it and the series is recomputed
    whole; every other baseline ends on day 1, and those series take the late points as a
    tail, keeping their limits."""
    one, two, late = parts
    day = SPEC.start + timedelta(days=1)
    settings = AnalysisConfig(
        spc_baseline_dates=f"{SPEC.start}..{day}",
        characteristic=(("leak_rate_ccm", (
            ("spc_baseline_dates", f"{SPEC.start}..{day + timedelta(days=1)}"),)),))
    inc, full = str(tmp_path / "inc"), str(tmp_path / "full")
    _write(spark, inc, one)
    _run(spark, inc, "run-1", settings=settings)
    _write(spark, inc, two)
    second = _run(spark, inc, "run-2", settings=settings)
    _write(spark, full, one + two)
    _run(spark, full, "full", full=True, settings=settings)

    late_leak = {(r["plant"], r["line"], r["station"]) for r in late
                 if r["measurements"][0]["characteristic"] == "leak_rate_ccm"}
    assert second["mode"] == "incremental", second
    assert int(second["keys"]) == 27 and int(second["whole_series"]) == len(late_leak) > 0
    _same_tables(spark, inc, full)
    baselines = {(r.characteristic, r.baseline) for r in
                 catalog.read(spark, inc, catalog.get("gold.spc_points"))
                 .select("characteristic", "baseline").distinct().collect()}
    assert ("leak_rate_ccm", f"{SPEC.start}..{day + timedelta(days=1)}") in baselines
    assert ("bolt_torque_nm", f"{SPEC.start}..{day}") in baselines
