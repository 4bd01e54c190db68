"""`redline jobs run NAME --alone`: one step, as a scheduler's task runs it.

The step's upstream steps are not brought along, and a step whose inputs have no data yet
ends with exit 3 (a skipped task) before any Spark session starts.
"""

from __future__ import annotations

import pytest

from redline import pipeline
from redline.cli import main


@pytest.fixture
def empty_home(tmp_path, monkeypatch):
    monkeypatch.setenv("REDLINE_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("REDLINE_LAKE_ROOT", raising=False)
    monkeypatch.delenv("REDLINE_PROFILE", raising=False)


def test_alone_plans_only_the_named_steps():
    assert [s.name for s in pipeline.plan(["gold_spc"])] == ["silver_station_results",
                                                            "gold_spc"]
    assert [s.name for s in pipeline.plan(["gold_spc"], alone=True)] == ["gold_spc"]
    # Named together, they still run in the order of their tables.
    both = pipeline.plan(["gold_spc", "silver_station_results"], alone=True)
    assert [s.name for s in both] == ["silver_station_results", "gold_spc"]


def test_steps_without_input_data_are_skipped_with_exit_3(empty_home, capsys):
    assert main(["jobs", "run", "gold_spc", "gold_mtbf", "--alone"]) == 3
    out = capsys.readouterr().out.splitlines()
    assert out == ["gold_spc: skipped, silver.station_results has no data yet",
                   "gold_mtbf: skipped, silver.vehicle_builds, silver.warranty_claims have "
                   "no data yet"]


@pytest.mark.parametrize("names, code", [(["all"], "JOB_ALONE"), (["gold"], "JOB_ALONE"),
                                         ([], "JOB_ALONE"), (["no_such_job"], "JOB_UNKNOWN")])
def test_alone_needs_step_names(names, code, empty_home, capsys):
    assert main(["jobs", "run", *names, "--alone"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"redline: error [{code}] ")
