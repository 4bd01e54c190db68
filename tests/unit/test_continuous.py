"""The continuous pipeline's pure parts: what starts a gold cycle, its setting, and what
`redline status` shows of its stages."""

import time

import pytest

from redline.config import load
from redline.continuous import Stage, gold_inputs
from redline.errors import RedlineError
from redline.services.pipeline import stage_summary


def test_a_gold_cycle_starts_from_the_silver_tables_gold_jobs_read():
    names = [t.qualified_name for t in gold_inputs()]
    # Written out from the jobs' declarations (jobs/*.py): station results feed SPC, FPY,
    # KPIs and capability; vehicle tables feed reliability, MTBF and features; the two
    # replayed data sets feed their feature jobs.
    assert names == ["silver.ai4i_process", "silver.cmapss_cycles",
                     "silver.station_results", "silver.vehicle_builds",
                     "silver.vehicle_dtc", "silver.vehicle_telemetry",
                     "silver.warranty_claims"]


@pytest.mark.parametrize("value", ["0", "-5", "abc"])
def test_the_gold_interval_must_be_a_positive_number(value, tmp_path):
    with pytest.raises(RedlineError) as caught:
        load(env={"REDLINE_HOME": str(tmp_path),
                  "REDLINE_PIPELINE_GOLD_INTERVAL_SECONDS": value})
    assert caught.value.code == "CONFIG_INVALID"


def test_the_default_gold_interval(tmp_path):
    assert load(env={"REDLINE_HOME": str(tmp_path)}).pipeline.gold_interval_seconds == 5.0


def test_a_stage_as_status_shows_it():
    stage = Stage()
    assert stage_summary(stage.__dict__) == {"result": "not run yet", "runs": 0,
                                             "ago_s": None, "seconds": None, "detail": ""}
    began = time.time() - 3.0
    stage.done(began, "ok", "2 tables changed")
    shown = stage_summary(stage.__dict__)
    assert shown["result"] == "ok" and shown["runs"] == 1
    assert shown["detail"] == "2 tables changed"
    assert 2.9 <= shown["seconds"] <= 3.5 and 0 <= shown["ago_s"] < 1


STATION_JOBS = ["gold_capability", "gold_defect_pareto", "gold_dimensions",
                "gold_first_pass_yield", "gold_kpi_attribution", "gold_manufacturing_kpis",
                "gold_spc"]


def test_a_new_station_result_runs_the_jobs_that_read_station_results():
    from redline.continuous import affected_jobs, alert_jobs
    from redline.jobs.runner import JOBS

    # From the jobs' declarations: these seven read silver.station_results.
    assert affected_jobs({"silver.station_results"}) == STATION_JOBS
    assert affected_jobs(None) == sorted(JOBS)  # the first cycle: every job
    assert affected_jobs(set()) == []
    first, rest = alert_jobs(STATION_JOBS)
    assert first == ["gold_spc"] and "gold_spc" not in rest and len(rest) == 6


def test_a_job_reading_another_jobs_output_runs_after_it_changes(monkeypatch):
    from types import SimpleNamespace

    from redline import continuous
    from redline.jobs import runner

    def table(name):
        return SimpleNamespace(qualified_name=name)

    jobs = {"a": SimpleNamespace(inputs=(table("silver.x"),), outputs=(table("gold.a"),)),
            "b": SimpleNamespace(inputs=(table("gold.a"),), outputs=(table("gold.b"),)),
            "c": SimpleNamespace(inputs=(table("silver.y"),), outputs=(table("gold.c"),))}
    monkeypatch.setattr(runner, "JOBS", jobs)
    assert continuous.affected_jobs({"silver.x"}) == ["a", "b"]
    assert continuous.affected_jobs({"silver.y"}) == ["c"]


@pytest.mark.spark
def test_a_start_resumes_from_the_oldest_watermark_of_the_jobs_reading_each_table(
        spark, lake):
    """ops.job_runs as a demo left it: every job consumed version 5 of each silver input,
    except one job whose latest success read station_results at 3 (a failed run at 9 and
    an older success at 1 do not count). A job that never ran makes its tables -1."""
    from datetime import UTC, datetime, timedelta

    from redline import runs
    from redline.continuous import gold_inputs, resumed_from
    from redline.jobs.runner import JOBS

    inputs = gold_inputs()
    assert resumed_from(spark, lake, inputs) is None  # no job ever ran
    lagging = next(n for n, j in JOBS.items()
                   if "silver.station_results" in {t.qualified_name for t in j.inputs})
    never = sorted(JOBS)[-1] if sorted(JOBS)[-1] != lagging else sorted(JOBS)[0]
    t0 = datetime(2026, 12, 1, tzinfo=UTC)

    def row(job, version, status, minutes, table=None):
        return {"run_id": f"{job}-{minutes}", "batch_id": "b", "job": job,
                "started_at": t0, "ended_at": t0 + timedelta(minutes=minutes),
                "seconds": 1.0, "status": status, "error": None,
                "inputs": [{"table": t.qualified_name,
                            "version": version if table in (None, t.qualified_name) else 5}
                           for t in JOBS[job].inputs],
                "outputs": [], "metrics": {"mode": "incremental"}}

    for name in JOBS:
        if name not in (lagging, never):
            runs.record(spark, lake, row(name, 5, "SUCCEEDED", 10))
    runs.record(spark, lake, row(lagging, 1, "SUCCEEDED", 5, "silver.station_results"))
    runs.record(spark, lake, row(lagging, 3, "SUCCEEDED", 10, "silver.station_results"))
    runs.record(spark, lake, row(lagging, 9, "FAILED", 20, "silver.station_results"))

    got = resumed_from(spark, lake, inputs)
    never_reads = {t.qualified_name for t in JOBS[never].inputs}
    for t in inputs:
        name = t.qualified_name
        expected = -1 if name in never_reads else 3 if name == "silver.station_results" else 5
        assert got[name] == expected, (name, got)


def test_the_spc_lane_and_the_other_lane_split_the_jobs_and_retry_on_their_own():
    from redline.continuous import MAX_RETRY_SECONDS, Lane

    start = {"silver.station_results": 3, "silver.vehicle_telemetry": 7}
    spc = Lane("spc", Stage(), dict(start), alerting=True)
    rest = Lane("gold", Stage(), dict(start), alerting=False)
    assert not spc.due(start, at=0.0) and not rest.due(start, at=0.0)
    # New telemetry: no SPC job reads it, so the SPC lane runs nothing.
    telemetry = {**start, "silver.vehicle_telemetry": 8}
    assert spc.due(telemetry, at=0.0) and spc.jobs(telemetry) == [] and not spc.jobs_ran
    # New station results: SPC in its lane, the other six readers in the other.
    station = {**start, "silver.station_results": 4}
    assert spc.jobs(station) == ["gold_spc"] and spc.jobs_ran
    assert rest.jobs(station) == [n for n in STATION_JOBS if n != "gold_spc"]
    # Never run before: each lane runs all of its jobs.
    assert Lane("spc", Stage(), None, alerting=True).jobs(station) == ["gold_spc"]
    # A failure waits the interval, then twice as long each time, capped; the other lane
    # is not held back.
    assert [round(rest.failed(5.0)) for _ in range(8)] == [5, 10, 20, 40, 80, 160, 300, 300]
    assert MAX_RETRY_SECONDS == 300
    assert not rest.due(station, at=0.0) and spc.due(station, at=0.0)
