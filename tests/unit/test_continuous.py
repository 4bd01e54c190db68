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
