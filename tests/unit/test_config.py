from pathlib import Path

import pytest

from redline import catalog
from redline.config import load
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
