"""Dashboards against real services: Delta table -> Spark Thrift Server -> Superset ->
chromium.

Known rows go into the gold tables; the expected numbers below are worked out by hand
from those rows, never by the code under test. Tables the rows leave out (the models'
scores, the ops tables) are placeholders: their charts must show an empty state, not an
error. Screenshots of every dashboard go to ``test-output/dashboards/`` (or
``$REDLINE_TEST_OUTPUT/dashboards``).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import os
import shutil
import stat
import tempfile
import time
from pathlib import Path

import pytest
import requests
from chart_requests import chart_requests

from redline import catalog, lake
from redline.config import PROJECT_ROOT
from redline.dashboards import bundle, links
from redline.dashboards.deploy import deploy, viewer_credentials
from redline.dashboards.screenshot import browser, capture, capture_many, login, open_dashboard
from redline.errors import RedlineError
from redline.services.superset import api_session

pytestmark = pytest.mark.integration

OUTPUT = Path(os.environ.get("REDLINE_TEST_OUTPUT", PROJECT_ROOT / "test-output")) / "dashboards"

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
# The first colour of Superset's default scheme: the bars of the station chart.
BAR_RGB = (31, 168, 201)


@pytest.fixture(scope="module")
def dash_cfg(cfg, tmp_path_factory):
    """The session's configuration with a lake of this module's own: the hand-made rows
    below, not what other tests (the end-to-end demo) wrote. ``redline`` commands run
    here read it from the environment."""
    root = str(tmp_path_factory.mktemp("dashboards-lake"))
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("REDLINE_LAKE_ROOT", root)
        yield dataclasses.replace(cfg, lake=dataclasses.replace(cfg.lake, root=root))


@pytest.fixture(scope="module")
def thrift(thrift_server):
    return thrift_server


@pytest.fixture(scope="module")
def superset(superset_server):
    return superset_server


# --- the gold tables behind the charts: hand-made rows ----------------------------------
T0 = dt.datetime(2024, 5, 1, 8, 0)
TORQUE = {"plant": "PLT-A", "line": "L1", "station": "S010", "characteristic": "bolt_torque_nm"}
ANGLE = {"plant": "PLT-A", "line": "L1", "station": "S010", "characteristic": "bolt_angle_deg"}
OTHER = {"plant": "PLT-B", "line": "L1", "station": "S010", "characteristic": "bolt_torque_nm"}
#: The I chart of bolt torque: centre 50, sigma 1, so UCL = 53 and LCL = 47 by hand.
SPC_VALUES = [50.0, 51.0, 49.5, 50.5, 52.0, 55.0]
#: Bolt angle, the first characteristic of PLT-A/L1/S010 by name: centre 90, sigma 2.
ANGLE_VALUES = [90.0, 92.0, 88.0, 91.0]


def _spc_point(key, seq, value, centre, sigma):
    return {**key, "seq": seq, "event_id": f"e{key['plant']}{key['characteristic']}{seq}",
            "event_time": T0 + dt.timedelta(minutes=seq), "unit_serial": f"U{seq}",
            "value": value, "in_baseline": seq <= 4, "centre": centre, "sigma": sigma,
            "lcl": centre - 3 * sigma, "ucl": centre + 3 * sigma,
            "lsl": centre - 5 * sigma, "usl": centre + 5 * sigma}


def _kpis(day, station, units, first_pass, reworked, scrapped, defects, opportunities):
    return {"day": day, "plant": "PLT-A", "line": "L1", "station": station, "shift": "A",
            "characteristics": 1, "units": units, "first_pass_units": first_pass,
            "fpy": first_pass / units, "reworked_units": reworked,
            "rework_rate": reworked / units, "scrapped_units": scrapped,
            "scrap_rate": scrapped / units, "defects": defects,
            "opportunities": opportunities, "dpmo": defects * 1e6 / opportunities}


STATION_KPIS = [_kpis(dt.date(2024, 5, 1), "S010", 100, 90, 8, 2, 12, 100),
                _kpis(dt.date(2024, 5, 1), "S020", 100, 99, 1, 0, 1, 100),
                _kpis(dt.date(2024, 5, 2), "S010", 300, 285, 10, 5, 18, 300)]
#: Worst stations by volume-weighted FPY: S010 (90+285)/(100+300) = 0.9375 first, then
#: S020 99/100; DPMO of S010 (12+18) * 1e6 / 400 = 75,000.
WORST = [("S010", 375 / 400, 75_000.0), ("S020", 0.99, 10_000.0)]

QUALITY_ROWS = {
    "spc_points": [_spc_point(TORQUE, i + 1, v, 50.0, 1.0) for i, v in enumerate(SPC_VALUES)]
    + [_spc_point(ANGLE, i + 1, v, 90.0, 2.0) for i, v in enumerate(ANGLE_VALUES)]
    + [_spc_point(OTHER, 1, 99.0, 90.0, 2.0)],
    "spc_subgroups": [
        {**TORQUE, "subgroup_size": 5, "subgroup": k,
         "start_time": T0 + dt.timedelta(minutes=5 * k - 4),
         "end_time": T0 + dt.timedelta(minutes=5 * k),
         "event_ids": [f"e{k}"], "xbar": x, "range": r, "in_baseline": k <= 2,
         "xbar_centre": 50.1, "xbar_lcl": 49.1768, "xbar_ucl": 51.0232,
         "sigma_xbar": 0.577 * 1.6 / 3, "r_centre": 1.6, "r_lcl": 0.0, "r_ucl": 3.3824}
        for k, x, r in [(1, 50.0, 2.0), (2, 50.2, 1.2), (3, 51.8, 1.0)]],
    "spc_violations": [
        {**TORQUE, "chart": "XBAR", "rule": 1, "rule_name": "1 point beyond 3 sigma",
         "start_seq": 3, "end_seq": 3, "start_time": T0, "end_time": T0, "points": 1,
         "event_ids": ["e3"]},
        {**TORQUE, "chart": "I", "rule": 1, "rule_name": "1 point beyond 3 sigma",
         "start_seq": 6, "end_seq": 6, "start_time": T0, "end_time": T0, "points": 1,
         "event_ids": ["ePLT-Abolt_torque_nm6"]},
        {**TORQUE, "chart": "I", "rule": 5, "rule_name": "2 of 3 points beyond 2 sigma",
         "start_seq": 4, "end_seq": 6, "start_time": T0, "end_time": T0, "points": 3,
         "event_ids": []}],
    "capability": [
        {**TORQUE, "period": "day", "period_start": dt.date(2024, 5, d), "n": 40,
         "mean": 50.0, "cpk": cpk, "cp": cpk, "status": "ok", "min_n": 30,
         "cpk_ci_low": cpk - 0.3, "cpk_ci_high": cpk + 0.3}
        for d, cpk in [(1, 1.5), (2, 0.9)]]
    + [{**ANGLE, "period": "day", "period_start": dt.date(2024, 5, 1), "n": 4, "mean": 90.25,
        "status": "too few points", "min_n": 30},
       {**ANGLE, "period": "month", "period_start": dt.date(2024, 5, 1), "n": 31,
        "mean": 90.1, "cpk": 2.0, "cp": 2.2, "status": "ok", "min_n": 30,
        "cpk_ci_low": 1.5, "cpk_ci_high": 2.5}],
    "defect_pareto": [
        {"pareto": "defect_code", "category": "D-LEAK", "defects": 5, "share": 5 / 17,
         "cumulative_share": 1.0, "rank": 2},
        {"pareto": "defect_code", "category": "D-TORQUE", "defects": 12, "share": 12 / 17,
         "cumulative_share": 12 / 17, "rank": 1},
        {"pareto": "station", "station": "S010", "category": "S010", "defects": 99,
         "share": 1.0, "cumulative_share": 1.0, "rank": 1},
        {"pareto": "supplier_lot", "station": "S030", "component": "coolant_pump",
         "supplier": "ThermaFlow", "category": "LOT-CP-0077", "defects": 6, "units": 55,
         "defects_per_unit": 6 / 55, "share": 1.0, "cumulative_share": 1.0, "rank": 1}],
    "station_kpis": STATION_KPIS,
    "line_kpis": [
        {**{k: v for k, v in r.items() if k not in ("station", "characteristics")},
         "stations": 1, "rty": r["fpy"]} for r in STATION_KPIS if r["station"] == "S010"],
    "warranty_triangle": [
        {"build_month": dt.date(2024, m, 1), "months_in_service": mis,
         "observation_end": dt.date(2024, 3, 31), "vehicles_at_risk": n, "claims": c,
         "claims_per_1000": c * 1000 / n, "cumulative_claims_per_1000": 0.0}
        for m, mis, n, c in [(1, 0, 100, 2), (1, 1, 100, 3), (2, 0, 50, 1)]],
    "weibull_fits": [
        {"level": level, "component": comp, "lot": lot, "units": 100, "failures": 5,
         "observation_end": dt.date(2024, 3, 31), "status": status, "b10_days": b10,
         "b10_ci_low_days": b10 and b10 / 2, "b10_ci_high_days": b10 and b10 * 2,
         "ci_method": "fisher-matrix-log-wald"}
        for level, comp, lot, status, b10 in [
            ("component", "coolant_pump", None, "OK", 12.5),
            ("component", "drive_motor", None, "OK", 300.0),
            ("lot", "coolant_pump", "LOT-CP-0077", "OK", 5.0),
            ("component", "inverter", None, "TOO_FEW_FAILURES", None)]],
    "weibull_plot": [
        {"level": "component", "component": "coolant_pump", "observation_end":
         dt.date(2024, 3, 31), "days": d, "failure_order": float(i), "median_rank": f,
         "ln_days": ln, "weibull_y": y, "fitted_y": y}
        for i, (d, f, ln, y) in enumerate([(10.0, 0.1, 2.30, -2.25), (20.0, 0.3, 3.0, -1.03)],
                                          start=1)],
    "dtc_rates": [
        {"firmware_version": fw, "dtc_code": code, "observation_end": dt.date(2024, 3, 31),
         "dtc_events": ev, "vehicles": n, "vehicle_days": n * 30,
         "dtc_per_1000_vehicles": ev * 1000 / n}
        for fw, code, ev, n in [("FW-3.1.4", None, 4, 80), ("FW-3.1.4", "P0A1F", 2, 80),
                                ("FW-3.2.0", None, 30, 60), ("FW-3.2.0", "P0A1F", 25, 60)]],
    "mtbf": [
        {"component": "coolant_pump", "observation_end": dt.date(2024, 3, 31), "vehicles": 100,
         "failures": 4, "vehicle_days": 3000, "vehicle_months": 3000 / 30.4375,
         "mtbf_days": 750.0, "mtbf_months": 750 / 30.4375,
         "failures_per_1000_vehicle_months": 4000 / (3000 / 30.4375), "confidence": 0.9,
         "mtbf_ci_low_days": 388.3, "mtbf_ci_high_days": 1937.1,
         "ci_method": "chi-square-time-terminated"}],
}
#: What the charts must show, worked out by hand from QUALITY_ROWS.
DTC_PER_1000 = {"FW-3.1.4": 4 * 1000 / 80, "FW-3.2.0": 30 * 1000 / 60}  # all-codes rows only
B10 = {"coolant_pump": 12.5, "drive_motor": 300.0, "inverter": None}  # component level
PARETO = [("01. D-TORQUE", 12, 12 / 17), ("02. D-LEAK", 5, 1.0)]   # by rank, cumulative
TRIANGLE = {("2024-01", 0): 20.0, ("2024-01", 1): 30.0, ("2024-02", 0): 20.0}
#: Charts with no rows for the SPC filters' defaults (bolt_angle_deg has points only).
EMPTY_BY_DEFAULT = {"SPC": {"X-bar chart", "R chart", "Nelson rule violations"}}
#: Tables the rows above leave out: their charts show "no results".
MISSING = {"gold.vehicle_risk_scores", "gold.vehicle_features", "gold.review_queue",
           "gold.model_drift", "gold.kpi_attribution", "ops.quality_results",
           "silver.quarantine", "ops.silver_batches", "ops.job_runs"}


@pytest.fixture(scope="module")
def tables(dash_cfg, spark, thrift):
    written = [FPY]
    lake.overwrite(spark.createDataFrame(ROWS, FPY.schema()), dash_cfg.lake_root, FPY)
    for name, rows in QUALITY_ROWS.items():
        table = catalog.get(f"gold.{name}")
        fields = table.schema().fields
        df = spark.createDataFrame([tuple(r.get(f.name) for f in fields) for r in rows],
                                   table.schema())
        lake.overwrite(df, dash_cfg.lake_root, table)
        written.append(table)
    thrift.register_tables(dash_cfg.lake_root, written)
    # Tables this lake leaves out may be registered by other tests: forget those names
    # (an external table's data stays), so that deploy gives them placeholders.
    from redline.services.thrift import connect, is_view

    conn = connect(dash_cfg)
    try:
        cur = conn.cursor()
        for name in MISSING:
            kind = "VIEW" if is_view(cur, name) else "TABLE"
            cur.execute(f"DROP {kind} IF EXISTS {name}")
    finally:
        conn.close()
    return written


@pytest.fixture(scope="module")
def deployed(dash_cfg, superset, tables):
    return deploy(dash_cfg)


@pytest.fixture(scope="module")
def dashboard(deployed):
    """URL of the Manufacturing quality dashboard."""
    return deployed.urls["Manufacturing quality"]


@pytest.fixture(scope="module")
def api(dash_cfg, superset):
    return api_session(dash_cfg)


@pytest.fixture(scope="module")
def network_driver(dash_cfg, deployed):
    """One logged-in chromium for the module's tests that read chart-data requests."""
    profile = Path(tempfile.mkdtemp(prefix="redline-test-chromium-"))
    driver = browser(profile, network_log=True)
    driver.set_page_load_timeout(300)
    login(driver, dash_cfg, 300)
    yield driver
    driver.quit()
    shutil.rmtree(profile, ignore_errors=True)


@pytest.fixture
def network_browser(network_driver):
    """The logged-in chromium whose chart-data requests and responses can be read, with
    what an earlier test's page asked for already read off (never seen by this test)."""
    network_driver.get("about:blank")
    network_driver.get_log("performance")  # reading the log empties it
    network_driver.pending_chart_requests = {}
    return network_driver


def _find(api, dash_cfg, kind: str, column: str, value: str) -> list[dict]:
    q = json.dumps({"filters": [{"col": column, "opr": "eq", "value": value}]})
    r = api.get(f"{dash_cfg.superset.url}/api/v1/{kind}/", params={"q": q}, timeout=60)
    assert r.status_code == 200, r.text[:500]
    return r.json()["result"]


def _i_chart_data(pairs: list[tuple[dict, dict]]) -> tuple[list, list[dict]]:
    """(filters, rows) of the last I-chart query (its metrics include measured_value)."""
    found = [(req["queries"][0], resp["result"][0]) for req, resp in pairs
             if "measured_value" in json.dumps(req["queries"][0].get("metrics"))]
    assert found, [r["queries"][0].get("metrics") for r, _ in pairs]
    query, result = found[-1]
    return query.get("filters", []), result["data"]


def _choose(driver, filter_name: str, value: str) -> None:
    """Pick ``value`` in the filter bar's select of ``filter_name`` and apply, as a person
    does: open the select, type, Enter, "Apply filters"."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    wait = WebDriverWait(driver, 60)
    select = f"[data-test='{bundle.filter_id(filter_name)}']"
    wait.until(ec.element_to_be_clickable(
        (By.CSS_SELECTOR, f"{select} .ant-select-selector"))).click()
    box = driver.find_element(By.CSS_SELECTOR, f"input#{bundle.filter_id(filter_name)}")
    box.send_keys(value)
    wait.until(ec.visibility_of_element_located(
        (By.CSS_SELECTOR, f".ant-select-item-option[title='{value}']")))
    box.send_keys(Keys.ENTER)
    wait.until(ec.element_to_be_clickable(
        (By.CSS_SELECTOR, "[data-test='filter-bar__apply-button']"))).click()


def _wait_i_chart(driver, wanted: dict, timeout: float = 120) -> tuple[list, list[dict]]:
    """(filters, rows) of the first I-chart query the page sends with filter ``wanted``;
    the last one seen if none does within ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    filters, rows = [], []
    while time.monotonic() < deadline:
        try:
            filters, rows = _i_chart_data(chart_requests(driver))
        except AssertionError:  # no I-chart query in this batch yet
            time.sleep(0.5)
            continue
        if wanted in filters:
            break
    return filters, rows


# --- every dashboard, in a browser ------------------------------------------------------
def test_deploy_sets_up_five_dashboards_and_a_viewer(dash_cfg, deployed):
    assert set(deployed.urls) == {"Manufacturing quality", "SPC", "Field reliability",
                                  "Fleet risk", "Data health"}
    assert deployed.urls["SPC"] == f"{dash_cfg.superset.url}/superset/dashboard/spc/"
    assert set(deployed.placeholders) == MISSING
    user, password = viewer_credentials(dash_cfg)
    assert user == dash_cfg.superset.viewer_user == deployed.viewer_user
    assert deployed.viewer_password_file.read_text().strip() == password
    assert stat.S_IMODE(deployed.viewer_password_file.stat().st_mode) == 0o600


def test_every_dashboard_draws_every_chart(dash_cfg, deployed):
    specs = {d.title: d for d in bundle.load_dashboards()}
    pages = {url: OUTPUT / f"{url.rstrip('/').rsplit('/', 1)[-1]}.png"
             for url in deployed.urls.values()}
    states = capture_many(dash_cfg, pages, timeout=480)
    for title, url in deployed.urls.items():
        state, spec = states[url], specs[title]
        assert state.errors == [], (title, state.errors)
        assert state.charts == state.drawn == len(spec.charts), title
        assert {c.title for c in spec.charts} <= set(state.titles), title
        # Exactly the charts over tables no job wrote, or without rows, show the empty
        # state.
        missing = {c.title for c in spec.charts
                   if any(t.qualified_name in MISSING for t in c.dataset.tables)}
        assert set(state.empty) == missing | EMPTY_BY_DEFAULT.get(title, set()), title
        assert pages[url].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert set(states[deployed.urls["Fleet risk"]].empty) == {
        c.title for c in specs["Fleet risk"].charts}


def test_station_bars_are_drawn(dash_cfg, dashboard):
    from PIL import Image

    out = OUTPUT / "manufacturing-quality-bars.png"
    capture(dash_cfg, dashboard, out, timeout=480)
    image = Image.open(out).convert("RGB")
    assert image.size[0] >= 1200
    bar_pixels = sum(1 for px in image.getdata()
                     if all(abs(a - b) <= 12 for a, b in zip(px, BAR_RGB)))
    # Two bars of a few hundred by ~200 pixels: far more than any icon or legend marker.
    assert bar_pixels > 20_000, bar_pixels


def test_spc_filter_chooses_the_series(dash_cfg, deployed, network_browser):
    driver = network_browser
    open_dashboard(driver, deployed.urls["SPC"], 300)
    # The series filter defaults to its first value by name: PLT-A/L1/S010/bolt_angle_deg
    # before .../bolt_torque_nm.
    angle = {"col": "series", "op": "IN", "val": ["PLT-A/L1/S010/bolt_angle_deg"]}
    filters, rows = _wait_i_chart(driver, angle)
    assert angle in filters
    assert sorted(r["measured_value"] for r in rows) == sorted(ANGLE_VALUES)

    _choose(driver, "series", "PLT-A/L1/S010/bolt_torque_nm")
    torque = {"col": "series", "op": "IN", "val": ["PLT-A/L1/S010/bolt_torque_nm"]}
    filters, rows = _wait_i_chart(driver, torque)
    assert torque in filters
    got = sorted(rows, key=lambda r: r["event_time"])
    assert [r["measured_value"] for r in got] == SPC_VALUES  # PLT-B's point is filtered out
    # Drawn against the event time, one point per measurement (no time grain merging
    # them): the readings are a minute apart, in epoch milliseconds.
    times = [r["event_time"] for r in got]
    assert [b - a for a, b in zip(times, times[1:])] == [60_000] * (len(SPC_VALUES) - 1)
    # The baseline's points (the first four) are their own series.
    assert [r["baseline_value"] for r in got] == SPC_VALUES[:4] + [None, None]
    assert {(r["upper_control_limit"], r["centre_line"], r["lower_control_limit"])
            for r in got} == {(53.0, 50.0, 47.0)}


def test_alert_link_opens_spc_filtered(dash_cfg, deployed, network_browser):
    driver = network_browser
    url = links.spc_dashboard_url(dash_cfg, "PLT-B", "L1", "S010", "bolt_torque_nm")
    open_dashboard(driver, url, 300)
    plant_b = {"col": "series", "op": "IN", "val": ["PLT-B/L1/S010/bolt_torque_nm"]}
    filters, rows = _wait_i_chart(driver, plant_b)
    assert plant_b in filters
    assert [r["measured_value"] for r in rows] == [99.0]


def _viewer_session(dash_cfg) -> requests.Session:
    """A session of the read-only user, logged in through Superset's REST API."""
    user, password = viewer_credentials(dash_cfg)
    base = dash_cfg.superset.url
    session = requests.Session()
    r = session.post(f"{base}/api/v1/security/login", timeout=60, json={
        "username": user, "password": password, "provider": "db", "refresh": False})
    assert r.status_code == 200, r.text[:300]
    session.headers["Authorization"] = f"Bearer {r.json()['access_token']}"
    r = session.get(f"{base}/api/v1/security/csrf_token/", timeout=60)
    session.headers.update({"X-CSRFToken": r.json()["result"], "Referer": base})
    return session


def test_viewer_opens_dashboards_but_not_sql_lab(dash_cfg, deployed, tmp_path):
    viewer = viewer_credentials(dash_cfg)
    state = capture(dash_cfg, deployed.urls["SPC"], OUTPUT / "spc-as-viewer.png", timeout=300,
                    credentials=viewer)
    assert state.errors == [] and state.drawn == state.charts == 6

    base = dash_cfg.superset.url
    session = _viewer_session(dash_cfg)
    (database,) = [d for d in session.get(f"{base}/api/v1/database/", timeout=60)
                   .json().get("result", []) if d["database_name"] == bundle.DATABASE_NAME] \
        or [{"id": 1}]
    r = session.post(f"{base}/api/v1/sqllab/execute/", timeout=120, json={
        "database_id": database["id"], "runAsync": False, "schema": "gold",
        "sql": "SELECT 1"})
    assert r.status_code in (401, 403), (r.status_code, r.text[:300])
    (dash,) = _find(api_session(dash_cfg), dash_cfg, "dashboard", "slug", "spc")
    r = session.put(f"{base}/api/v1/dashboard/{dash['id']}", timeout=60,
                    json={"dashboard_title": "renamed by a viewer"})
    assert r.status_code in (401, 403, 404), (r.status_code, r.text[:300])
    # SQL Lab's page sends the viewer away too.
    r = session.get(f"{base}/sqllab/", timeout=60, allow_redirects=False)
    assert r.status_code in (302, 401, 403), r.status_code
    assert _find(api_session(dash_cfg), dash_cfg, "dashboard", "slug", "spc")[0][
        "dashboard_title"] == "SPC"


#: Lake tables that no dashboard charts, registered in the Thrift Server: the viewer must
#: neither list them nor read their columns.
HIDDEN = [catalog.get("silver.station_results"), catalog.get("bronze.station_results")]


@pytest.fixture(scope="module")
def hidden_tables(dash_cfg, spark, thrift, tables):
    for table in HIDDEN:
        lake.overwrite(spark.createDataFrame([], table.schema()), dash_cfg.lake_root, table)
    thrift.register_tables(dash_cfg.lake_root, HIDDEN)
    return HIDDEN


def _listing(session, db_api: str, schema: str) -> set[str]:
    """Names the database API lists in ``schema`` to ``session``'s user."""
    r = session.get(f"{db_api}/tables/", timeout=120,
                    params={"q": f"(force:!t,schema_name:{schema})"})
    assert r.status_code == 200, (schema, r.status_code, r.text[:300])
    return {t["value"] for t in r.json()["result"]}


def test_viewer_lists_only_the_dashboards_tables(dash_cfg, deployed, hidden_tables, api):
    base = dash_cfg.superset.url
    (database,) = _find(api, dash_cfg, "database", "database_name", bundle.DATABASE_NAME)
    db_api = f"{base}/api/v1/database/{database['id']}"
    viewer = _viewer_session(dash_cfg)
    # What the dashboards chart, from the bundle's declarations: a table dataset is its
    # table; a SQL dataset is named <its name> in gold, so it lists a table only where one
    # of that name exists.
    used = {ds.name: ds for dash in bundle.load_dashboards() for ds in dash.datasets}
    tables = {(ds.table.layer.value, ds.table.name) for ds in used.values() if ds.table}
    named = {("gold", ds.name) for ds in used.values() if ds.table is None}

    r = viewer.get(f"{base}/api/v1/dataset/", timeout=120,
                   params={"q": "(columns:!(uuid,schema,table_name),page_size:100)"})
    assert r.status_code == 200, r.text[:300]
    assert {d["uuid"] for d in r.json()["result"]} == {ds.uuid for ds in used.values()}

    r = api.get(f"{db_api}/schemas/", params={"q": "(force:!t)"}, timeout=120)
    assert r.status_code == 200, r.text[:300]
    every_schema = set(r.json()["result"])
    assert {"bronze", "silver", "gold", "ops"} <= every_schema
    r = viewer.get(f"{db_api}/schemas/", timeout=120)
    assert r.status_code == 200, r.text[:300]
    assert set(r.json()["result"]) == {s for s, _ in tables | named}  # no bronze

    # Listed, at most, are the tables of the dashboards' datasets. (Superset 6.1 takes
    # the URI's database, "default", for the Hive database's catalog, while the bundle's
    # datasets have none: it then matches none of them, and lists nothing.)
    listed = {}
    for schema in sorted(every_schema):
        everything = _listing(api, db_api, schema)
        listed[schema] = _listing(viewer, db_api, schema)
        assert listed[schema] <= {t for s, t in tables | named if s == schema}, schema
        assert listed[schema] <= everything, schema
    # The admin lists what the viewer must not see: the hidden tables, and gold's inputs
    # of the risk scores (read by a SQL dataset, not charted as such).
    for table in [*hidden_tables, catalog.get("gold.vehicle_risk_scores")]:
        assert table.name in _listing(api, db_api, table.layer.value), table
        assert table.name not in listed[table.layer.value], table

    # Nor their columns, through any endpoint that shows them.
    for table in [*hidden_tables, catalog.get("gold.vehicle_risk_scores")]:
        schema, name = table.layer.value, table.name
        r = api.get(f"{db_api}/table_metadata/", params={"name": name, "schema": schema},
                    timeout=120)
        assert r.status_code == 200, r.text[:300]  # it is there
        for url in [f"table_metadata/?name={name}&schema={schema}",
                    f"table_metadata/extra/?name={name}&schema={schema}",
                    f"select_star/{name}/{schema}/", f"table/{name}/{schema}/"]:
            r = viewer.get(f"{db_api}/{url}", timeout=120)
            assert r.status_code in (403, 404), (url, r.status_code, r.text[:300])
            assert "SELECT" not in r.text and '"columns"' not in r.text, url


def test_viewer_chart_sql_is_not_substituted(dash_cfg, deployed, api):
    """Spark's ``${env:...}`` substitution would hand a dataset's ad-hoc SQL the Thrift
    Server's environment: the literal must come back as written."""
    (dataset,) = _find(api, dash_cfg, "dataset", "table_name", "first_pass_yield")
    viewer = _viewer_session(dash_cfg)
    r = viewer.post(f"{dash_cfg.superset.url}/api/v1/chart/data", timeout=300, json={
        "datasource": {"id": dataset["id"], "type": "table"},
        "queries": [{"columns": [{"expressionType": "SQL", "sqlExpression": "'${env:HOME}'",
                                  "label": "home"}],
                     "row_limit": 1}],
        "force": True, "result_format": "json", "result_type": "full"})
    assert r.status_code == 200, r.text[:1000]
    assert r.json()["result"][0]["data"] == [{"home": "${env:HOME}"}]
    assert os.path.expanduser("~") not in r.text


def test_screenshot_as_pdf(dash_cfg, deployed):
    out = OUTPUT / "field-reliability.pdf"
    state = capture(dash_cfg, deployed.urls["Field reliability"], out, timeout=300)
    assert state.errors == []
    assert out.read_bytes()[:5] == b"%PDF-" and out.stat().st_size > 20_000


def test_screenshot_refuses_the_login_page(dash_cfg, dashboard, tmp_path):
    stranger = dataclasses.replace(dash_cfg, superset=dataclasses.replace(
        dash_cfg.superset, admin_user="not-the-admin"))
    with pytest.raises(RedlineError, match="SCREENSHOT_LOGIN_FAILED"):
        capture(stranger, dashboard, tmp_path / "login.png", timeout=15)


# --- the charts' data, asked the way the saved chart asks --------------------------------
_OPS = {"==": "==", "!=": "!=", "<=": "<=", "IS NULL": "IS NULL", "IS NOT NULL": "IS NOT NULL"}


def _chart_data(api, dash_cfg, title: str) -> list[dict]:
    """Rows of chart ``title``: its saved dataset, columns, metrics and filters, through
    Superset's chart-data API (and so through the Thrift Server to the Delta table)."""
    q = json.dumps({"filters": [{"col": "slice_name", "opr": "eq", "value": title}],
                    "columns": ["id", "params", "datasource_id"]})
    r = api.get(f"{dash_cfg.superset.url}/api/v1/chart/", params={"q": q}, timeout=60)
    assert r.status_code == 200, r.text[:500]
    (chart,) = r.json()["result"]
    params = json.loads(chart["params"])
    filters = [{"col": f["subject"], "op": _OPS[f["operator"]],
                **({"val": f["comparator"]} if f["comparator"] is not None else {})}
               for f in params.get("adhoc_filters", []) if f["operator"] != "TEMPORAL_RANGE"]
    if params.get("query_mode") == "raw":
        columns, metrics = params["all_columns"], []
    elif params["viz_type"] == "heatmap_v2":
        columns, metrics = [params["x_axis"], params["groupby"]], [params["metric"]]
    elif params["viz_type"] == "table":
        columns, metrics = params["groupby"], params["metrics"]
    elif params["viz_type"] == "mixed_timeseries":
        columns = [params["x_axis"], *params["groupby"]]
        metrics = params["metrics"] + params["metrics_b"]
    else:
        columns, metrics = [params["x_axis"], *params["groupby"]], params["metrics"]
    r = api.post(f"{dash_cfg.superset.url}/api/v1/chart/data", timeout=300, json={
        "datasource": {"id": chart["datasource_id"], "type": "table"},
        "queries": [{"columns": columns, "metrics": metrics, "filters": filters,
                     "row_limit": params["row_limit"]}],
        "result_format": "json", "result_type": "full"})
    assert r.status_code == 200, r.text[:1000]
    return r.json()["result"][0]["data"]


def test_sql_lab_returns_the_rows_written(dash_cfg, deployed, api):
    (database,) = _find(api, dash_cfg, "database", "database_name", "redline_lake")
    r = api.post(f"{dash_cfg.superset.url}/api/v1/sqllab/execute/", timeout=300, json={
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


def test_tables_are_listed_by_name(dash_cfg, deployed, api):
    (database,) = _find(api, dash_cfg, "database", "database_name", "redline_lake")
    r = api.get(f"{dash_cfg.superset.url}/api/v1/database/{database['id']}/tables/",
                params={"q": json.dumps({"schema_name": "gold"})}, timeout=120)
    assert r.status_code == 200, r.text[:500]
    assert "first_pass_yield" in {t["value"] for t in r.json()["result"]}


def test_dataset_metric_weights_by_volume(dash_cfg, deployed, api):
    (dataset,) = _find(api, dash_cfg, "dataset", "table_name", "first_pass_yield")
    r = api.post(f"{dash_cfg.superset.url}/api/v1/chart/data", timeout=300, json={
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


def test_deploy_twice_updates_in_place(dash_cfg, deployed, api, tmp_path):
    changed = tmp_path / "spec"
    shutil.copytree(bundle.SPEC, changed)
    spec_file = changed / "manufacturing_quality.yaml"
    spec_file.write_text(spec_file.read_text().replace(
        "description: Volume-weighted first-pass yield of each station",
        "description: CHANGED. Volume-weighted first-pass yield of each station"))

    assert deploy(dash_cfg, spec=changed).urls == deployed.urls
    (chart,) = _find(api, dash_cfg, "chart", "slice_name", "First-pass yield by station")
    detail = api.get(f"{dash_cfg.superset.url}/api/v1/chart/{chart['id']}", timeout=60).json()
    assert detail["result"]["description"].startswith("CHANGED.")

    assert deploy(dash_cfg).urls == deployed.urls
    for dash in bundle.load_dashboards():
        assert len(_find(api, dash_cfg, "dashboard", "slug", dash.slug)) == 1
        for chart in dash.charts:
            assert len(_find(api, dash_cfg, "chart", "slice_name", chart.title)) == 1, chart.title
    (chart,) = _find(api, dash_cfg, "chart", "slice_name", "First-pass yield by station")
    detail = api.get(f"{dash_cfg.superset.url}/api/v1/chart/{chart['id']}", timeout=60).json()
    assert not detail["result"]["description"].startswith("CHANGED.")
    assert len(_find(api, dash_cfg, "dataset", "table_name", "first_pass_yield")) == 1
    assert len(_find(api, dash_cfg, "database", "database_name", "redline_lake")) == 1


def test_manufacturing_charts(dash_cfg, deployed, api):
    worst = [(r["station"], r["fpy"], r["dpmo"])
             for r in _chart_data(api, dash_cfg, "Worst stations by first-pass yield")]
    assert [w[0] for w in sorted(worst, key=lambda w: w[1])] == [w[0] for w in WORST]
    for (station, fpy, dpmo), (_, want_fpy, want_dpmo) in zip(
            sorted(worst, key=lambda w: w[1]), WORST):
        assert (fpy, dpmo) == pytest.approx((want_fpy, want_dpmo)), station
    [day1, day2] = sorted(_chart_data(api, dash_cfg, "FPY and RTY with units, by period"),
                          key=lambda r: r["day"])
    assert (day1["fpy"], day2["fpy"]) == pytest.approx((0.90, 285 / 300))
    assert (day1["units"], day2["units"]) == (100, 300)  # the n behind each point
    pareto = sorted((r["ranked_category"], r["defect_count"], r["cumulative_percent"])
                    for r in _chart_data(api, dash_cfg, "Defect Pareto by defect code"))
    assert pareto == [(c, n, pytest.approx(s)) for c, n, s in PARETO]


def test_dtc_rate_chart_shows_each_firmware_all_codes(dash_cfg, deployed, api):
    rows = _chart_data(api, dash_cfg, "DTC rate by firmware")
    got = {r["firmware_version"]: r["dtc_per_1000_vehicles_weighted"] for r in rows}
    assert got.keys() == DTC_PER_1000.keys()
    for fw, rate in DTC_PER_1000.items():
        assert got[fw] == pytest.approx(rate)


def test_warranty_heatmap_cells(dash_cfg, deployed, api):
    rows = _chart_data(api, dash_cfg, "Warranty claims per 1,000 vehicles by months in service")
    got = {(r["build_month_label"], r["months_in_service"]): r["claims_per_1000_at_risk"]
           for r in rows}
    assert got.keys() == TRIANGLE.keys()
    for cell, rate in TRIANGLE.items():
        assert got[cell] == pytest.approx(rate)


def test_capability_lists_only_rows_with_enough_points_and_their_intervals(
        dash_cfg, deployed, api):
    # The angle's day (n = 4, below the minimum) is not listed; its month and the torque
    # days are, each with its Cpk's interval.
    rows = _chart_data(api, dash_cfg,
                       "Process capability (Cpk, Ppk with 95 % intervals; Cp, Pp)")
    assert sorted((r["period"], r["n"], r["cpk"]) for r in rows) == [
        ("day", 40, 0.9), ("day", 40, 1.5), ("month", 31, 2.0)]
    assert sorted((r["cpk_ci_low"], r["cpk_ci_high"]) for r in rows) == [
        pytest.approx((0.6, 1.2)), pytest.approx((1.2, 1.8)), pytest.approx((1.5, 2.5))]


def test_b10_and_violation_tables(dash_cfg, deployed, api):
    b10 = {r["component"]: (r["b10_days"], r["b10_ci_low_days"])
           for r in _chart_data(api, dash_cfg, "Weibull B10 life by component")}
    assert b10 == {c: (v, v and v / 2) for c, v in B10.items()}
    rules = {(r["chart"], r["rule"], r["points"])
             for r in _chart_data(api, dash_cfg, "Nelson rule violations")}
    assert rules == {("XBAR", 1, 1), ("I", 1, 1), ("I", 5, 3)}
    [row] = _chart_data(api, dash_cfg, "MTBF and failure rate by component")
    assert (row["component"], row["failures"], row["mtbf_days"]) == ("coolant_pump", 4, 750.0)


def test_i_chart_marks_the_points_of_each_rule(dash_cfg, deployed, api):
    (dataset,) = _find(api, dash_cfg, "dataset", "table_name", "spc_chart_points")
    r = api.post(f"{dash_cfg.superset.url}/api/v1/chart/data", timeout=300, json={
        "datasource": {"id": dataset["id"], "type": "table"},
        "queries": [{"columns": ["seq", "rules"], "metrics": ["violating_value"],
                     "filters": [{"col": "plant", "op": "==", "val": "PLT-A"},
                                 {"col": "characteristic", "op": "==",
                                  "val": "bolt_torque_nm"},
                                 {"col": "rules", "op": "IS NOT NULL"}],
                     "row_limit": 100}],
        "result_format": "json", "result_type": "full"})
    assert r.status_code == 200, r.text[:1000]
    got = sorted((row["seq"], row["rules"], row["violating_value"])
                 for row in r.json()["result"][0]["data"])
    # Rule 5 spans points 4-6; rule 1 is point 6 alone.
    assert got == [(4, "rule 5", 50.5), (5, "rule 5", 52.0), (6, "rule 1, 5", 55.0)]


# --- read-only commands go through the running Thrift Server -----------------------------
BY_STATION = ("SELECT station, sum(units) AS units, sum(first_pass_units) AS fp "
              "FROM gold.first_pass_yield GROUP BY station ORDER BY station")


def test_cli_sql_goes_through_the_thrift_server(thrift, tables, capsys):
    from redline.cli import main

    capsys.readouterr()
    assert main(["--verbose", "sql", BY_STATION, "--json"]) == 0
    out, err = capsys.readouterr()
    assert f"redline: via Spark Thrift Server {thrift.address}" in err
    assert "starting" not in err
    # By hand from ROWS: S1-weld 100 + 200 units, 95 + 180 first pass; S2-paint 100 + 50, 80 + 45.
    assert json.loads(out) == [{"station": "S1-weld", "units": 300, "fp": 275},
                               {"station": "S2-paint", "units": 150, "fp": 125}]
    assert main(["sql", "SELECT day, fpy FROM gold.first_pass_yield ORDER BY day, fpy",
                 "--limit", "1"]) == 0
    assert capsys.readouterr().out.splitlines() == [
        "+----------+---+", "|day       |fpy|", "+----------+---+",
        "|2024-05-01|0.8|", "+----------+---+", "only showing top 1 row"]

    for query, message in [
            ("SELEC 1", "[SQL_ERROR] [PARSE_SYNTAX_ERROR] Syntax error at or near 'SELEC'"),
            ("SELECT * FROM gold.no_such_table",
             "[SQL_ERROR] [TABLE_OR_VIEW_NOT_FOUND] The table or view `gold`.`no_such_table` "
             "cannot be found.")]:
        assert main(["sql", query]) == 2
        err = capsys.readouterr().err.splitlines()
        assert len(err) == 1 and err[0].startswith(f"redline: error {message}"), err


def test_quarantine_list_and_ingest_status_through_the_thrift_server(
        spark, thrift, tmp_path, monkeypatch, capsys):
    """A fresh lake: the server has not seen its tables and registers them on the way. The
    output is the local Spark code's (``list_rows``, ``status``) and the hand-made rows'."""
    from redline.cli import main
    from redline.config import load
    from redline.streaming import quarantine, status

    root = str(tmp_path / "lake")
    monkeypatch.setenv("REDLINE_LAKE_ROOT", root)
    dash_cfg = load()
    t0 = dt.datetime(2026, 3, 1, 12)
    quarantined = [  # source table, partition, offset, reason code, seconds after t0
        ("bronze.station_results", 0, 11, "MALFORMED_JSON", 30),
        ("bronze.station_results", 1, 12, "TYPE_MISMATCH", 20),
        ("bronze.station_results", 0, 13, "MALFORMED_JSON", 30),
        ("bronze.vehicle_dtc", 0, 3, "RULE_FAILED", 40)]
    lake.overwrite(spark.createDataFrame(
        [(src, "t", p, o, "{", code, f"{code} at {o}", t0 + dt.timedelta(seconds=s))
         for src, p, o, code, s in quarantined], catalog.QUARANTINE.schema()),
        root, catalog.QUARANTINE)
    batches = [  # topic, batch, started, ended (s after t0), rows in, silver, rules
        ("station_results", 0, 0, 10, 100, 95, [("speed", 2)]),
        ("station_results", 1, 990, 1000, 60, 50, [("speed", 1), ("soc", 4)]),
        ("vehicle_dtc", 0, 0, 5, 7, 7, [])]
    lake.overwrite(spark.createDataFrame(
        [(t, "q", b, t0 + dt.timedelta(seconds=s), t0 + dt.timedelta(seconds=e), n, ok,
          n - ok, 0, None, None, [(rule, "warn", k) for rule, k in rules])
         for t, b, s, e, n, ok, rules in batches], catalog.SILVER_BATCHES.schema()),
        root, catalog.SILVER_BATCHES)
    bronze = catalog.bronze("station_results")
    for offset in range(2):  # versions 0 and 1
        lake.append(spark.createDataFrame([(b"k", b"{}", "t", 0, offset, t0, t0)],
                                          bronze.schema()), root, bronze)

    capsys.readouterr()
    assert main(["--verbose", "quarantine", "list", "--json", "--table", "station_results"]) == 0
    out, err = capsys.readouterr()
    assert f"redline: via Spark Thrift Server {thrift.address}" in err
    listed = json.loads(out)
    # Newest first; equal times by partition, then offset.
    assert [(r["kafka_partition"], r["kafka_offset"]) for r in listed] == [(0, 11), (0, 13),
                                                                           (1, 12)]
    assert listed == json.loads(json.dumps(
        quarantine.list_rows(spark, root, "station_results", 50), default=str))

    topics = ["station_results", "vehicle_dtc"]
    assert main(["ingest", "status", "--json", "--verbose", "--topics", *topics]) == 0
    out, err = capsys.readouterr()
    assert f"redline: via Spark Thrift Server {thrift.address}" in err
    got = json.loads(out)
    assert got == json.loads(status.as_json(status.status(spark, dash_cfg, root, topics)))
    st, dtc = got
    assert st["bronze_versions_behind"] == 2  # no silver checkpoint: both commits to do
    assert (st["silver_batches"], st["rows_in"], st["rows_silver"], st["rows_quarantined"],
            st["silver_last_batch"]) == (2, 160, 145, 15, 1)
    assert st["silver_rows_per_s"] == 6.0  # only the last batch is in the 300 s window
    assert st["rule_violations"] == {"speed": 3, "soc": 4}
    assert st["quarantine"] == {"MALFORMED_JSON": 2, "TYPE_MISMATCH": 1}
    assert (dtc["bronze_versions_behind"], dtc["rows_in"], dtc["quarantine"]) == (
        None, 7, {"RULE_FAILED": 1})
