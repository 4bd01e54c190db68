"""Benchmark: event -> silver, -> gold.spc_points, -> webhook POST under the continuous pipeline.

Runs against its own Kafka broker (temporary REDLINE_HOME, ports 29492/29493 unless
``--port``) and its own lake in that folder, removed at the end (``--keep`` keeps it).

1. **Seed**: the simulator's plants and fleet (``--vehicles``, ``--days``) to Kafka, ingest
   available-now, every gold job once: SPC has its limits, as after `make demo`.
2. **Pipeline**: ``redline.continuous.run`` (the pipeline service's loop: ingest, gold
   cycles, alerts) in this process, posting alerts to a webhook receiver here.
3. **Per rate** (``--rates``, events/s, each held ``--minutes``): station results copied
   from the simulator's first week with new event ids, event times at send and no
   measurements (the load); every ``--marker-seconds`` a bolt-torque reading far out of
   control on one series (a marker), then one in control. The load carries no SPC
   readings on purpose: at thousands of readings a second Nelson's rules 2-8 raise false
   alarms every few seconds per series, and their posts would be what is measured.

Latencies, from the Kafka timestamp the producer set at send:

- event -> silver, every event: the commit time of the silver version holding it (the
  change data feed's ``_commit_timestamp``);
- marker -> ``gold.spc_points``: the commit time of the first version of the table whose
  files hold the marker (read from the Delta log and the added Parquet files);
- marker -> webhook: when the receiver got the POST naming the marker's point.

p50/p95/p99 per rate go to the console and to ``--out`` (JSON). Targets (issue 29):
event -> silver p95 <= 2 s at 2,000 events/s; marker -> webhook p95 <= 30 s.

    .venv/bin/python benchmarks/continuous.py                      # 500, 2,000, 10,000/s, 10 min each
    .venv/bin/python benchmarks/continuous.py --rates 500 --minutes 2   # a short run
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
import tempfile
import threading
import time
import uuid
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote

ROOT = Path(__file__).resolve().parents[1]
TOPIC = "station_results"
MARKER_NM = 80.0
WEBHOOK_ENV = "REDLINE_BENCH_WEBHOOK"


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rates", default="500,2000,10000", help="events/s, comma-separated")
    p.add_argument("--minutes", type=float, default=10.0, help="minutes held per rate (10)")
    p.add_argument("--marker-seconds", type=float, default=10.0,
                   help="seconds between two out-of-control markers (10)")
    p.add_argument("--vehicles", type=int, default=60, help="seed: simulated vehicles (60)")
    p.add_argument("--days", type=int, default=14, help="seed: simulated days (14)")
    p.add_argument("--drain-seconds", type=float, default=300.0,
                   help="after producing, how long to wait for the last markers (300)")
    p.add_argument("--port", type=int, default=29492, help="Kafka port (controller: +1)")
    p.add_argument("--out", default=str(ROOT / "benchmarks/results/continuous.json"))
    p.add_argument("--keep", action="store_true", help="keep the temporary state folder")
    return p.parse_args(argv)


class Receiver:
    """A webhook on 127.0.0.1 recording (arrival epoch seconds, text) of every POST."""

    def __init__(self):
        self.posts: list[tuple[float, str]] = []
        posts = self.posts

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - the standard library's name
                body = self.rfile.read(int(self.headers["Content-Length"]))
                posts.append((time.time(), json.loads(body).get("text", "")))
                self.send_response(200)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


def percentiles(values: list[float]) -> dict:
    if not values:
        return {"n": 0}
    ordered = sorted(values)

    def at(q: float) -> float:
        return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 2)

    return {"n": len(values), "p50_s": at(0.50), "p95_s": at(0.95), "p99_s": at(0.99),
            "max_s": round(ordered[-1], 2), "mean_s": round(statistics.fmean(values), 2)}


def templates(vehicles: int, days: int) -> list[dict]:
    """Station-result payloads of the simulator's first week (before its planted drifts)."""
    from redline.streaming.simulator import SimulationSpec, Simulator

    out = []
    for e in Simulator(SimulationSpec(vehicles=vehicles, days=days, seed=7)).events():
        if e.topic == TOPIC and e.payload["event_time"] < "2026-01-12":
            out.append(e.payload)
    if not out:
        raise SystemExit("the simulator gave no station results to copy")
    return out


def marker_target(spark, cfg) -> dict:
    """The bolt-torque series with the most points in gold.spc_points (markers go there),
    with its centre line and sigma."""
    from pyspark.sql import functions as F

    from redline import catalog

    points = (catalog.read(spark, cfg.lake_root, catalog.SPC_POINTS)
              .where(F.col("characteristic") == "bolt_torque_nm"))
    row = points.groupBy("plant", "line", "station").count().orderBy(F.desc("count")).first()
    if row is None:
        raise SystemExit("the seed wrote no bolt-torque SPC points; raise --vehicles/--days")
    limits = (points.where((F.col("station") == row.station) & (F.col("line") == row.line)
                           & (F.col("plant") == row.plant) & F.col("sigma").isNotNull())
              .select("centre", "sigma").first())
    return {"plant": row.plant, "line": row.line, "station": row.station,
            "centre": limits.centre, "sigma": limits.sigma}


def events(pool: list[dict], target: dict, rate: float, seconds: float,
           marker_seconds: float, markers: dict):
    """Events for ``seconds`` at ``rate``, event times at generation (the producer paces
    generation): copies of ``pool`` with new ids and no measurements (the load: silver and
    the yield, Pareto and capability jobs), and every ``marker_seconds`` a bolt-torque
    reading far out of control on ``target``'s series (a marker; ``markers``: its event
    id -> when it was made) followed by one in control (so each marker is an episode of its
    own, and the series sees nothing else that could alarm)."""
    from redline.streaming.simulator import Event

    rng = random.Random(11)
    base = next(p for p in pool if (p["plant"], p["line"], p["station"]) == (
        target["plant"], target["line"], target["station"])
        and any(m["characteristic"] == "bolt_torque_nm" for m in p["measurements"]))

    def reading(value: float, event_id: str) -> dict:
        return {**base, "event_id": event_id, "event_time": _now(),
                "measurements": [{**m, "value": value} for m in base["measurements"]
                                 if m["characteristic"] == "bolt_torque_nm"]}

    total = int(rate * seconds)
    every = max(1, int(rate * marker_seconds))
    for i in range(total):
        if i % every == every - 2:
            payload = reading(MARKER_NM, f"marker-{uuid.uuid4().hex[:12]}")
            markers[payload["event_id"]] = time.time()
        elif i % every == every - 1:
            payload = reading(round(rng.gauss(target["centre"], target["sigma"] / 2), 3),
                              str(uuid.uuid4()))
        else:
            payload = {**rng.choice(pool), "event_id": str(uuid.uuid4()),
                       "event_time": _now(), "measurements": []}
        yield Event(TOPIC, payload["unit_serial"], payload)


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def first_commit_times(path: str, ids: set[str], since_version: int) -> dict[str, float]:
    """Event id -> commit time (epoch s) of the first Delta version after ``since_version``
    whose added files hold it, read from the log and the Parquet files themselves."""
    import pyarrow.parquet as pq

    found: dict[str, float] = {}
    log_dir = Path(path) / "_delta_log"
    for commit in sorted(log_dir.glob("*.json")):
        version = int(commit.stem)
        if version <= since_version:
            continue
        stamp, adds = None, []
        for line in commit.read_text().splitlines():
            action = json.loads(line)
            if "commitInfo" in action:
                stamp = action["commitInfo"]["timestamp"] / 1000.0
            elif "add" in action and action["add"].get("dataChange", True):
                adds.append(action["add"]["path"])
        for rel in adds:
            table = pq.read_table(Path(path) / unquote(rel), columns=["event_id"])
            for eid in set(table.column("event_id").to_pylist()) & (ids - found.keys()):
                found[eid] = stamp
        if found.keys() >= ids:
            break
    return found


def measure(spark, cfg, rate: float, began: float, markers: dict, posts: list,
            silver_version: int, spc_version: int) -> dict:
    from pyspark.sql import functions as F

    from redline import catalog

    silver_path = catalog.location(cfg.lake_root, catalog.silver(TOPIC))
    lat = (spark.read.format("delta").option("readChangeFeed", "true")
           .option("startingVersion", silver_version + 1)
           .load(silver_path).where(F.col("_change_type") == "insert")
           .where(F.col("kafka_timestamp").cast("double") >= began)
           .select("event_id", F.col("kafka_timestamp").cast("double").alias("sent"),
                   (F.col("_commit_timestamp").cast("double")
                    - F.col("kafka_timestamp").cast("double")).alias("latency")))
    q = lat.agg(F.count("*").alias("n"),
                *[F.percentile_approx("latency", p, 10000).alias(f"p{int(p * 100)}")
                  for p in (0.5, 0.95, 0.99)], F.max("latency").alias("max")).first()
    silver = {"n": q.n, "p50_s": round(q.p50 or 0, 2), "p95_s": round(q.p95 or 0, 2),
              "p99_s": round(q.p99 or 0, 2), "max_s": round(q.max or 0, 2)}
    sent = {r.event_id: r.sent for r in lat.where(F.col("event_id").isin(*markers))
            .select("event_id", "sent").collect()}
    spc_path = catalog.location(cfg.lake_root, catalog.SPC_POINTS)
    in_gold = first_commit_times(spc_path, set(sent), spc_version)
    seqs = {r.event_id: r for r in catalog.read(spark, cfg.lake_root, catalog.SPC_POINTS)
            .where(F.col("event_id").isin(*markers))
            .select("event_id", "seq", "station", "line", "plant").collect()}
    webhook = []
    for eid, row in seqs.items():
        series = f"bolt_torque_nm at {row.plant}/{row.line}/{row.station}, individuals chart"
        hit = [t for t, text in posts if series in text and "Nelson rule 1 " in text
               and f"(#{row.seq})" in text]
        if hit and eid in sent:
            webhook.append(min(hit) - sent[eid])
    return {"rate": rate, "events_in_silver": silver["n"], "silver": silver,
            "markers": len(markers), "markers_in_silver": len(sent),
            "marker_to_spc_points": percentiles([in_gold[e] - sent[e] for e in in_gold]),
            "marker_to_webhook": percentiles(webhook)}


def main(argv=None) -> int:
    args = parse_args(argv)
    rates = [float(r) for r in args.rates.split(",")]
    home = Path(tempfile.mkdtemp(prefix="redline-continuous-"))
    receiver = Receiver()
    env = {**os.environ, "REDLINE_HOME": str(home), "REDLINE_KAFKA_PORT": str(args.port),
           "REDLINE_KAFKA_CONTROLLER_PORT": str(args.port + 1),
           "REDLINE_KAFKA_TOPIC_PREFIX": "cont.", "REDLINE_ALERTS_WEBHOOK_URL_ENV": WEBHOOK_ENV,
           WEBHOOK_ENV: receiver.url}
    env.pop("REDLINE_PROFILE", None)
    os.environ.update({k: env[k] for k in ("REDLINE_HOME", "REDLINE_ALERTS_WEBHOOK_URL_ENV",
                                            WEBHOOK_ENV)})
    from redline import catalog, continuous, lake
    from redline.config import load
    from redline.pipeline import run_jobs
    from redline.schemas.payloads import SIMULATED_TOPICS
    from redline.services.kafka import KafkaBroker
    from redline.spark import build_session
    from redline.streaming import ingest
    from redline.streaming.producer import produce, simulate

    cfg = load("local", env)
    results: dict = {"benchmark": "continuous", "started_at": datetime.now(UTC).isoformat(),
                     "cores": os.cpu_count(), "load_average_start": list(os.getloadavg()),
                     "minutes_per_rate": args.minutes, "marker_seconds": args.marker_seconds,
                     "gold_interval_seconds": cfg.pipeline.gold_interval_seconds, "rates": []}
    broker = KafkaBroker(cfg)
    spark = None
    stop = threading.Event()
    worker = None
    failure: list[BaseException] = []
    try:
        broker.start(progress=log)
        log(f"seed: {args.vehicles} vehicles over {args.days} days")
        simulate(cfg, args.vehicles, args.days, 7, say=log)
        spark = build_session(cfg, app_name="redline-continuous-benchmark",
                              driver_java_options=continuous.DRIVER_JAVA_OPTIONS)
        spark.sparkContext.setLogLevel("ERROR")
        ingest.run(spark, cfg, cfg.lake_root, list(SIMULATED_TOPICS), available_now=True,
                   progress=lambda _line: None)
        run_jobs(spark, cfg.lake_root, ["gold"], ingest=cfg.ingest, analysis=cfg.analysis,
                 progress=lambda _line: None)
        target = marker_target(spark, cfg)
        pool = templates(args.vehicles, args.days)
        log(f"seeded; markers go to bolt torque at {target['plant']}/{target['line']}/"
            f"{target['station']}; {len(pool):,} station results to copy")

        def pipeline():
            try:
                continuous.run(spark, cfg, home / "pipeline-status.json", stop, [TOPIC],
                               log=lambda line: log(f"pipeline: {line}"))
            except BaseException as exc:  # reported below
                failure.append(exc)

        worker = threading.Thread(target=pipeline, name="pipeline", daemon=True)
        worker.start()
        time.sleep(30)  # the queries start and the first cycle catches up
        for rate in rates:
            spc_version = lake.table_version(spark, cfg.lake_root, catalog.SPC_POINTS) or 0
            silver_version = lake.table_version(spark, cfg.lake_root, catalog.silver(TOPIC))
            markers: dict[str, float] = {}
            began = time.time()
            log(f"rate {rate:,.0f}/s for {args.minutes} min")
            report = produce(cfg, events(pool, target, rate, args.minutes * 60,
                                         args.marker_seconds, markers), rate=rate,
                             progress=lambda _line: None)
            produced_s = time.time() - began
            deadline = time.time() + args.drain_seconds
            while time.time() < deadline and not failure:  # the last markers' alerts
                got = measure(spark, cfg, rate, began, markers, receiver.posts, silver_version,
                              spc_version)
                if got["marker_to_webhook"]["n"] >= len(markers):
                    break
                time.sleep(10)
            if failure:
                raise failure[0]
            got = measure(spark, cfg, rate, began, markers, receiver.posts, silver_version,
                              spc_version)
            got.update(produced=report.total, achieved_rate=round(report.total / produced_s))
            results["rates"].append(got)
            log(f"  silver {got['silver']}; spc_points {got['marker_to_spc_points']}; "
                f"webhook {got['marker_to_webhook']}")
    finally:
        stop.set()
        if worker is not None:
            worker.join(180)
        if spark is not None:
            spark.stop()
        broker.stop(progress=log)
        receiver.server.shutdown()
        if not args.keep:
            shutil.rmtree(home, ignore_errors=True)
    results["load_average_end"] = list(os.getloadavg())
    print()
    print(f"{'rate/s':>8} {'achieved':>9} {'silver p50':>11} {'p95':>6} {'p99':>6} "
          f"{'gold p50':>9} {'p95':>6} {'webhook p50':>12} {'p95':>6} {'markers':>8}")
    for r in results["rates"]:
        s, g, w = r["silver"], r["marker_to_spc_points"], r["marker_to_webhook"]
        print(f"{r['rate']:>8,.0f} {r['achieved_rate']:>9,} {s['p50_s']:>11} {s['p95_s']:>6} "
              f"{s['p99_s']:>6} {g.get('p50_s', '-'):>9} {g.get('p95_s', '-'):>6} "
              f"{w.get('p50_s', '-'):>12} {w.get('p95_s', '-'):>6} "
              f"{w['n']:>3}/{r['markers']:<4}")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(results, indent=2))
    print(f"results in {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
