"""The `redline` command: services, simulation, ingest, jobs, quality, ML, dashboards, SQL.

The CLI is the entry point: it loads the configuration, builds the one SparkSession when
a command needs Spark, and passes both down. Nothing imports this module.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import warnings
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from redline import config as config_mod
from redline import state
from redline.errors import RedlineError


def _session(cfg, name: str):
    from redline.spark import build_session

    print(f"starting Spark ({cfg.spark.conf_file}) ...", file=sys.stderr, flush=True)
    return build_session(cfg, app_name=f"redline-{name}")


def _thrift_refresh(cfg, spark) -> None:
    """Make freshly written tables visible to BI tools when the Thrift Server runs."""
    from redline import catalog
    from redline.services.thrift import ThriftServer

    server = ThriftServer(cfg)
    if not (server.running() and server.check()):
        return
    if not server.reads(cfg.lake_root):
        print(server.unread_note(cfg.lake_root), file=sys.stderr)
        return
    tables = [t for t in catalog.TABLES.values() if catalog.exists(spark, cfg.lake_root, t)]
    server.register_tables(cfg.lake_root, tables)
    print(f"registered {len(tables)} tables in the Spark Thrift Server")


# -- services ------------------------------------------------------------------------------
def cmd_up(cfg, args) -> int:
    from redline import state
    from redline.services import NAMES, managed, start_all

    opened = state.tighten(cfg.home)
    if opened:
        print(f"made {opened} paths under {cfg.home} private to their owner (they were "
              f"readable by others)", file=sys.stderr)
    start_all(managed(cfg, _service_names(args.services) or NAMES))
    return 0


def cmd_down(cfg, args) -> int:
    from redline.services import NAMES, managed, running_optional

    names = _service_names(args.services)
    services = managed(cfg, names) if names else [*managed(cfg, NAMES),
                                                  *running_optional(cfg)]
    for svc in reversed(services):
        svc.stop()
    return 0


def cmd_status(cfg, args) -> int:
    from redline.services import managed, running_optional

    rows = [svc.health().as_dict() for svc in [*managed(cfg), *running_optional(cfg)]]
    if args.json:
        print(json.dumps({"profile": cfg.profile, "home": str(cfg.home), "services": rows},
                         indent=2))
    else:
        for r in rows:
            state = "healthy" if r["healthy"] else f"DOWN ({r['detail']})"
            rss = f"{r['rss_bytes'] / 2**20:,.0f} MiB" if r["rss_bytes"] else ""
            print(f"{r['name']:<15} {state:<28} {r['address']:<18} {rss:>10}  {r['version']}")
            for stage, v in (r.get("stages") or {}).items():
                when = "never" if v["ago_s"] is None else \
                    f"{v['ago_s']:.0f}s ago, took {v['seconds']:.1f}s"
                print(f"{'':<15} {stage:<7} {v['result']} ({when}; {v['runs']} runs) "
                      f"{v['detail']}"[:160])
    return 0 if all(r["healthy"] for r in rows) else 1


def cmd_credentials(cfg, args) -> int:
    from redline.credentials import all_credentials

    rows = [c.as_dict(cfg) for c in all_credentials(cfg)]
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    for r in rows:
        where = r["file"] if r["exists"] else f"{r['file']} (made by `redline up`)"
        print(f"{r['service']:<13} {r['user']:<10} {where}")
        print(f"{'':<24} {r['use']}")
    print("the files hold the passwords (mode 0600); redline never prints them")
    return 0


def cmd_config(cfg, args) -> int:
    print(f"profile {cfg.profile} from {config_mod.config_path()}; state folder {cfg.home}")
    print(f"lake root {cfg.lake_root}; kafka {cfg.kafka.servers}; mlflow {cfg.mlflow.uri}")
    print("\nsettings (environment variable, type, default, meaning):")
    for var, typ, default, doc in config_mod.describe():
        print(f"  {var:<36} {typ:<5} {default!r:<28} {doc}")
    print(f"\nanalysis settings in force ([{cfg.profile}.analysis]: SPC, capability, "
          f"attribution):")
    for line in cfg.analysis.in_force():
        print(f"  {line}")
    return 0


# -- data ------------------------------------------------------------------------------------
def cmd_simulate(cfg, args) -> int:
    from redline.streaming.producer import simulate

    simulate(cfg, args.vehicles, args.days, args.seed, args.rate,
             units_per_line_day=args.units_per_line_day)
    return 0


_LIVE_EVERY_S = 30.0
_live_last = [0.0]


def _live(line: str) -> None:
    """A status line rewritten in place on a terminal; in a log, one line every 30 s."""
    if sys.stdout.isatty():
        sys.stdout.write("\r" + line[:160].ljust(160))
        sys.stdout.flush()
    elif time.monotonic() - _live_last[0] >= _LIVE_EVERY_S:
        _live_last[0] = time.monotonic()
        print(f"{datetime.now(UTC):%H:%M:%S} {line}", flush=True)


def cmd_replay(cfg, args) -> int:
    from redline.streaming.replay import dataset, replay

    ds = dataset(args.dataset)
    files = args.files or list(ds.files)
    print(f"replaying {args.dataset} ({', '.join(files)}) from {cfg.replay.datasets_dir} "
          f"-> {cfg.kafka.servers} at {'max' if args.rate <= 0 else args.rate} events/s")
    report = replay(cfg, args.dataset, files, rate=args.rate, limit=args.limit)
    print(report.summary())
    print(f"next: `redline ingest --available-now --topics {ds.topic}` "
          f"(bronze.{ds.topic} -> silver.{ds.topic})")
    return 0


def cmd_ingest(cfg, args) -> int:
    import signal
    import threading

    from redline import catalog
    from redline.schemas.payloads import PAYLOADS
    from redline.streaming.ingest import run
    from redline.streaming.producer import ensure_topics

    topics = catalog.require_topics(args.topics or list(PAYLOADS))
    if args.action == "status":
        from redline.query import open_reader
        from redline.streaming import status

        # Kafka offsets from the broker; the lake through the Thrift Server when it runs.
        with open_reader(cfg, "ingest-status", verbose=args.verbose) as reader:
            rows = status.status_sql(reader, cfg, cfg.lake_root, topics)
        print(status.as_json(rows) if args.json else status.render(rows))
        return 1 if any(r.data_loss for r in rows) else 0
    ensure_topics(cfg)
    spark = _session(cfg, "ingest")
    stop = threading.Event()

    def on_signal(signum, _frame):
        print(f"\nredline: {signal.Signals(signum).name}, stopping the queries ...",
              file=sys.stderr, flush=True)
        stop.set()

    # SIGTERM/SIGINT only set a flag: the loop stops every query and releases its
    # checkpoint lock, so a stop never leaves a half-written batch behind.
    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        rows = run(spark, cfg, cfg.lake_root, topics, available_now=args.available_now,
                   progress=_live, stop=stop)
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
    print("\ningested: " + "; ".join(
        f"{t}: " + ", ".join(f"{k}={n:,}" for k, n in r.items()) for t, r in rows.items()))
    _thrift_refresh(cfg, spark)
    return 0


def cmd_pipeline(cfg, args) -> int:
    """The continuous pipeline in the foreground (what `redline up pipeline` runs)."""
    import signal
    import threading
    from pathlib import Path

    from redline import continuous
    from redline.schemas.payloads import PAYLOADS
    from redline.services.pipeline import PipelineService
    from redline.spark import build_session
    from redline.streaming.producer import ensure_topics

    status_file = (Path(args.status_file) if args.status_file
                   else PipelineService(cfg).status_file)
    status_file.parent.mkdir(parents=True, exist_ok=True)
    ensure_topics(cfg)
    print(f"starting Spark ({cfg.spark.conf_file}) ...", flush=True)
    spark = build_session(cfg, app_name="redline-pipeline",
                          driver_java_options=continuous.DRIVER_JAVA_OPTIONS)
    stop = threading.Event()

    def on_signal(signum, _frame):
        print(f"redline pipeline: {signal.Signals(signum).name}, stopping ...", flush=True)
        stop.set()

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        continuous.run(spark, cfg, status_file, stop, list(PAYLOADS), log=_live_log)
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
    print("redline pipeline: stopped", flush=True)
    return 0


def _live_log(line: str) -> None:
    import time as _time

    print(f"{_time.strftime('%Y-%m-%d %H:%M:%S')} {line}", flush=True)


def cmd_quarantine(cfg, args) -> int:
    from redline.streaming import quarantine

    if args.table:
        quarantine.topic_of(args.table)  # checked before Spark or the Thrift Server start

    if args.action == "list":
        from redline.query import open_reader

        with open_reader(cfg, "quarantine", verbose=args.verbose) as reader:
            rows = quarantine.list_rows_sql(reader, args.table, args.limit)
        if args.json:
            print(json.dumps(rows, default=str))
        else:
            for r in rows:
                print(f"{r['source_table']:<26} {r['kafka_partition']:>3}:{r['kafka_offset']:<10} "
                      f"{r['reason_code']:<24} {r['reason'][:80]}")
            print(f"{len(rows)} quarantined record(s) shown (limit {args.limit})")
        return 0
    spark = _session(cfg, "quarantine")
    result = quarantine.replay(spark, cfg.lake_root, args.table)
    for topic, r in result.items():
        print(f"{topic}: {r['replayed']} re-parsed, {r['landed']} landed in silver, "
              f"{r['duplicates']} already there, {r['still_bad']} still quarantined")
    _thrift_refresh(cfg, spark)
    return 0


def cmd_lake(cfg, args) -> int:
    from redline import catalog, lake

    wanted = args.tables or list(catalog.TABLES)
    unknown = [n for n in wanted if n not in catalog.TABLES]
    if unknown:
        raise RedlineError("TABLE_UNKNOWN", f"no table {', '.join(unknown)} in the catalog; "
                                            f"tables: {', '.join(catalog.TABLES)}")
    spark = _session(cfg, "lake")
    tables = [catalog.TABLES[n] for n in wanted
              if catalog.exists(spark, cfg.lake_root, catalog.TABLES[n])]
    print(f"compacting {len(tables)} table(s) under {cfg.lake_root} ...", flush=True)
    for i, table in enumerate(tables, 1):
        r = lake.compact(spark, cfg.lake_root, table)
        print(f"[{i}/{len(tables)}] {table.qualified_name:<32} files {r['files_before']:>7,} "
              f"-> {r['files_after']:>5,}  ({r['seconds']} s)", flush=True)
    return 0


def cmd_jobs(cfg, args) -> int:
    from redline import pipeline
    from redline.jobs.runner import strategy

    if args.action == "list":
        every = pipeline.steps()
        rows = [{"name": s.name, "description": s.description,
                 "inputs": [t.qualified_name for t in s.inputs],
                 "outputs": [t.qualified_name for t in s.outputs],
                 "after": [d.name for d in pipeline.upstream(s, every)],
                 "incremental": strategy(s.job) if s.job else "new bronze rows (stream)",
                 "in_all": s.in_all} for s in every.values()]
        if args.json:
            print(json.dumps(rows, indent=2))
            return 0
        for r in rows:
            after = f" (after {', '.join(r['after'])})" if r["after"] else ""
            print(f"{r['name']:<28} {r['description']}{after}\n{'':<28} incremental: "
                  f"{r['incremental']}")
        return 0
    if args.alone and _alone_all_waiting(cfg, args.names):
        return JOBS_SKIPPED
    spark = _session(cfg, "jobs")
    results = pipeline.run_jobs(spark, cfg.lake_root, args.names or ["all"], full=args.full,
                                ingest=cfg.ingest, audit=_audit(cfg), analysis=cfg.analysis,
                                alone=args.alone, progress=_progress(args))
    _thrift_refresh(cfg, spark)
    from redline.dashboards import alerts

    # Out-of-control episodes the run found reach people now, not at the next `alerts`.
    if alerts.webhook_configured(cfg):
        alerts.post_new(spark, cfg, progress=print)
    if args.alone and all("skipped" in r for r in results.values()):
        return JOBS_SKIPPED
    return 0


JOBS_SKIPPED = 3
"""Exit status of `jobs run --alone` when every step named was skipped (an input has no
data yet): a scheduler shows the task skipped, not failed or done."""


def _alone_all_waiting(cfg, names: list[str]) -> bool:
    """``--alone``: True when each named step has an input with no data yet, seen in a local
    lake without starting Spark (on an object store Spark looks, in ``run_jobs``)."""
    from redline import pipeline
    from redline.query import in_lake

    if not names or set(names) & set(pipeline.GROUPS):
        raise RedlineError("JOB_ALONE", f"--alone runs the steps named, without the steps "
                                        f"writing their inputs: name steps (`redline jobs "
                                        f"list`), not {', '.join(pipeline.GROUPS)}")
    waiting = {}
    for step in pipeline.plan(names, alone=True):
        found = {t.qualified_name: in_lake(cfg.lake_root, t) for t in step.inputs}
        if any(v is None for v in found.values()):
            return False
        waiting[step.name] = [n for n, present in found.items() if not present]
    if not all(waiting.values()):
        return False
    for name, absent in waiting.items():
        print(f"{name}: skipped, {', '.join(absent)} {'has' if len(absent) == 1 else 'have'} "
              f"no data yet")
    return True


def cmd_quality(cfg, args) -> int:
    from redline.quality.gate import run_gate
    from redline.quality.suites import freshness_limits

    freshness = freshness_limits(cfg.quality.freshness_hours)
    spark = _session(cfg, "quality")
    say = (lambda line: print(line, file=sys.stderr, flush=True)) if args.json else print
    gate = run_gate(spark, cfg.lake_root, cfg.home / "reports" / "quality", args.tables,
                    progress=say, as_of=args.as_of, freshness=freshness,
                    docs_root=cfg.home / "quality")
    if args.junit:
        Path(args.junit).parent.mkdir(parents=True, exist_ok=True)
        Path(args.junit).write_text(gate.junit_xml())
        say(f"JUnit report: {args.junit}")
    if args.json:
        print(json.dumps(gate.as_json(), default=str))
    else:
        print(gate.table_rows())
        print(gate.summary())
    return gate.exit_code


def _audit(cfg):
    """The write-audit-publish check of gold jobs, when the configuration turns it on."""
    if not cfg.quality.audit_gold:
        return None
    from redline.quality.gate import auditor
    from redline.quality.suites import freshness_limits

    return auditor(cfg.home / "reports" / "quality", freshness_limits(cfg.quality.freshness_hours))


def _progress(args):
    """Progress lines: stdout normally, stderr under ``--json`` (stdout is the JSON)."""
    out = sys.stderr if getattr(args, "json", False) else sys.stdout
    return lambda line: print(line, file=out, flush=True)


def _emit(args, value, text: str) -> None:
    print(json.dumps(value, default=str, indent=2) if args.json else text)


def cmd_ml(cfg, args) -> int:
    from redline.ml import run, tasks

    progress = _progress(args)
    if args.action == "review-queue":
        return _review_queue(cfg, args)
    if args.action in ("predict", "evaluate"):
        return _cmapss_files(cfg, args, progress)
    # A wrong task or subset fails before Spark starts.
    if args.action == "score":
        for name in args.tasks:
            tasks.get(name)
    else:
        tasks.get(args.task).subset(args.subset)
    spark = _session(cfg, "ml")
    if args.action == "train":
        result = run.train(spark, cfg, args.task, args.subset, progress)
        _emit(args, result.as_dict(),
              f"trained {result.model_name} version {result.version} (run {result.run_id}, "
              f"{result.seconds}s), alias challenger; `redline ml promote {args.task}"
              f"{' --subset ' + args.subset if args.subset else ''}` to make it champion")
        return 0
    if args.action == "promote":
        decision = run.promote(spark, cfg, args.task, args.subset, progress)
        _emit(args, decision.as_dict(),
              ("promoted: " if decision.promoted else "not promoted: ") + decision.reason)
        return 0 if decision.promoted else 3
    results = run.score(spark, cfg, args.tasks, progress)
    _thrift_refresh(cfg, spark)
    _emit(args, results, "scored: " + "; ".join(f"{k}: {v}" for k, v in results.items()))
    return 0


def _review_queue(cfg, args) -> int:
    from redline import catalog
    from redline.query import open_reader, render

    if args.top < 1:
        raise RedlineError("ML_TOP", f"--top must be at least 1, got {args.top}")
    with open_reader(cfg, "ml", verbose=args.verbose) as reader:
        if not reader.prepare([catalog.REVIEW_QUEUE]):
            raise RedlineError("TABLE_EMPTY", "gold.review_queue has no data yet: train and "
                                              "promote a model, then `redline ml score`")
        result = reader.query("SELECT * FROM gold.review_queue ORDER BY rank", limit=args.top)
    _emit(args, result.rows, render(result))
    return 0


def _cmapss_files(cfg, args, progress) -> int:
    from redline.ml import cmapss_task
    from redline.ml.tasks import CMAPSS

    CMAPSS.subset(args.subset)
    spark = _session(cfg, "ml")
    if args.action == "predict":
        if not args.out:
            raise RedlineError("ML_ARGS", "ml predict needs --out PATH (a CSV: unit,rul_pred)")
        written = cmapss_task.predict_file(spark, cfg, args.subset, Path(args.out),
                                           args.alias, progress)
        _emit(args, written, f"wrote {written['rows']} test engines to {written['path']} "
                             f"({written['model_name']} v{written['model_version']})")
        return 0
    if not args.labels:
        raise RedlineError("ML_ARGS", "ml evaluate needs --labels PATH (RUL_FD00x.txt: the "
                                      "true RUL of each test engine, one per line)")
    result = cmapss_task.evaluate_file(spark, cfg, args.subset, Path(args.labels),
                                       args.alias, progress)
    _emit(args, result, f"{args.subset}: RMSE {result['rmse']:.2f}, PHM08 score "
                        f"{result['phm08_score']:.1f} over {result['engines']} test engines "
                        f"({result['model_name']} v{result['model_version']})")
    return 0


def cmd_dashboards(cfg, args) -> int:
    from redline.dashboards import deploy as dashboards

    if args.action == "list":
        found = {slug: {"title": title, "url": dashboards.dashboard_url(cfg, slug)}
                 for slug, title in dashboards.known_dashboards().items()}
        _emit(args, found, "\n".join(f"{slug:24} {d['title']:24} {d['url']}"
                                     for slug, d in found.items()))
        return 0
    if args.action == "screenshot":
        from redline.dashboards.screenshot import capture

        known = dashboards.known_dashboards()
        slug = args.dashboard or ""
        by_title = {title.lower(): s for s, title in known.items()}
        slug = slug if slug in known else by_title.get(slug.lower(), "")
        if not slug:
            raise RedlineError("DASHBOARD_UNKNOWN",
                               f"--dashboard {args.dashboard!r} is not a dashboard; known: "
                               f"{', '.join(known)} (`redline dashboards list`)")
        if not args.out:
            raise RedlineError("SCREENSHOT_OUT", "give the report file: --out FILE.png|.pdf")
        say = (lambda m: print(m, file=sys.stderr, flush=True)) if args.json else print
        say(f"rendering {known[slug]} to {args.out} (waits until every chart drew) ...")
        state = capture(cfg, dashboards.dashboard_url(cfg, slug), Path(args.out))
        _emit(args, {"dashboard": slug, "out": args.out, "charts": state.charts,
                     "empty_charts": state.empty, "seconds": round(state.seconds, 2)},
              f"{args.out}: {state.charts} charts ({len(state.empty)} without data yet), "
              f"drawn in {state.seconds:.1f}s")
        return 0
    say = (lambda m: print(m, file=sys.stderr, flush=True)) if args.json else print
    if args.action == "refresh":
        from redline.dashboards import refresh

        # None on an object store, which the Thrift Server does not read: nothing to list.
        tables = refresh.lake_tables(cfg.lake_root) or []
        done = refresh.refresh(cfg, tables, progress=say)
        if args.json:
            print(json.dumps(done, indent=2))
        return 0
    deployed = dashboards.deploy(cfg, progress=say)
    if args.json:
        print(dashboards.describe(deployed))
    return 0


def cmd_sql(cfg, args) -> int:
    from redline import catalog
    from redline.query import open_reader, render

    # Through the running Thrift Server (about a second), else a local Spark session.
    with open_reader(cfg, "sql", verbose=args.verbose) as reader:
        reader.prepare(catalog.TABLES.values())
        result = reader.query(args.query, limit=args.limit)
    if args.json:
        print(json.dumps(result.rows, default=str))
    else:
        print(render(result))
    return 0


def cmd_demo(cfg, args) -> int:
    from redline.demo import run_demo

    return run_demo(cfg, vehicles=args.vehicles, days=args.days, seed=args.seed,
                    units_per_line_day=args.units_per_line_day)


def _units_option(parser) -> None:
    from redline.streaming.simulator import FACTORY_UNITS_PER_LINE_DAY

    parser.add_argument("--units-per-line-day", type=_at_least(0),
                        default=FACTORY_UNITS_PER_LINE_DAY,
                        help="units each line builds a day in the first half of the period, "
                             "the fleet's vehicles included (0: the fleet only)")


def _at_least(lowest: float, kind: type = int):
    """An argparse type: a number of ``kind`` no smaller than ``lowest``."""
    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
        if value < lowest:
            raise argparse.ArgumentTypeError(f"must be at least {lowest}, got {text}")
        return value
    return parse


class _Parser(argparse.ArgumentParser):
    """argparse with redline's error line: usage, then ``redline: error [USAGE] ...``."""

    def error(self, message: str):
        self.print_usage(sys.stderr)
        print(f"redline: error [USAGE] {self.prog}: {message}", file=sys.stderr)
        sys.exit(2)


def _service_names(values: list[str]) -> list[str]:
    from redline.services import NAMES, OPTIONAL

    unknown = [v for v in values if v not in NAMES + OPTIONAL]
    if unknown:
        raise RedlineError("SERVICE_UNKNOWN", f"no service {', '.join(map(repr, unknown))}; "
                                              f"the services are {', '.join(NAMES)}, and "
                                              f"{', '.join(OPTIONAL)} when named")
    return values


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="redline", description=__doc__.splitlines()[0])
    p.add_argument("--profile", help="profile of redline.toml (default: REDLINE_PROFILE "
                                     "or 'local')")
    verbose = "say on stderr how a command reads the lake (Thrift Server or local Spark)"
    p.add_argument("--verbose", action="store_true", help=verbose)
    sub = p.add_subparsers(dest="command", required=True)

    s = sub.add_parser("up", help="start the local services (kafka, mlflow, spark-thrift, "
                                  "superset; spark-cluster when named)")
    s.add_argument("services", nargs="*")
    s.set_defaults(fn=cmd_up)
    s = sub.add_parser("down", help="stop the local services")
    s.add_argument("services", nargs="*")
    s.set_defaults(fn=cmd_down)
    s = sub.add_parser("credentials", help="each generated user of the services and the "
                                           "file (0600) holding its password")
    s.add_argument("--json", action="store_true")
    s.set_defaults(fn=cmd_credentials)
    s = sub.add_parser("status", help="health and version of every service")
    s.add_argument("--json", action="store_true")
    s.set_defaults(fn=cmd_status)
    s = sub.add_parser("config", help="show the active configuration and every setting")
    s.set_defaults(fn=cmd_config)

    s = sub.add_parser("simulate", help="produce simulated fleet and factory events to Kafka")
    s.add_argument("--vehicles", type=_at_least(1), default=200)
    s.add_argument("--days", type=_at_least(2), default=60)
    s.add_argument("--seed", type=int, default=7)
    s.add_argument("--rate", type=_at_least(0, float), default=0.0,
                   help="events/s, 0 = as fast as possible")
    _units_option(s)
    s.set_defaults(fn=cmd_simulate)

    s = sub.add_parser("pipeline", help="the continuous pipeline in the foreground: "
                                        "ingest, gold, alerts (`redline up pipeline` runs "
                                        "it as a service)")
    s.add_argument("action", choices=["run"])
    s.add_argument("--status-file", help="where to keep its status (default: "
                                         "<home>/services/pipeline/status.json)")
    s.set_defaults(fn=cmd_pipeline)

    s = sub.add_parser("ingest", help="stream Kafka topics into bronze, then silver and "
                                      "quarantine (Delta); `ingest status`: lag and batches")
    s.add_argument("action", nargs="?", choices=["run", "status"], default="run",
                   help="run (default): ingest; status: per topic Kafka lag, last batch, "
                        "rows/s, quarantine counts")
    s.add_argument("--json", action="store_true", help="status: print JSON")
    s.add_argument("--available-now", action="store_true",
                   help="ingest what is in Kafka now, then stop (default: run continuously)")
    s.add_argument("--topics", nargs="*", help="logical topic names (default: all)")
    s.set_defaults(fn=cmd_ingest)

    s = sub.add_parser("replay", help="publish a public data set (C-MAPSS, AI4I 2020) to "
                                      "Kafka in source order")
    s.add_argument("dataset", choices=["cmapss", "ai4i"])
    s.add_argument("--files", nargs="*", help="files without suffix, e.g. train_FD001 "
                                              "(default: all of the data set)")
    s.add_argument("--rate", type=_at_least(0, float), default=0.0,
                   help="events/s, 0 = as fast as possible")
    s.add_argument("--limit", type=_at_least(1), help="stop after this many events")
    s.set_defaults(fn=cmd_replay)

    s = sub.add_parser("quarantine", help="records that failed parsing, the schema or a rule")
    s.add_argument("action", choices=["list", "replay"],
                   help="list: show quarantined records; replay: re-parse them after a fix")
    s.add_argument("--table", help="topic or table (e.g. station_results or "
                                   "bronze.station_results; default: all)")
    s.add_argument("--limit", type=_at_least(1), default=50,
                   help="list: at most this many rows")
    s.add_argument("--json", action="store_true", help="list: print rows as a JSON array")
    s.set_defaults(fn=cmd_quarantine)

    s = sub.add_parser("lake", help="lake maintenance: compact the small files streams write")
    s.add_argument("action", choices=["compact"],
                   help="compact: rewrite small files into large ones (Delta OPTIMIZE); "
                        "safe while ingest runs")
    s.add_argument("tables", nargs="*", help="qualified table names (default: every table)")
    s.set_defaults(fn=cmd_lake)

    s = sub.add_parser("jobs", help="batch jobs: bronze -> silver -> gold")
    s.add_argument("action", choices=["run", "list"])
    s.add_argument("names", nargs="*", help="job names, or 'all' (default), 'silver', "
                                            "'gold'")
    s.add_argument("--full", action="store_true",
                   help="rebuild gold tables from all of silver instead of only new rows")
    s.add_argument("--json", action="store_true", help="list: print the jobs as JSON")
    s.add_argument("--alone", action="store_true",
                   help="run: only the steps named, not the steps writing their inputs (a "
                        "scheduler runs those as tasks of their own); a step whose inputs "
                        "have no data yet is skipped, and when all are: exit 3")
    s.set_defaults(fn=cmd_jobs)

    s = sub.add_parser("quality", help="data-quality gate over every table: exit 0 passed, "
                                       "1 failed, 2 could not run (a table missing)")
    s.add_argument("action", choices=["gate"])
    s.add_argument("--tables", nargs="*", help="qualified table names (default: every table "
                                               "of the catalog)")
    s.add_argument("--as-of", type=_at_least(0), metavar="VERSION",
                   help="validate this Delta version of the one table named by --tables")
    s.add_argument("--json", action="store_true", help="print the results as JSON")
    s.add_argument("--junit", metavar="PATH", help="also write a JUnit XML report here")
    s.set_defaults(fn=cmd_quality)

    s = sub.add_parser("ml", help="risk models: train, promote, score, predict, evaluate, "
                                  "review queue")
    ml = s.add_subparsers(dest="action", required=True)
    tasks = ["vehicle", "cmapss", "ai4i"]
    for action, text in (("train", "train a model; it becomes the challenger"),
                         ("promote", "make the challenger champion if it beats the "
                                     "champion on held-out data (exit 3 when it does not)")):
        a = ml.add_parser(action, help=text)
        a.add_argument("task", choices=tasks)
        a.add_argument("--subset", help="C-MAPSS data set: FD001, FD002, FD003 or FD004")
    a = ml.add_parser("score", help="score with every champion (or the tasks named) and "
                                    "rebuild the review queue and drift")
    a.add_argument("tasks", nargs="*", metavar="task", help=f"any of {', '.join(tasks)}")
    a = ml.add_parser("predict", help="one predicted RUL per C-MAPSS test engine, to CSV")
    a.add_argument("task", choices=["cmapss"])
    a.add_argument("--subset", required=True)
    a.add_argument("--out", required=True, metavar="CSV")
    a.add_argument("--alias", default="champion", help="model alias (default champion)")
    a = ml.add_parser("evaluate", help="RMSE and PHM08 score of the C-MAPSS test "
                                       "predictions against a true-RUL file")
    a.add_argument("task", choices=["cmapss"])
    a.add_argument("--subset", required=True)
    a.add_argument("--labels", required=True, metavar="PATH",
                   help="RUL_FD00x.txt: true RUL per test engine, one per line")
    a.add_argument("--alias", default="champion", help="model alias (default champion)")
    a = ml.add_parser("review-queue", help="what a person should look at first: high risk "
                                           "and high model uncertainty")
    a.add_argument("--top", type=_at_least(1), default=20)
    for a in ml.choices.values():
        a.add_argument("--json", action="store_true", help="print the result as JSON "
                                                           "(progress goes to stderr)")
        a.add_argument("--verbose", action="store_true", default=argparse.SUPPRESS)
    s.set_defaults(fn=cmd_ml)

    s = sub.add_parser("dashboards", help="deploy the Superset dashboards kept in "
                                          "dashboards/spec, list them, render one to "
                                          "PNG/PDF, or refresh them after jobs")
    s.add_argument("action", choices=["deploy", "list", "screenshot", "refresh"],
                   help="refresh: register every lake table in the Thrift Server and clear "
                        "Superset's caches, so dashboards show the latest data now")
    s.add_argument("--dashboard", metavar="NAME",
                   help="screenshot: the dashboard's slug or title (see `list`)")
    s.add_argument("--out", metavar="FILE", help="screenshot: FILE.png or FILE.pdf")
    s.add_argument("--json", action="store_true")
    s.set_defaults(fn=cmd_dashboards)

    s = sub.add_parser("sql", help="Spark SQL over the lake tables by catalog name")
    s.add_argument("query")
    s.add_argument("--json", action="store_true", help="print rows as a JSON array")
    s.add_argument("--limit", type=_at_least(1), default=100)
    s.set_defaults(fn=cmd_sql)

    s = sub.add_parser("demo", help="everything end to end on the local default")
    s.add_argument("--vehicles", type=_at_least(1), default=200)
    s.add_argument("--days", type=_at_least(2), default=90,
                   help="days of history (90: room for the failure model's purged split)")
    s.add_argument("--seed", type=int, default=7)
    _units_option(s)
    s.set_defaults(fn=cmd_demo)
    from redline.dashboards.alerts_cli import add_alerts_parser
    from redline.streaming.kafka_cli import add_kafka_parser

    add_alerts_parser(sub)
    add_kafka_parser(sub)
    # `--verbose` after the command too; SUPPRESS keeps a leading one from being reset.
    for s in sub.choices.values():
        s.add_argument("--verbose", action="store_true", default=argparse.SUPPRESS,
                       help=verbose)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    # Progress is redline's own lines; MLflow's download bars would interleave with them.
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    args = build_parser().parse_args(argv)
    # Whatever redline and the services it starts create is private to this user.
    os.umask(state.PRIVATE_UMASK)
    try:
        cfg = config_mod.load(args.profile)
        state.make_private(cfg.home)
        return args.fn(cfg, args)
    except RedlineError as exc:
        print(f"redline: error {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("redline: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `redline ... | head`: the reader left, nothing more to say
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    except Exception as exc:
        if not type(exc).__module__.startswith("mlflow"):
            raise
        # The tracking server answered with an error (a model or run that is not there):
        # its message says what, a traceback would not.
        message = getattr(exc, "message", None) or str(exc)
        print(f"redline: error [MLFLOW] {message.splitlines()[0]}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
