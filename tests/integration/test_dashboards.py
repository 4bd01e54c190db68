"""Dashboards against real services: Delta table -> Spark Thrift Server -> Superset -> chromium.

Known rows go into gold.first_pass_yield; the expected numbers below are worked out by
hand from those rows, never by the code under test.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import shutil

import pytest

from redline import catalog, lake
from redline.dashboards.deploy import BUNDLE, deploy
from redline.dashboards.screenshot import capture
from redline.errors import RedlineError
from redline.services.superset import SupersetServer, api_session
from redline.services.thrift import ThriftServer

pytestmark = pytest.mark.integration

FPY = catalog.get("gold.first_pass_yield")
ROWS = [
    # day, plant, line, station, units, first_pass_units, fpy
    (dt.date(2024, 5, 1), "P1", "L1", "S1-weld", 100, 95, 0.95),
    (dt.date(2024, 5, 1), "P1", "L1", "S2-paint", 100, 80, 0.80),
    (dt.date(2024, 5, 2), "P1", "L1", "S1-weld", 200, 180, 0.90),
    (dt.date(2024, 5, 2), "P1", "L1", "S2-paint", 50, 45, 0.90),
]
#: Volume-weighted FPY per station: S1-weld (95+180)/(100+200), S2-paint (80+45)/(100+50).
WEIGHTED = {"S1-weld": (275 / 300, 300), "S2-paint": (125 / 150, 150)}
CHART_TITLES = {"First-pass yield by station", "First-pass yield by day"}
# The first colour of Superset's default scheme: the bars of the station chart.
BAR_RGB = (31, 168, 201)


@pytest.fixture(scope="module")
def thrift(thrift_server):
    return thrift_server


@pytest.fixture(scope="module")
def superset(superset_server):
    return superset_server


@pytest.fixture(scope="module")
def fpy_table(cfg, spark, thrift):
    lake.overwrite(spark.createDataFrame(ROWS, FPY.schema()), cfg.lake_root, FPY)
    thrift.register_tables(cfg.lake_root, [FPY])
    return FPY


@pytest.fixture(scope="module")
def dashboard(cfg, superset, fpy_table):
    return deploy(cfg)


@pytest.fixture(scope="module")
def api(cfg, superset):
    return api_session(cfg)


def _find(api, cfg, kind: str, column: str, value: str) -> list[dict]:
    q = json.dumps({"filters": [{"col": column, "opr": "eq", "value": value}]})
    r = api.get(f"{cfg.superset.url}/api/v1/{kind}/", params={"q": q}, timeout=60)
    assert r.status_code == 200, r.text[:500]
    return r.json()["result"]


def test_dashboard_screenshot_shows_the_charts(cfg, dashboard, tmp_path):
    out = tmp_path / "manufacturing_quality.png"
    state = capture(cfg, dashboard, out, timeout=120)

    assert "standalone=1" in state.url and "/login" not in state.url
    assert state.errors == []
    assert state.charts == 2 and state.drawn == 2
    assert CHART_TITLES <= set(state.titles)
    assert "Manufacturing quality" in state.titles

    from PIL import Image

    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    image = Image.open(out).convert("RGB")
    assert image.size[0] >= 1200
    bar_pixels = sum(1 for px in image.getdata()
                     if all(abs(a - b) <= 12 for a, b in zip(px, BAR_RGB)))
    # Two bars of a few hundred by ~200 pixels: far more than any icon or legend marker.
    assert bar_pixels > 20_000, bar_pixels


def test_sql_lab_returns_the_rows_written(cfg, dashboard, api):
    (database,) = _find(api, cfg, "database", "database_name", "redline_lake")
    r = api.post(f"{cfg.superset.url}/api/v1/sqllab/execute/", timeout=300, json={
        "database_id": database["id"], "runAsync": False, "schema": "gold",
        "sql": "SELECT day, station, units, first_pass_units, fpy "
               "FROM gold.first_pass_yield ORDER BY station, day"})
    assert r.status_code == 200, r.text[:1000]
    assert r.json()["data"] == [
        {"day": "2024-05-01", "station": "S1-weld", "units": 100, "first_pass_units": 95,
         "fpy": 0.95},
        {"day": "2024-05-02", "station": "S1-weld", "units": 200, "first_pass_units": 180,
         "fpy": 0.90},
        {"day": "2024-05-01", "station": "S2-paint", "units": 100, "first_pass_units": 80,
         "fpy": 0.80},
        {"day": "2024-05-02", "station": "S2-paint", "units": 50, "first_pass_units": 45,
         "fpy": 0.90},
    ]


def test_tables_are_listed_by_name(cfg, dashboard, api):
    (database,) = _find(api, cfg, "database", "database_name", "redline_lake")
    r = api.get(f"{cfg.superset.url}/api/v1/database/{database['id']}/tables/",
                params={"q": json.dumps({"schema_name": "gold"})}, timeout=120)
    assert r.status_code == 200, r.text[:500]
    assert "first_pass_yield" in {t["value"] for t in r.json()["result"]}


def test_dataset_metric_weights_by_volume(cfg, dashboard, api):
    (dataset,) = _find(api, cfg, "dataset", "table_name", "first_pass_yield")
    r = api.post(f"{cfg.superset.url}/api/v1/chart/data", timeout=300, json={
        "datasource": {"id": dataset["id"], "type": "table"},
        "queries": [{"columns": ["station"], "metrics": ["weighted_fpy", "total_units"],
                     "row_limit": 100}],
        "result_format": "json", "result_type": "full"})
    assert r.status_code == 200, r.text[:1000]
    got = {row["station"]: (row["weighted_fpy"], row["total_units"])
           for row in r.json()["result"][0]["data"]}
    assert got.keys() == WEIGHTED.keys()
    for station, (fpy, units) in WEIGHTED.items():
        assert got[station][0] == pytest.approx(fpy)
        assert got[station][1] == units


def test_deploy_twice_updates_in_place(cfg, dashboard, api, tmp_path):
    changed = tmp_path / "bundle"
    shutil.copytree(BUNDLE, changed)
    chart_file = changed / "charts" / "fpy_by_station.yaml"
    chart_file.write_text(chart_file.read_text().replace(
        "description: Volume-weighted", "description: CHANGED. Volume-weighted"))

    assert deploy(cfg, bundle=changed) == dashboard
    (chart,) = _find(api, cfg, "chart", "slice_name", "First-pass yield by station")
    detail = api.get(f"{cfg.superset.url}/api/v1/chart/{chart['id']}", timeout=60).json()
    assert detail["result"]["description"].startswith("CHANGED.")

    assert deploy(cfg) == dashboard
    for title in CHART_TITLES:
        assert len(_find(api, cfg, "chart", "slice_name", title)) == 1
    (chart,) = _find(api, cfg, "chart", "slice_name", "First-pass yield by station")
    detail = api.get(f"{cfg.superset.url}/api/v1/chart/{chart['id']}", timeout=60).json()
    assert not detail["result"]["description"].startswith("CHANGED.")
    assert len(_find(api, cfg, "dataset", "table_name", "first_pass_yield")) == 1
    assert len(_find(api, cfg, "database", "database_name", "redline_lake")) == 1
    assert len(_find(api, cfg, "dashboard", "slug", "manufacturing-quality")) == 1


def test_screenshot_refuses_the_login_page(cfg, dashboard, tmp_path):
    stranger = dataclasses.replace(cfg, superset=dataclasses.replace(
        cfg.superset, admin_user="not-the-admin"))
    with pytest.raises(RedlineError, match="SCREENSHOT_LOGIN_FAILED"):
        capture(stranger, dashboard, tmp_path / "login.png", timeout=15)
