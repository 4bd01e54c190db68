"""Gold jobs are declared once: the runner finds them, orders them by their tables, reads
and writes through the catalog, and refuses a declaration that does not add up."""

from datetime import datetime

import pytest

from redline import catalog
from redline import lake as lake_io
from redline.catalog import Layer
from redline.errors import RedlineError
from redline.jobs import runner
from redline.jobs.declare import Full, GoldJob, Keyed, Source
from redline.pipeline import plan, steps


def test_every_gold_table_but_the_scores_has_exactly_one_declared_writer():
    writers = runner.writers()
    gold = {t for t in catalog.TABLES.values() if t.layer is Layer.GOLD}
    # The models' scores, the review queue and drift are written by `redline ml score`.
    by_scoring = {catalog.VEHICLE_RISK_SCORES, catalog.CMAPSS_RUL_SCORES,
                  catalog.AI4I_FAILURE_SCORES, catalog.REVIEW_QUEUE, catalog.MODEL_DRIFT}
    assert set(writers) == gold - by_scoring
    assert all(j.name.startswith("gold_") for j in runner.JOBS.values())


def test_the_order_follows_the_tables():
    names = [s.name for s in plan(["gold_spc", "gold_mtbf"])]
    # Each gold job comes after the silver drains writing its inputs, and nothing else.
    assert names == ["silver_station_results", "gold_spc", "silver_vehicle_builds",
                     "silver_warranty_claims", "gold_mtbf"]
    every = plan(["all"])
    position = {s.name: i for i, s in enumerate(every)}
    for step in every:
        for table in step.inputs:
            for other in every:
                if table in other.outputs:
                    assert position[other.name] < position[step.name], (other.name, step.name)
    # Replayed data sets' steps are in `all` (skipped while nothing was replayed), and
    # each runs by name.
    assert position["silver_cmapss_cycles"] < position["gold_cmapss_features"]
    assert [s.name for s in plan(["silver_cmapss_cycles"])] == ["silver_cmapss_cycles"]
    # A group is its steps only: `gold` runs the gold jobs on silver as it is.
    assert [s.name for s in plan(["gold"])] == list(runner.JOBS)


def test_an_unknown_job_names_the_known_ones():
    with pytest.raises(RedlineError, match="no job 'gold_nope'.*gold_spc"):
        plan(["gold_nope"])
    assert "gold_first_pass_yield" in steps()


@pytest.mark.parametrize("change, match", [
    (dict(name="fpy"), "names start with 'gold_'"),
    (dict(outputs=(catalog.silver("station_results"),)), "not gold tables"),
    (dict(outputs=()), "declares no inputs or no outputs"),
    (dict(incremental=Keyed(("day",), (Source(catalog.silver("vehicle_dtc"), lambda d: d),))),
     "silver.vehicle_dtc, not an input"),
])
def test_a_declaration_that_does_not_add_up_is_refused(change, match):
    fields = dict(name="gold_x", description="x", inputs=(catalog.silver("station_results"),),
                  outputs=(catalog.FIRST_PASS_YIELD,), transform=lambda t: {},
                  incremental=Full())
    fields.update(change)
    with pytest.raises(RedlineError, match=match):
        GoldJob(**fields)


def _results(spark, rows):
    base = {"event_time": datetime(2026, 1, 5, 8), "schema_version": 1, "plant": "P",
            "line": "L", "station": "S010", "operation": "op", "shift": "A",
            "measurements": [], "defect_codes": [], "cycle_time_s": 1.0,
            "kafka_topic": "t", "kafka_partition": 0}
    table = catalog.silver("station_results")
    full = [{**base, "event_id": f"e{i}", "kafka_offset": i, **r} for i, r in enumerate(rows)]
    return spark.createDataFrame([tuple(r.get(f.name) for f in table.schema().fields)
                                  for r in full], table.schema())


def test_a_derived_output_reads_the_output_written_before_it(spark, lake):
    """The manufacturing KPIs job writes station KPIs, then line KPIs from them; a run
    reads its input through the catalog and records the rows of each output."""
    lake_io.overwrite(_results(spark, [
        {"unit_serial": "U1", "attempt": 1, "result": "PASS"},
        {"unit_serial": "U2", "attempt": 1, "result": "FAIL"},
        {"unit_serial": "U2", "attempt": 2, "result": "PASS"},
    ]), lake, catalog.silver("station_results"))
    out = runner.run(spark, lake, runner.get("gold_manufacturing_kpis"), "b1")
    assert (out["station_kpis"], out["line_kpis"]) == (1, 1)
    station = catalog.read(spark, lake, catalog.STATION_KPIS).first()
    line = catalog.read(spark, lake, catalog.LINE_KPIS).first()
    # By hand: 2 units, 1 passed first time; the line has one station, so RTY = FPY.
    assert station.fpy == pytest.approx(0.5) and line.rty == pytest.approx(0.5)


def test_a_transform_producing_an_undeclared_table_fails_and_is_recorded(spark, lake):
    lake_io.overwrite(_results(spark, [{"unit_serial": "U1", "attempt": 1,
                                        "result": "PASS"}]),
                      lake, catalog.silver("station_results"))
    job = runner.get("gold_first_pass_yield")
    stray = runner.with_transform(
        job, lambda t: {catalog.MTBF: t[catalog.silver("station_results")]})
    with pytest.raises(RedlineError, match="produced gold.mtbf, not one of its declared"):
        runner.run(spark, lake, stray, "b1")
    run = catalog.read(spark, lake, catalog.JOB_RUNS).first()
    assert (run.job, run.status) == ("gold_first_pass_yield", "FAILED")
    assert not catalog.exists(spark, lake, catalog.MTBF)


def test_a_group_skips_steps_with_nothing_to_read_and_a_named_step_fails(spark, lake):
    from redline.pipeline import run_jobs

    lines: list[str] = []
    results = run_jobs(spark, lake, ["all"], progress=lines.append, record=False)
    assert set(results) == {s.name for s in plan(["all"])}
    assert all("skipped" in r for r in results.values())
    assert results["silver_cmapss_cycles"] == {"skipped": "bronze.cmapss_cycles has no data yet"}
    assert any("`redline replay cmapss` publishes it" in line for line in lines)
    # Named, the job runs and says what it lacks; the drain it brings along is skipped.
    with pytest.raises(RedlineError, match="TABLE_EMPTY.*silver.cmapss_cycles has no data"):
        run_jobs(spark, lake, ["gold_cmapss_features"], progress=lines.append, record=False)
