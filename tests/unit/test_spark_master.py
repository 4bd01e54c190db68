"""Which masters run executors on this machine (pinned to loopback and this Python), and
the cluster settings of the profile file."""

from pathlib import Path

import pytest

from redline.config import load
from redline.spark import on_this_machine


@pytest.mark.parametrize("master, here", [
    ("local[*]", True), ("local[2]", True), ("local", True),
    ("spark://127.0.0.1:7077", True), ("spark://localhost:7077", True),
    ("spark://spark-master.example.internal:7077", False), ("spark://10.0.0.5:7077", False),
    ("yarn", False), ("k8s://https://kubernetes.default.svc", False),
])
def test_which_masters_are_on_this_machine(master, here):
    assert on_this_machine(master) is here


def test_an_empty_master_is_local_unless_spark_submit_started_the_driver(monkeypatch):
    monkeypatch.delenv("PYSPARK_GATEWAY_PORT", raising=False)
    assert on_this_machine("") is True
    monkeypatch.setenv("PYSPARK_GATEWAY_PORT", "41234")  # spark-submit --master yarn ...
    assert on_this_machine("") is False


def test_cluster_settings_from_the_environment(monkeypatch):
    monkeypatch.setenv("REDLINE_SPARK_MASTER", "spark://127.0.0.1:17077")
    monkeypatch.setenv("REDLINE_SPARK_CLUSTER_MASTER_PORT", "17077")
    monkeypatch.setenv("REDLINE_SPARK_CLUSTER_WORKERS", "3")
    cfg = load("cluster")
    assert cfg.spark.master == cfg.spark_cluster.master_url == "spark://127.0.0.1:17077"
    assert cfg.spark_cluster.workers == 3
    assert cfg.spark.conf_file == "cluster.conf"


def test_cluster_daemons_bind_loopback_and_keep_the_secret_off_their_command_lines(
        tmp_path, monkeypatch):
    from redline import secrets
    from redline.credentials import SPARK_CLUSTER_SECRET
    from redline.services.spark_cluster import cluster_services

    monkeypatch.setenv("REDLINE_HOME", str(tmp_path))
    cfg = load("local")
    master, *workers = cluster_services(cfg)
    assert [w.name for w in workers] == ["spark-worker-1", "spark-worker-2"]
    first = cfg.spark_cluster.worker_port
    assert [w.port for w in workers] == [first, first + 1]
    secret = secrets.get_or_create(cfg.home, SPARK_CLUSTER_SECRET)
    for svc in (master, *workers):
        cmd = svc.command()
        assert cmd[cmd.index("--host") + 1] == "127.0.0.1"
        assert not any(secret in arg for arg in cmd)
        props = cmd[cmd.index("--properties-file") + 1]
        assert (tmp_path / "secrets" / SPARK_CLUSTER_SECRET).stat().st_mode & 0o777 == 0o600
        text = Path(props).read_text()
        assert "spark.authenticate true" in text and secret in text
        assert Path(props).stat().st_mode & 0o777 == 0o600
    assert workers[0].command()[2] == f"spark://127.0.0.1:{cfg.spark_cluster.master_port}"


def test_a_cluster_without_workers_or_cores_is_refused(monkeypatch):
    from redline.errors import RedlineError

    for var in ("REDLINE_SPARK_CLUSTER_WORKERS", "REDLINE_SPARK_CLUSTER_WORKER_CORES"):
        monkeypatch.setenv(var, "0")
        with pytest.raises(RedlineError, match="at least 1"):
            load("local")
        monkeypatch.delenv(var)
