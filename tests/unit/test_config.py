from datetime import date
from pathlib import Path

import pytest

from redline import catalog
from redline.config import AnalysisConfig, load
from redline.errors import RedlineError


def _write(tmp_path: Path, text: str) -> dict:
    path = tmp_path / "redline.toml"
    path.write_text(text)
    return {"REDLINE_CONFIG": str(path)}


def test_defaults_and_env_override(tmp_path):
    env = _write(tmp_path, "[local]\n")
    env.update({"REDLINE_KAFKA_PORT": "19999", "REDLINE_HOME": str(tmp_path / "h")})
    cfg = load("local", env)
    assert cfg.kafka.port == 19999
    assert cfg.kafka.servers == "127.0.0.1:19999"
    assert cfg.mlflow.uri == "http://127.0.0.1:5000"
    assert cfg.lake_root == str(tmp_path / "h" / "lake")


def test_unknown_key_is_rejected_with_its_name(tmp_path):
    env = _write(tmp_path, "[local.kafka]\nprot = 1\n")
    with pytest.raises(RedlineError, match=r"unknown key\(s\) \['prot'\] in local.kafka"):
        load("local", env)


def test_a_retired_key_says_what_replaced_it(tmp_path):
    env = _write(tmp_path, "[local.ingest]\ndedupe_window_minutes = 30\n")
    with pytest.raises(RedlineError, match=r"local.ingest.dedupe_window_minutes: it is gone: "
                                           r"a re-sent record is a duplicate however late.*"
                                           r"ingest.late_after_minutes"):
        load("local", env)


def test_wrong_type_names_the_key(tmp_path):
    env = _write(tmp_path, '[local.kafka]\nport = "x"\n')
    with pytest.raises(RedlineError, match="local.kafka.port must be int"):
        load("local", env)


def test_bad_env_value_names_the_variable(tmp_path):
    env = _write(tmp_path, "[local]\n")
    env["REDLINE_THRIFT_PORT"] = "ten"
    with pytest.raises(RedlineError, match="REDLINE_THRIFT_PORT='ten' is not an integer"):
        load("local", env)


def test_missing_profile(tmp_path):
    env = _write(tmp_path, "[local]\n")
    with pytest.raises(RedlineError, match="profile 'prod' is not in"):
        load("prod", env)


def test_shipped_cluster_profile_points_at_external_services():
    cfg = load("cluster", {})
    assert not cfg.kafka.managed
    assert cfg.lake_root.startswith("s3a://")
    assert cfg.spark.conf_file == "cluster.conf"


def test_catalog_location_and_names():
    t = catalog.get("gold.first_pass_yield")
    assert catalog.location("s3a://b/lake/", t) == "s3a://b/lake/gold/first_pass_yield"
    assert catalog.silver("station_results").qualified_name == "silver.station_results"
    with pytest.raises(RedlineError, match="no table 'gold.nope'"):
        catalog.get("gold.nope")


def test_job_plan_puts_dependencies_first():
    from redline.pipeline import plan

    names = [j.name for j in plan(["gold_first_pass_yield"])]
    assert names == ["silver_station_results", "gold_first_pass_yield"]
    with pytest.raises(RedlineError, match="no job 'nope'"):
        plan(["nope"])


def test_analysis_settings_from_toml_env_and_overrides(tmp_path):
    env = _write(tmp_path, """[local.analysis]
spc_subgroup_size = 4
spc_rules = "1, 2, 5"
attribution_baseline = "2026-01-01..2026-01-07"
attribution_current = "2026-01-08..2026-01-14"
[local.analysis.characteristic."bolt_torque_nm"]
spc_baseline_points = 30
spc_rules = "1"
[local.analysis.characteristic."PLT-A/L1/S010/bolt_torque_nm"]
spc_baseline_dates = "2026-01-05..2026-01-09"
""")
    env["REDLINE_ANALYSIS_CAPABILITY_PERIODS"] = "month,day"
    a = load("local", env).analysis
    assert (a.spc_subgroup_size, a.rules, a.periods) == (4, (1, 2, 5), ("day", "month"))
    assert a.attribution_periods == ((date(2026, 1, 1), date(2026, 1, 7)),
                                     (date(2026, 1, 8), date(2026, 1, 14)))
    # The series' override adds to its characteristic's; other series keep the section's.
    one = a.for_series("PLT-A", "L1", "S010", "bolt_torque_nm")
    assert (one.spc_baseline_points, one.rules, one.baseline_dates) == (
        30, (1,), (date(2026, 1, 5), date(2026, 1, 9)))
    other = a.for_series("PLT-A", "L1", "S020", "bolt_torque_nm")
    assert (other.spc_baseline_points, other.rules, other.baseline_dates) == (30, (1,), None)
    assert a.for_series("PLT-A", "L1", "S010", "leak").spc_baseline_points == 25
    assert any("PLT-A/L1/S010/bolt_torque_nm" in line for line in a.in_force())
    defaults = load("local", _write(tmp_path, "[local]\n")).analysis
    assert defaults == AnalysisConfig() and defaults.periods == (
        "day", "week", "month", "baseline") and defaults.attribution_periods is None


@pytest.mark.parametrize("toml, match", [
    ("spc_subgroup_size = 11", r"local.analysis.spc_subgroup_size=11: subgroup sizes go "
                               r"from 2 to 10"),
    ("spc_subgroup_size = 1", "spc_subgroup_size=1"),
    ("spc_baseline_points = 1", r"local.analysis.spc_baseline_points=1: .* at least 2"),
    ("spc_baseline_subgroups = 0", "local.analysis.spc_baseline_subgroups=0"),
    ('spc_baseline_points = "25"', "local.analysis.spc_baseline_points must be int"),
    ('spc_rules = "1,9"', r"local.analysis.spc_rules='1,9': '9' is not a Nelson rule"),
    ('spc_rules = ""', "local.analysis.spc_rules=''"),
    ('capability_periods = "day,year"', r"'year' is not a capability period"),
    ("capability_min_n = 1", r"capability_min_n=1: a capability index needs at least 2 points"),
    ('spc_baseline_dates = "2026-01-09..2026-01-01"', "ends before it starts"),
    ('spc_baseline_dates = "last week"', r"is not a date range: write YYYY-MM-DD"),
    ('attribution_current = "2026-01-01..2026-01-07"',
     "attribution_current is set but local.analysis.attribution_baseline is not"),
    ('attribution_baseline = "2026-01-01..2026-01-10"\n'
     'attribution_current = "2026-01-10..2026-01-17"', "overlap"),
    ("spc_subgroups = 5", r"unknown key\(s\) \['spc_subgroups'\] in local.analysis"),
    ('[local.analysis.characteristic."bolt_torque_nm"]\nspc_rule = "1"',
     r"unknown key\(s\) \['spc_rule'\] in local.analysis.characteristic.\"bolt_torque_nm\""),
    ('[local.analysis.characteristic."bolt_torque_nm"]\nattribution_current = "x"',
     "unknown key"),
    ('[local.analysis.characteristic."bolt_torque_nm"]\nspc_subgroup_size = 12',
     r"local.analysis.characteristic.\"bolt_torque_nm\".spc_subgroup_size=12"),
    ('[local.analysis.characteristic."L1/S010/bolt_torque_nm"]\nspc_rules = "1"',
     "names neither a characteristic"),
])
def test_bad_analysis_settings_name_the_key(tmp_path, toml, match):
    env = _write(tmp_path, "[local.analysis]\n" + toml + "\n")
    with pytest.raises(RedlineError, match=match):
        load("local", env)


@pytest.mark.parametrize("var, value, match", [
    ("REDLINE_ANALYSIS_SPC_SUBGROUP_SIZE", "five", "REDLINE_ANALYSIS_SPC_SUBGROUP_SIZE='five' "
                                                   "is not an integer"),
    ("REDLINE_ANALYSIS_SPC_SUBGROUP_SIZE", "12", "REDLINE_ANALYSIS_SPC_SUBGROUP_SIZE=12"),
    ("REDLINE_ANALYSIS_SPC_RULES", "1;2", "REDLINE_ANALYSIS_SPC_RULES='1;2'"),
    ("REDLINE_ANALYSIS_CHARACTERISTIC", "x", "set in the profile file only"),
])
def test_bad_analysis_env_values_name_the_variable(tmp_path, var, value, match):
    env = _write(tmp_path, "[local]\n")
    env[var] = value
    with pytest.raises(RedlineError, match=match):
        load("local", env)
