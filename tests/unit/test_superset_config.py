"""Superset settings, the dashboard bundle and the screenshot helpers, without services."""

from __future__ import annotations

import dataclasses
import re
import socket
import stat
from pathlib import Path

import pytest
import yaml

from redline import secrets
from redline.config import load
from redline.dashboards import deploy as dep
from redline.dashboards.screenshot import standalone
from redline.errors import RedlineError
from redline.schemas.tables import FIRST_PASS_YIELD
from redline.services import superset as sup


@pytest.fixture
def local_cfg(tmp_path):
    return load("local", {"REDLINE_HOME": str(tmp_path / "home"),
                          "REDLINE_THRIFT_PORT": "12345", "REDLINE_THRIFT_HOST": "10.1.2.3"})


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _rendered(tmp_path: Path, cfg) -> dict[str, dict]:
    from redline.dashboards import bundle

    out = tmp_path / "bundle"
    bundle.build(out, cfg.thrift.host, cfg.thrift.port)
    return {str(p.relative_to(out)): yaml.safe_load(p.read_text())
            for p in out.rglob("*.yaml")}


# -- bundle ---------------------------------------------------------------------------
def test_bundle_points_at_the_configured_thrift_server(tmp_path, local_cfg):
    files = _rendered(tmp_path, local_cfg)
    assert files["databases/redline_lake.yaml"]["sqlalchemy_uri"] == (
        "hive://redline:XXXXXXXXXX@10.1.2.3:12345/default")


def test_bundle_references_resolve_by_uuid(tmp_path, local_cfg):
    files = _rendered(tmp_path, local_cfg)
    by_kind: dict[str, list[dict]] = {}
    for name, doc in files.items():
        by_kind.setdefault(name.split("/")[0], []).append(doc)
    uuids = [d["uuid"] for kind in ("databases", "datasets", "charts", "dashboards")
             for d in by_kind[kind]]
    assert len(uuids) == len(set(uuids))
    db_uuids = {d["uuid"] for d in by_kind["databases"]}
    ds_uuids = {d["uuid"] for d in by_kind["datasets"]}
    chart_uuids = {d["uuid"] for d in by_kind["charts"]}
    assert all(d["database_uuid"] in db_uuids for d in by_kind["datasets"])
    assert all(c["dataset_uuid"] in ds_uuids for c in by_kind["charts"])
    assert len(by_kind["dashboards"]) == 5
    placed = [n["meta"] for dash in by_kind["dashboards"] for n in dash["position"].values()
              if isinstance(n, dict) and n.get("type") == "CHART"]
    # The importer maps chartId -> new id and silently skips a dashboard without one.
    assert all("chartId" in m for m in placed)
    assert {m["uuid"] for m in placed} == chart_uuids
    names = {c["uuid"]: c["slice_name"] for c in by_kind["charts"]}
    assert all(names[m["uuid"]] == m["sliceName"] for m in placed)


def test_dataset_matches_the_catalog_schema(tmp_path, local_cfg):
    ds = _rendered(tmp_path, local_cfg)["datasets/redline_lake/first_pass_yield.yaml"]
    assert (ds["schema"], ds["table_name"]) == ("gold", "first_pass_yield")
    assert [c["column_name"] for c in ds["columns"]] == FIRST_PASS_YIELD.fieldNames()
    metrics = {m["metric_name"]: m["expression"] for m in ds["metrics"]}
    assert metrics["weighted_fpy"] == "SUM(first_pass_units) / SUM(units)"


def test_dashboard_url_uses_the_slug(local_cfg):
    assert dep.dashboard_url(local_cfg, "spc") == (
        f"{local_cfg.superset.url}/superset/dashboard/spc/")


def test_deploy_says_when_superset_is_down(local_cfg):
    cfg = dataclasses.replace(local_cfg, superset=dataclasses.replace(
        local_cfg.superset, port=_free_port()))
    with pytest.raises(RedlineError, match=r"SUPERSET_DOWN.*redline up"):
        dep.deploy(cfg, progress=lambda _: None)


# -- superset_config.py ---------------------------------------------------------------
def test_generated_config_holds_no_secret(local_cfg):
    server = sup.SupersetServer(local_cfg)
    text = server.config_text()
    key = secrets.get_or_create(local_cfg.home, sup.SECRET_KEY_NAME)
    assert key not in text
    assert "CHANGE_ME" not in text
    assert not re.search(r'"__REDLINE_[A-Z0-9_]+__"', text)
    assert repr(str(secrets.path_of(local_cfg.home, sup.SECRET_KEY_NAME))) in text
    compile(text, "superset_config.py", "exec")


def test_generated_config_values(local_cfg, monkeypatch):
    from pyhive import sqlalchemy_hive

    # Executing the config patches PyHive; monkeypatch restores the original afterwards.
    monkeypatch.setattr(sqlalchemy_hive.HiveDialect, "get_table_names",
                        sqlalchemy_hive.HiveDialect.get_table_names)
    server = sup.SupersetServer(local_cfg)
    namespace: dict = {}
    exec(compile(server.config_text(), "superset_config.py", "exec"), namespace)
    assert namespace["SECRET_KEY"] == secrets.get_or_create(local_cfg.home,
                                                            sup.SECRET_KEY_NAME)
    assert len(namespace["SECRET_KEY"]) >= 32
    assert namespace["SQLALCHEMY_DATABASE_URI"] == f"sqlite:///{server.dir}/superset.db"
    # Results are shared by every gunicorn worker (on disk) and stale for minutes at most.
    data_cache = namespace["DATA_CACHE_CONFIG"]
    assert data_cache["CACHE_TYPE"] == "FileSystemCache"
    assert data_cache["CACHE_DIR"].startswith(str(server.dir))
    assert 0 < data_cache["CACHE_DEFAULT_TIMEOUT"] <= 600


def test_pyhive_patch_lists_spark_table_names(local_cfg, monkeypatch):
    from pyhive import sqlalchemy_hive

    monkeypatch.setattr(sqlalchemy_hive.HiveDialect, "get_table_names",
                        sqlalchemy_hive.HiveDialect.get_table_names)
    exec(compile(sup.SupersetServer(local_cfg).config_text(), "superset_config.py", "exec"),
         {})
    seen = []

    class Conn:
        def execute(self, query):
            seen.append(str(query))
            # Spark's SHOW TABLES: (namespace, tableName, isTemporary).
            return [("gold", "first_pass_yield", False), ("gold", "scrap", False)]

    names = sqlalchemy_hive.HiveDialect().get_table_names(Conn(), schema="gold")
    assert names == ["first_pass_yield", "scrap"]
    assert seen == ["SHOW TABLES IN `gold`"]


def test_render_config_rejects_a_missing_value():
    with pytest.raises(RedlineError, match=r"SUPERSET_CONFIG_TEMPLATE.*__REDLINE_OTHER__"):
        sup.render_config('A = "__REDLINE_A__"\nB = "__REDLINE_OTHER__"\n', {"A": 1})


def test_secrets_are_private_files(local_cfg):
    server = sup.SupersetServer(local_cfg)
    server.config_text()
    user, password = sup.admin_credentials(local_cfg)
    assert user == "admin" and len(password) >= 32
    for name in (sup.SECRET_KEY_NAME, sup.ADMIN_PASSWORD_NAME):
        mode = stat.S_IMODE(secrets.path_of(local_cfg.home, name).stat().st_mode)
        assert mode == 0o600, (name, oct(mode))
    assert sup.admin_credentials(local_cfg) == (user, password)


def test_missing_virtualenv_says_how_to_fix(tmp_path, monkeypatch):
    monkeypatch.setattr(sup, "VENV", tmp_path / "no-venv")
    with pytest.raises(RedlineError, match=r"SUPERSET_MISSING.*make setup"):
        sup.venv_bin("gunicorn")


def test_gunicorn_binds_loopback(local_cfg):
    cmd = sup.SupersetServer(local_cfg).command()
    assert cmd[cmd.index("--bind") + 1] == f"127.0.0.1:{local_cfg.superset.port}"
    assert cmd[-1] == "superset.app:create_app()"


# -- screenshot helpers ---------------------------------------------------------------
@pytest.mark.parametrize("url, expected", [
    ("http://h:1/superset/dashboard/x/", "http://h:1/superset/dashboard/x/?standalone=1"),
    ("http://h:1/d/?a=1", "http://h:1/d/?a=1&standalone=1"),
    ("http://h:1/d/?standalone=0&a=1", "http://h:1/d/?a=1&standalone=1"),
])
def test_standalone_url(url, expected):
    assert standalone(url) == expected
