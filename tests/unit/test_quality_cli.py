"""`redline quality gate` as scripts and CI systems call it: exit codes, JSON, JUnit."""

import json
from datetime import date
from xml.etree import ElementTree

from redline import catalog
from redline import lake as lake_io
from redline.cli import main
from redline.schemas.tables import FIRST_PASS_YIELD


def test_gate_command_exit_codes_json_and_junit(spark, lake, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("REDLINE_LAKE_ROOT", lake)
    monkeypatch.setenv("REDLINE_HOME", str(tmp_path / "home"))
    fpy = ["gate", "--tables", "gold.first_pass_yield"]

    # Nothing written yet: the gate cannot run, and says which table is missing.
    assert main(["quality", *fpy]) == 2
    assert "MISSING gold.first_pass_yield" in capsys.readouterr().out

    lake_io.overwrite(spark.createDataFrame(
        [(date(2026, 1, 5), "P", "L", "S010", 10, 9, 0.9)], FIRST_PASS_YIELD),
        lake, catalog.FIRST_PASS_YIELD)
    junit = tmp_path / "ci" / "gate.xml"
    assert main(["quality", *fpy, "--json", "--junit", str(junit)]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["exit_code"] == 0 and out["tables"] == {"gold.first_pass_yield": 0}
    assert out["errors"] == [] and len(out["results"]) == out["evaluated"]
    suites = ElementTree.parse(junit).getroot().findall("testsuite")
    assert [s.get("name") for s in suites] == ["gold.first_pass_yield"]

    lake_io.overwrite(spark.createDataFrame(
        [(date(2026, 1, 5), "P", "L", "S010", 10, 9, 1.9)], FIRST_PASS_YIELD),
        lake, catalog.FIRST_PASS_YIELD)
    assert main(["quality", *fpy, "--json"]) == 1
    errors = json.loads(capsys.readouterr().out)["errors"]
    assert [(e["table"], e["column"], e["version"]) for e in errors] == [
        ("gold.first_pass_yield", "fpy", 1)]
    assert errors[0]["sample_values"] == ["1.9"]
    # The earlier version still passes when named.
    assert main(["quality", *fpy, "--as-of", "0"]) == 0
    assert main(["quality", "gate", "--as-of", "0"]) == 2
    assert "--as-of names a Delta version of one table" in capsys.readouterr().err
