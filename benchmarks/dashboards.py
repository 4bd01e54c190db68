"""Benchmark: chart and dashboard load times, Superset -> Spark Thrift Server -> Delta.

Runs against the services and lake of the active configuration (after `make demo`:
``.redline``; ``REDLINE_HOME`` for another). Services that are down are started; a lake
without gold tables gets a simulated fleet (``--vehicles``, ``--days``) and the gold jobs
first. The dashboards are deployed, then:

1. **Dashboards in the browser.** Headless Chromium, logged in, opens each dashboard
   ``--repeat`` times after emptying Superset's results cache ("cold": every chart queries
   the Thrift Server) and ``--repeat`` times right after ("warm": from the cache), timing
   from navigation until every chart has drawn. The chart-data requests the page sent are
   kept, filters applied as a person sees them.
2. **Every chart through the API.** Each of those requests is sent again ``--repeat``
   times with ``force: true`` (Superset skips its cache: the query runs on the Thrift
   Server) and ``--repeat`` times without (warm: the cache answers). p50 / p95 over all
   charts, and per chart.
3. **The floor.** ``SELECT 1`` through PyHive to the Thrift Server (a round trip with no
   work), and the SQL of the slowest chart (Superset's own ``result_type: query``) run
   through the same connection, ``redline sql``'s path (``redline.query``).

Targets (issue 18): warm chart p95 <= 1 s, a whole dashboard <= 3 s warm. Prints a table
and writes ``benchmarks/results/dashboards.json``.

    .venv/bin/python benchmarks/dashboards.py             # after make demo
    .venv/bin/python benchmarks/dashboards.py --repeat 2  # a quicker run
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))  # simulated.py: silver without Kafka

WARM_CHART_P95_S = 1.0
WARM_DASHBOARD_S = 3.0


def pct(values: list[float], q: float) -> float:
    """The q-th percentile (nearest rank) of ``values``."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered) + 0.5) - 1))]


def summary(values: list[float]) -> dict:
    return {"n": len(values), "p50_s": round(statistics.median(values), 3),
            "p95_s": round(pct(values, 95), 3), "max_s": round(max(values), 3)}


def ensure_services_and_data(cfg, vehicles: int, days: int) -> None:
    from redline import catalog
    from redline.query import in_lake
    from redline.services.superset import SupersetServer
    from redline.services.thrift import ThriftServer

    for svc in (ThriftServer(cfg), SupersetServer(cfg)):
        if not svc.check():
            print(f"starting {svc.name} ...", flush=True)
            svc.start(progress=lambda m: print(f"  {m}", flush=True))
    if in_lake(cfg.lake_root, catalog.SPC_POINTS):
        return
    import simulated

    from redline.pipeline import run_jobs
    from redline.spark import build_session
    from redline.streaming.simulator import FACTORY_UNITS_PER_LINE_DAY, SimulationSpec

    print(f"no gold tables in {cfg.lake_root}: simulating {vehicles} vehicles over {days} "
          f"days in the demo's factory and running the gold jobs ...", flush=True)
    spark = build_session(cfg, app_name="redline-benchmark-dashboards")
    spec = SimulationSpec(vehicles=vehicles, days=days,
                          units_per_line_day=FACTORY_UNITS_PER_LINE_DAY)
    simulated.write_silver(spark, cfg.lake_root, spec)
    run_jobs(spark, cfg.lake_root, ["gold"], progress=lambda m: None,
             analysis=cfg.analysis)
    tables = [t for t in catalog.TABLES.values() if in_lake(cfg.lake_root, t)]
    ThriftServer(cfg).register_tables(cfg.lake_root, tables)
    spark.stop()


def chart_requests(driver) -> list[dict]:
    """Bodies of the chart-data requests of dashboard charts since the last call."""
    out = []
    for entry in driver.get_log("performance"):
        msg = json.loads(entry["message"])["message"]
        if msg["method"] != "Network.requestWillBeSent":
            continue
        req = msg["params"]["request"]
        # Chart requests carry their slice id in the URL; filter-value requests do not.
        if "/api/v1/chart/data?form_data" in req["url"] and req.get("postData"):
            body = json.loads(req["postData"])
            form_data = parse_qs(urlsplit(req["url"]).query)["form_data"][0]
            body["_slice_id"] = json.loads(form_data)["slice_id"]
            out.append(body)
    return out


def clear_cache(superset_dir: Path) -> None:
    """Empty Superset's results cache (its files; the cache keeps using the folder)."""
    for path in (superset_dir / "cache" / "data").glob("*"):
        path.unlink(missing_ok=True)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--vehicles", type=int, default=200)
    ap.add_argument("--days", type=int, default=60)
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "dashboards.json"))
    args = ap.parse_args()

    from redline.config import load
    from redline.dashboards.deploy import deploy
    from redline.dashboards.screenshot import browser, login, open_dashboard
    from redline.query import open_reader
    from redline.services.superset import SupersetServer, api_session
    from redline.services.thrift import connect

    cfg = load()
    load_at_start = os.getloadavg()
    ensure_services_and_data(cfg, args.vehicles, args.days)
    deployed = deploy(cfg, progress=lambda m: print(f"  {m}", flush=True))
    superset_dir = SupersetServer(cfg).dir
    api = api_session(cfg)
    titles = {c["id"]: c["slice_name"] for c in api.get(
        f"{cfg.superset.url}/api/v1/chart/", params={"q": json.dumps({"page_size": 500})},
        timeout=60).json()["result"]}

    # 1. whole dashboards in the browser
    profile = Path(tempfile.mkdtemp(prefix="redline-bench-chromium-"))
    driver = browser(profile, network_log=True)
    dashboards, requests_by_chart = {}, {}
    try:
        driver.set_page_load_timeout(600)
        login(driver, cfg, 300)
        for title, url in deployed.urls.items():
            cold, warm = [], []
            for _ in range(args.repeat):
                clear_cache(superset_dir)
                cold.append(open_dashboard(driver, url, 600).seconds)
                warm.append(open_dashboard(driver, url, 600).seconds)
            for body in chart_requests(driver):
                requests_by_chart[body["_slice_id"]] = body
            dashboards[title] = {"cold": summary(cold), "warm": summary(warm)}
            print(f"{title:24} browser cold p50 {dashboards[title]['cold']['p50_s']:6.2f}s  "
                  f"warm p50 {dashboards[title]['warm']['p50_s']:6.2f}s  "
                  f"p95 {dashboards[title]['warm']['p95_s']:6.2f}s", flush=True)
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)

    # 2. every chart through the chart-data API
    charts, all_cold, all_warm = {}, [], []
    for slice_id, body in sorted(requests_by_chart.items()):
        body = {k: v for k, v in body.items() if k != "_slice_id"}
        times = {"cold": [], "warm": []}
        for kind in ("cold", "warm") * args.repeat:
            began = time.perf_counter()
            r = api.post(f"{cfg.superset.url}/api/v1/chart/data", timeout=600,
                         json={**body, "force": kind == "cold"})
            times[kind].append(time.perf_counter() - began)
            if r.status_code != 200:
                raise SystemExit(f"chart {titles.get(slice_id)}: HTTP {r.status_code} "
                                 f"{r.text[:300]}")
        title = titles.get(slice_id, str(slice_id))
        charts[title] = {k: summary(v) for k, v in times.items()}
        all_cold += times["cold"]
        all_warm += times["warm"]

    # 3. the floor: the Thrift Server itself
    slowest = max(charts, key=lambda t: charts[t]["cold"]["p50_s"])
    slowest_id = next(i for i, t in titles.items() if t == slowest)
    body = {k: v for k, v in requests_by_chart[slowest_id].items() if k != "_slice_id"}
    r = api.post(f"{cfg.superset.url}/api/v1/chart/data", timeout=600,
                 json={**body, "result_type": "query"})
    sql = r.json()["result"][0]["query"]
    conn = connect(cfg)
    select1, chart_sql = [], []
    try:
        cur = conn.cursor()
        for _ in range(max(20, args.repeat)):
            began = time.perf_counter()
            cur.execute("SELECT 1")
            cur.fetchall()
            select1.append(time.perf_counter() - began)
    finally:
        conn.close()
    with open_reader(cfg, "benchmark") as reader:
        for _ in range(args.repeat):
            began = time.perf_counter()
            reader.query(sql)
            chart_sql.append(time.perf_counter() - began)

    result = {
        "benchmark": "dashboards", "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                    "load_at_start": [round(x, 2) for x in load_at_start],
                    "load_at_end": [round(x, 2) for x in os.getloadavg()]},
        "repeat": args.repeat, "charts_measured": len(charts),
        "targets": {"warm_chart_p95_s": WARM_CHART_P95_S, "warm_dashboard_s": WARM_DASHBOARD_S},
        "chart_api": {"cold": summary(all_cold), "warm": summary(all_warm)},
        "dashboards_browser": dashboards,
        "floor": {"thrift_select_1": summary(select1),
                  "slowest_chart": slowest, "slowest_chart_sql_via_redline_sql":
                      summary(chart_sql), "slowest_chart_api_cold": charts[slowest]["cold"]},
        "charts": charts,
    }
    met_chart = result["chart_api"]["warm"]["p95_s"] <= WARM_CHART_P95_S
    met_dash = all(d["warm"]["p95_s"] <= WARM_DASHBOARD_S for d in dashboards.values())
    result["targets_met"] = {"warm_chart_p95": met_chart, "warm_dashboard": met_dash}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")

    print(f"\n{'chart (API)':58} {'cold p50':>9} {'cold p95':>9} {'warm p50':>9} "
          f"{'warm p95':>9}")
    for title, t in sorted(charts.items(), key=lambda kv: -kv[1]["cold"]["p50_s"]):
        print(f"{title[:58]:58} {t['cold']['p50_s']:9.3f} {t['cold']['p95_s']:9.3f} "
              f"{t['warm']['p50_s']:9.3f} {t['warm']['p95_s']:9.3f}")
    c, w = result["chart_api"]["cold"], result["chart_api"]["warm"]
    print(f"\nall {len(charts)} charts: cold p50 {c['p50_s']:.3f}s p95 {c['p95_s']:.3f}s; "
          f"warm p50 {w['p50_s']:.3f}s p95 {w['p95_s']:.3f}s "
          f"(target p95 <= {WARM_CHART_P95_S}s: {'met' if met_chart else 'MISSED'})")
    print(f"dashboards warm (target <= {WARM_DASHBOARD_S}s: "
          f"{'met' if met_dash else 'MISSED'}): " + ", ".join(
              f"{t} {d['warm']['p50_s']:.2f}s" for t, d in dashboards.items()))
    f = result["floor"]
    print(f"floor: SELECT 1 through the Thrift Server p50 "
          f"{f['thrift_select_1']['p50_s'] * 1000:.0f} ms; the slowest chart's SQL "
          f"({slowest}) via redline sql p50 "
          f"{f['slowest_chart_sql_via_redline_sql']['p50_s']:.3f}s, via Superset cold "
          f"p50 {f['slowest_chart_api_cold']['p50_s']:.3f}s")
    print(f"results: {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
