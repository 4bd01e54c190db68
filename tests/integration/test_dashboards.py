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
from redline.services.superset import api_session

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
FPY_TITLES = {"First-pass yield by station", "First-pass yield by day"}
QUALITY_TITLES = {
    "SPC individuals chart: bolt torque PLT-A/L1/S010",
    "SPC X-bar chart: bolt torque PLT-A/L1/S010",
    "Nelson rule violations", "Worst daily Cpk by characteristic",
    "Defect Pareto by defect code", "Warranty claims per 1,000 vehicles by months in service",
    "Weibull B10 life by component", "DTC rate by firmware",
    "MTBF and failure rate by component",
}
CHART_TITLES = FPY_TITLES | QUALITY_TITLES
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


# --- the quality tables behind the other charts: hand-made rows -----------------------
T0 = dt.datetime(2024, 5, 1, 8, 0)
DRIFT = {"plant": "PLT-A", "line": "L1", "station": "S010", "characteristic": "bolt_torque_nm"}
OTHER = {"plant": "PLT-B", "line": "L1", "station": "S010", "characteristic": "bolt_torque_nm"}
#: The I chart of the drift key: centre 50, sigma 1, so UCL = 53 and LCL = 47 by hand.
SPC_VALUES = [50.0, 51.0, 49.5, 50.5, 52.0, 55.0]


def _spc_point(key, seq, value, centre, sigma):
    return {**key, "seq": seq, "event_id": f"e{key['plant']}{seq}",
            "event_time": T0 + dt.timedelta(minutes=seq), "unit_serial": f"U{seq}",
            "value": value, "in_baseline": seq <= 4, "centre": centre, "sigma": sigma,
            "lcl": centre - 3 * sigma, "ucl": centre + 3 * sigma, "lsl": 45.0, "usl": 55.0}


QUALITY_ROWS = {
    "spc_points": [_spc_point(DRIFT, i + 1, v, 50.0, 1.0) for i, v in enumerate(SPC_VALUES)]
    + [_spc_point(OTHER, 1, 99.0, 90.0, 2.0)],
    "spc_subgroups": [
        {**DRIFT, "subgroup_size": 5, "subgroup": k, "start_time": T0, "end_time": T0,
         "event_ids": [f"e{k}"], "xbar": x, "range": r, "in_baseline": k <= 2,
         "xbar_centre": 50.1, "xbar_lcl": 49.1768, "xbar_ucl": 51.0232,
         "sigma_xbar": 0.577 * 1.6 / 3, "r_centre": 1.6, "r_lcl": 0.0, "r_ucl": 3.3824}
        for k, x, r in [(1, 50.0, 2.0), (2, 50.2, 1.2), (3, 51.8, 1.0)]],
    "spc_violations": [
        {**DRIFT, "chart": "XBAR", "rule": 1, "rule_name": "1 point beyond 3 sigma",
         "start_seq": 3, "end_seq": 3, "start_time": T0, "end_time": T0, "points": 1,
         "event_ids": ["e3"]},
        {**DRIFT, "chart": "I", "rule": 1, "rule_name": "1 point beyond 3 sigma",
         "start_seq": 6, "end_seq": 6, "start_time": T0, "end_time": T0, "points": 1,
         "event_ids": ["ePLT-A6"]}],
    "capability": [
        {**DRIFT, "period": "day", "period_start": dt.date(2024, 5, d), "n": 20, "mean": 50.0,
         "cpk": cpk, "cp": cpk}
        for d, cpk in [(1, 1.5), (2, 0.9)]]
    + [{"plant": "PLT-A", "line": "L1", "station": "S020", "characteristic": "leak_rate_ccm",
        "period": "day", "period_start": dt.date(2024, 5, 1), "n": 20, "mean": 2.0,
        "cpk": 2.0, "cp": 2.2}],
    "defect_pareto": [
        {"pareto": "defect_code", "category": "D-LEAK", "defects": 5, "share": 5 / 17,
         "cumulative_share": 1.0, "rank": 2},
        {"pareto": "defect_code", "category": "D-TORQUE", "defects": 12, "share": 12 / 17,
         "cumulative_share": 12 / 17, "rank": 1},
        {"pareto": "station", "station": "S010", "category": "S010", "defects": 99,
         "share": 1.0, "cumulative_share": 1.0, "rank": 1}],
    "warranty_triangle": [
        {"build_month": dt.date(2024, m, 1), "months_in_service": mis,
         "observation_end": dt.date(2024, 3, 31), "vehicles_at_risk": n, "claims": c,
         "claims_per_1000": c * 1000 / n, "cumulative_claims_per_1000": 0.0}
        for m, mis, n, c in [(1, 0, 100, 2), (1, 1, 100, 3), (2, 0, 50, 1)]],
    "weibull_fits": [
        {"level": level, "component": comp, "lot": lot, "units": 100, "failures": 5,
         "observation_end": dt.date(2024, 3, 31), "status": status, "b10_days": b10,
         "ci_method": "fisher-matrix-log-wald"}
        for level, comp, lot, status, b10 in [
            ("component", "coolant_pump", None, "OK", 12.5),
            ("component", "drive_motor", None, "OK", 300.0),
            ("lot", "coolant_pump", "LOT-CP-0077", "OK", 5.0),
            ("component", "inverter", None, "TOO_FEW_FAILURES", None)]],
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
B10 = {"coolant_pump": 12.5, "drive_motor": 300.0}  # component level, status OK
PARETO = [("D-TORQUE", 12), ("D-LEAK", 5)]           # largest first
TRIANGLE = {("2024-01", 0): 20.0, ("2024-01", 1): 30.0, ("2024-02", 0): 20.0}
WORST_CPK = {("bolt_torque_nm", "PLT-A", "L1"): 0.9, ("leak_rate_ccm", "PLT-A", "L1"): 2.0}


@pytest.fixture(scope="module")
def quality_tables(cfg, spark, thrift):
    tables = []
    for name, rows in QUALITY_ROWS.items():
        table = catalog.get(f"gold.{name}")
        fields = table.schema().fields
        df = spark.createDataFrame([tuple(r.get(f.name) for f in fields) for r in rows],
                                   table.schema())
        lake.overwrite(df, cfg.lake_root, table)
        tables.append(table)
    thrift.register_tables(cfg.lake_root, tables)
    return tables


@pytest.fixture(scope="module")
def dashboard(cfg, superset, fpy_table, quality_tables):
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
    state = capture(cfg, dashboard, out, timeout=480)

    assert "standalone=1" in state.url and "/login" not in state.url
    assert state.errors == []
    assert state.charts == len(CHART_TITLES) and state.drawn == len(CHART_TITLES)
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


# --- the quality charts' data, asked the way the saved chart asks -----------------------
_OPS = {"==": "==", "IS NULL": "IS NULL"}


def _chart_data(api, cfg, title: str) -> list[dict]:
    """Rows of chart ``title``: its saved dataset, columns, metrics and filters, through
    Superset's chart-data API (and so through the Thrift Server to the Delta table)."""
    q = json.dumps({"filters": [{"col": "slice_name", "opr": "eq", "value": title}],
                    "columns": ["id", "params", "datasource_id"]})
    r = api.get(f"{cfg.superset.url}/api/v1/chart/", params={"q": q}, timeout=60)
    assert r.status_code == 200, r.text[:500]
    (chart,) = r.json()["result"]
    params = json.loads(chart["params"])
    filters = [{"col": f["subject"], "op": _OPS[f["operator"]],
                **({"val": f["comparator"]} if f["comparator"] is not None else {})}
               for f in params.get("adhoc_filters", [])]
    if params.get("query_mode") == "raw":
        columns, metrics = params["all_columns"], []
    elif "groupbyRows" in params:
        columns, metrics = params["groupbyRows"] + params["groupbyColumns"], params["metrics"]
    else:
        columns, metrics = [params["x_axis"], *params["groupby"]], params["metrics"]
    r = api.post(f"{cfg.superset.url}/api/v1/chart/data", timeout=300, json={
        "datasource": {"id": chart["datasource_id"], "type": "table"},
        "queries": [{"columns": columns, "metrics": metrics, "filters": filters,
                     "row_limit": params["row_limit"]}],
        "result_format": "json", "result_type": "full"})
    assert r.status_code == 200, r.text[:1000]
    return r.json()["result"][0]["data"]


def _month(value) -> str:
    """A DATE cell as 'YYYY-MM' (Superset returns temporal cells as epoch ms or text)."""
    if isinstance(value, (int, float)):
        return dt.datetime.fromtimestamp(value / 1000, dt.UTC).strftime("%Y-%m")
    return str(value)[:7]


def test_dtc_rate_chart_shows_each_firmware_all_codes(cfg, dashboard, api):
    rows = _chart_data(api, cfg, "DTC rate by firmware")
    got = {r["firmware_version"]: r["dtc_per_1000_vehicles_weighted"] for r in rows}
    assert got.keys() == DTC_PER_1000.keys()
    for fw, rate in DTC_PER_1000.items():
        assert got[fw] == pytest.approx(rate)


def test_spc_chart_shows_the_points_of_its_key_with_limits(cfg, dashboard, api):
    rows = sorted(_chart_data(api, cfg, "SPC individuals chart: bolt torque PLT-A/L1/S010"),
                  key=lambda r: r["seq"])
    assert [r["seq"] for r in rows] == [1, 2, 3, 4, 5, 6]  # PLT-B's point is filtered out
    assert [r["measured_value"] for r in rows] == SPC_VALUES
    assert {(r["upper_control_limit"], r["centre_line"], r["lower_control_limit"])
            for r in rows} == {(53.0, 50.0, 47.0)}


def test_warranty_triangle_chart_cells(cfg, dashboard, api):
    rows = _chart_data(api, cfg, "Warranty claims per 1,000 vehicles by months in service")
    got = {(_month(r["build_month"]), r["months_in_service"]): r["claims_per_1000_at_risk"]
           for r in rows}
    assert got.keys() == TRIANGLE.keys()
    for cell, rate in TRIANGLE.items():
        assert got[cell] == pytest.approx(rate)


def test_b10_pareto_and_cpk_charts(cfg, dashboard, api):
    b10 = {r["component"]: r["b10_life_days"]
           for r in _chart_data(api, cfg, "Weibull B10 life by component")}
    assert b10 == pytest.approx(B10)
    pareto = sorted(((r["category"], r["defect_count"])
                     for r in _chart_data(api, cfg, "Defect Pareto by defect code")),
                    key=lambda p: -p[1])
    assert pareto == PARETO
    cpk = {(r["characteristic"], r["plant"], r["line"]): r["worst_cpk"]
           for r in _chart_data(api, cfg, "Worst daily Cpk by characteristic")}
    assert cpk == pytest.approx(WORST_CPK)


def test_mtbf_and_violation_tables(cfg, dashboard, api):
    [row] = _chart_data(api, cfg, "MTBF and failure rate by component")
    assert (row["component"], row["failures"], row["mtbf_days"]) == ("coolant_pump", 4, 750.0)
    assert row["failures_per_1000_vehicle_months"] == pytest.approx(4000 / (3000 / 30.4375))
    rules = {(r["chart"], r["rule"], r["points"])
             for r in _chart_data(api, cfg, "Nelson rule violations")}
    assert rules == {("XBAR", 1, 1), ("I", 1, 1)}


# --- read-only commands go through the running Thrift Server -----------------------------
BY_STATION = ("SELECT station, sum(units) AS units, sum(first_pass_units) AS fp "
              "FROM gold.first_pass_yield GROUP BY station ORDER BY station")


def test_cli_sql_goes_through_the_thrift_server(thrift, fpy_table, capsys):
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
    cfg = load()
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
    assert got == json.loads(status.as_json(status.status(spark, cfg, root, topics)))
    st, dtc = got
    assert st["bronze_versions_behind"] == 2  # no silver checkpoint: both commits to do
    assert (st["silver_batches"], st["rows_in"], st["rows_silver"], st["rows_quarantined"],
            st["silver_last_batch"]) == (2, 160, 145, 15, 1)
    assert st["silver_rows_per_s"] == 6.0  # only the last batch is in the 300 s window
    assert st["rule_violations"] == {"speed": 3, "soc": 4}
    assert st["quarantine"] == {"MALFORMED_JSON": 2, "TYPE_MISMATCH": 1}
    assert (dtc["bronze_versions_behind"], dtc["rows_in"], dtc["quarantine"]) == (
        None, 7, {"RULE_FAILED": 1})
