"""Incremental gold jobs give the same tables as a full rebuild, late events included.

Simulated silver is split in two: part 1 (the first days, less a few held-back events)
and part 2 (the later days plus the held-back events, now late: event times days in the
past, for keys already in gold). Lake A gets part 1, a run of every gold job, part 2 and
a second, incremental run; lake B gets everything at once and one full run. Every gold
table of A must equal B's.

The jobs that rebuild in full whenever an input changed run their unchanged ``run``
(equal by construction); one of them, the cheapest, is run to check its modes.

Then the analysis settings change (no new data): the jobs reading them run again, and
every table still equals a full rebuild with the new settings.
"""

from datetime import datetime, timedelta

import pytest
from pyspark.sql import functions as F
from pyspark.sql.types import DoubleType, FloatType
from simulated import typed

from redline import catalog
from redline import lake as lake_io
from redline.config import AnalysisConfig
from redline.jobs import incremental
from redline.jobs.declare import Keyed, Tail
from redline.jobs.runner import JOBS
from redline.jobs.runner import run as run_job
from redline.schemas.payloads import latest
from redline.streaming.simulator import SimulationSpec, Simulator

SPEC = SimulationSpec(vehicles=30, days=20, seed=11, telemetry_per_day=1)
TOPICS = ("station_results", "vehicle_builds", "vehicle_dtc", "warranty_claims",
          "vehicle_telemetry")
SPLIT_DAY = 8
"""Events before this day (from the start) are part 1."""
GOLD_JOBS = [j for j in JOBS.values() if isinstance(j.incremental, (Keyed, Tail))
             or j.name == "gold_defect_pareto"]


@pytest.fixture(scope="module")
def parts():
    """(part 1, part 2, late station results) as lists of typed payloads per topic."""
    split = datetime.combine(SPEC.start + timedelta(days=SPLIT_DAY), datetime.min.time())
    one = {t: [] for t in TOPICS}
    two = {t: [] for t in TOPICS}
    late = []
    n = 0
    for event in Simulator(SPEC).events():
        if event.topic not in one:
            continue
        row = typed(event.payload)
        if row["event_time"].replace(tzinfo=None) >= split:
            two[event.topic].append(row)
            continue
        n += 1
        # Every 7th attempt-1 station result and every 5th telemetry/DTC of the first
        # days is held back: it arrives with part 2, days late.
        held = ((event.topic == "station_results" and row["attempt"] == 1 and n % 7 == 0)
                or (event.topic in ("vehicle_telemetry", "vehicle_dtc") and n % 5 == 0))
        (two if held else one)[event.topic].append(row)
        if held and event.topic == "station_results":
            late.append(row)
    for topic in TOPICS:  # every silver table exists before the first run
        if not one[topic]:
            one[topic].append(two[topic].pop(0))
    assert late and all(two[t] for t in ("station_results", "vehicle_telemetry"))
    return one, two, late


def _write(spark, lake, rows_by_topic):
    for topic, rows in rows_by_topic.items():
        if not rows:
            continue
        df = (spark.createDataFrame(rows, latest(topic).struct)
              .withColumn("kafka_topic", F.lit(topic))
              .withColumn("kafka_partition", F.lit(0))
              .withColumn("kafka_offset", F.monotonically_increasing_id())
              .withColumn("kafka_timestamp", F.current_timestamp()))
        lake_io.append(df, lake, catalog.silver(topic))


def _run_all(spark, lake, batch, full=False, settings=None):
    for job in GOLD_JOBS:
        run_job(spark, lake, job, batch, full, settings=settings)


def _runs(spark, lake, batch):
    return {r.job: r.metrics for r in catalog.read(spark, lake, catalog.get("ops.job_runs"))
            .where(F.col("batch_id") == batch).collect()}


def _comparable(df):
    # Sums of doubles in a different order differ in the last bits; 9 decimals is far
    # below any KPI's meaning.
    return df.select(*[F.round(F.col(f.name), 9).alias(f.name)
                       if isinstance(f.dataType, (DoubleType, FloatType)) else F.col(f.name)
                       for f in df.schema.fields])


def test_increments_with_late_events_equal_a_full_rebuild(spark, tmp_path, parts,
                                                           monkeypatch):
    one, two, late = parts
    # The fixture is small, so its increment touches most of every series: without this
    # the keyed jobs would rebuild instead (cheaper at that share), and the key-by-key path
    # compared here would not run.
    monkeypatch.setattr(incremental, "REBUILD_ABOVE_SCOPE_SHARE", 1.0)
    inc, full = str(tmp_path / "incremental"), str(tmp_path / "full")

    _write(spark, inc, one)
    _run_all(spark, inc, "run-1")
    fpy = catalog.get("gold.first_pass_yield")
    before = {(r.plant, r.line, r.station, r.day): r.units
              for r in catalog.read(spark, inc, fpy).collect()}

    _write(spark, inc, two)
    _run_all(spark, inc, "run-2")

    _write(spark, full, {t: one[t] + two[t] for t in TOPICS})
    _run_all(spark, full, "full", full=True)

    # Every gold table is the same, row for row.
    outputs = sorted({t.qualified_name for j in GOLD_JOBS for t in j.outputs})
    assert "gold.spc_points" in outputs and "gold.station_kpis" in outputs

    def same_tables():
        for name in outputs:
            table = catalog.get(name)
            a = _comparable(catalog.read(spark, inc, table))
            b = _comparable(catalog.read(spark, full, table))
            assert a.count() == b.count(), name
            assert a.exceptAll(b).count() == 0, f"{name}: rows only in the incremental lake"
            assert b.exceptAll(a).count() == 0, f"{name}: rows only in the full rebuild"

    same_tables()

    # The second run was incremental for every keyed job, and recomputed part of it.
    first, second = _runs(spark, inc, "run-1"), _runs(spark, inc, "run-2")
    assert {m["mode"] for m in first.values()} == {"full"}
    for job, spec in ((j.name, j.incremental) for j in GOLD_JOBS):
        if isinstance(spec, Keyed):
            assert second[job]["mode"] == "incremental", (job, second[job])
            assert 0 < int(second[job]["keys"]), job
            if job != "gold_capability":  # keyed by station: part 2 reaches every one
                assert int(second[job]["scope_rows"]) < int(second[job]["input_rows"]), job
        elif isinstance(spec, Tail):
            # This fixture's series are still filling their baselines, so each is
            # recomputed whole; test_spc_tail covers series updated from a late point.
            assert second[job]["mode"] == "incremental", (job, second[job])
            assert 0 < int(second[job]["keys"]) == int(second[job]["whole_series"]), job
        else:
            assert second[job]["mode"] == "full", job
    for name, (job, key) in {"gold.first_pass_yield": ("gold_first_pass_yield", 4),
                             "gold.station_kpis": ("gold_manufacturing_kpis", None),
                             "gold.capability": ("gold_capability", 4)}.items():
        total = catalog.read(spark, full, catalog.get(name)).count()
        if key is not None:  # one row per key in these tables
            assert int(second[job]["keys"]) < total, (job, second[job], total)

    # A late attempt 1 changed an old key: its day's units grew by the late arrivals.
    late_units: dict = {}
    for r in late:
        k = (r["plant"], r["line"], r["station"], r["event_time"].date())
        late_units[k] = late_units.get(k, 0) + 1
    after = {(r.plant, r.line, r.station, r.day): r.units
             for r in catalog.read(spark, inc, fpy).collect()}
    old = [k for k in late_units if k in before]
    assert old, "no late event for a key already in gold"
    for k in old:
        assert after[k] == before[k] + late_units[k], (k, before[k], after[k])

    # A third run without new data reads and writes nothing.
    _run_all(spark, inc, "run-3")
    assert {m["mode"] for m in _runs(spark, inc, "run-3").values()} == {"unchanged"}

    # New analysis settings, no new data: capability rebuilds, SPC recomputes the series
    # whose baseline changed (and every series' violations), the others stay unchanged.
    settings = AnalysisConfig(capability_periods="week,baseline", spc_rules="1,2,6",
                              characteristic=(("bolt_torque_nm",
                                               (("spc_baseline_points", 5),)),))
    _run_all(spark, inc, "run-4", settings=settings)
    _run_all(spark, full, "full-2", full=True, settings=settings)
    fourth = _runs(spark, inc, "run-4")
    assert fourth["gold_capability"]["mode"] == "full", fourth["gold_capability"]
    assert "analysis settings" in fourth["gold_capability"]["reason"]
    assert fourth["gold_spc"]["mode"] == "incremental", fourth["gold_spc"]
    assert 0 < int(fourth["gold_spc"]["whole_series"]) == int(fourth["gold_spc"]["keys"])
    assert {m["mode"] for j, m in fourth.items()
            if not JOBS[j].settings} == {"unchanged"}, fourth
    same_tables()
    # This fixture's series are short: only bolt torque's 5-point baselines are full.
    periods = {(r.period, r.characteristic if r.period == "baseline" else None) for r in
               catalog.read(spark, inc, catalog.get("gold.capability"))
               .select("period", "characteristic").distinct().collect()}
    assert periods == {("week", None), ("baseline", "bolt_torque_nm")}


def test_a_lake_without_change_data_feed_falls_back_to_a_full_run(spark, lake, parts,
                                                                   monkeypatch):
    one, two, _ = parts
    monkeypatch.setattr(incremental, "REBUILD_ABOVE_SCOPE_SHARE", 1.0)
    results = catalog.silver("station_results")
    rows = (spark.createDataFrame(one["station_results"], latest("station_results").struct)
            .withColumn("kafka_topic", F.lit("station_results"))
            .withColumn("kafka_partition", F.lit(0))
            .withColumn("kafka_offset", F.lit(0).cast("long"))
            .withColumn("kafka_timestamp", F.current_timestamp()))
    # A silver table created without a change data feed (an older lake).
    (rows.write.format("delta").option("delta.enableChangeDataFeed", "false")
     .save(catalog.location(lake, results)))
    job = JOBS["gold_first_pass_yield"]
    run_job(spark, lake, job, "b1")
    lake_io.append(rows.limit(3), lake, results)
    run_job(spark, lake, job, "b2")
    # The run's recorded input version is the one it consumed: the next run's watermark.
    recorded = (catalog.read(spark, lake, catalog.get("ops.job_runs"))
                .where(F.col("batch_id") == "b2").first().inputs)
    assert [(i.table, i.version) for i in recorded] == \
        [("silver.station_results", lake_io.table_version(spark, lake, results))]
    assert incremental.watermarks(spark, lake, "gold_first_pass_yield") == \
        {"silver.station_results": recorded[0].version}
    path = catalog.location(lake, results)
    spark.sql(f"ALTER TABLE delta.`{path}` SET TBLPROPERTIES "
              f"(delta.enableChangeDataFeed = false)")
    lake_io.append(rows.limit(2), lake, results)  # not in any change data feed
    run_job(spark, lake, job, "b3")
    lake_io.append(rows.limit(2), lake, results)
    run_job(spark, lake, job, "b4")
    runs = {b: _runs(spark, lake, b)["gold_first_pass_yield"] for b in ("b1", "b2", "b3", "b4")}
    # The first run turned the feed on; the rows appended after it are read from it.
    assert runs["b1"]["mode"] == "full" and runs["b1"]["reason"] == "first run (no watermark)"
    assert runs["b1"]["cdf_enabled"] == "silver.station_results"
    assert runs["b2"]["mode"] == "incremental" and runs["b2"]["changed_rows"] == "3"
    # A gap in the feed: a full rebuild that says why, then increments again.
    assert runs["b3"]["mode"] == "full" and "change data feed" in runs["b3"]["reason"]
    assert runs["b3"]["cdf_enabled"] == "silver.station_results"
    assert runs["b4"]["mode"] == "incremental" and runs["b4"]["changed_rows"] == "2"
    expected = rows.where("attempt = 1").dropDuplicates(
        ["unit_serial", "plant", "line", "station"]).count()
    assert catalog.read(spark, lake, catalog.get("gold.first_pass_yield")) \
        .agg(F.sum("units")).first()[0] == expected

    # Changes whose keys hold most of the input rows: a rebuild, which says why.
    monkeypatch.setattr(incremental, "REBUILD_ABOVE_SCOPE_SHARE", 0.5)
    lake_io.append(rows, lake, results)
    run_job(spark, lake, job, "b5")
    b5 = _runs(spark, lake, "b5")["gold_first_pass_yield"]
    assert b5["mode"] == "full", b5
    assert "rebuilding costs less than replacing them key by key" in b5["reason"], b5
    assert int(b5["scope_rows"]) > 0.5 * int(b5["input_rows"]), b5
