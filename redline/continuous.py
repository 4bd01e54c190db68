"""The continuous pipeline: ingest, gold, SPC alerts and the Thrift Server's view of the
lake, kept current by one long-running process with one warm Spark application.

``redline up pipeline`` starts it as a service (``services/pipeline.py``); ``redline
pipeline run`` runs it in the foreground. Two loops share the Spark session:

- **ingest** (a thread): the same continuous bronze and silver queries as `redline
  ingest`, one pair per topic, exactly once through their checkpoints;
- **gold**: every ``pipeline.gold_interval_seconds`` it reads the Delta version of each
  silver table a gold job reads; when one moved (at start: past the versions the jobs'
  watermarks consumed, ``resumed_from``), the gold jobs that read it (and those reading
  what they write: ``affected_jobs``) run, incrementally by their watermarks, audited
  when ``quality.audit_gold``, in two lanes (``Lane``): the SPC job in the main thread,
  with the new out-of-control episodes posted to the alert webhook right after it (when
  one is configured; ``ops.spc_alerts`` keeps each episode posted once), and the other
  jobs in a thread of their own, so an alert never waits behind a capability rebuild.
  The gold tables that changed are registered or refreshed in the Thrift Server. A
  failed lane is recorded and retried after the interval, then twice as long each time
  (at most ``MAX_RETRY_SECONDS``); the jobs' watermarks did not move.

Each loop records what it did in ``status.json`` (``Status``), rewritten whole after
every change, which `redline status` shows. SIGTERM stops both loops between batches and
cycles. An ingest query that fails stops the process (exit 1, the reason in its log): a
poisoned topic is not retried forever in silence.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Callable, Collection, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from redline import catalog, lake
from redline.config import Config
from redline.errors import RedlineError

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

#: How often the ingest loop's progress line goes to the log (it refreshes every second).
LOG_EVERY_SECONDS = 60.0
#: A gold cycle that fails is retried after the interval, then twice as long each time,
#: up to this many seconds (a job that keeps failing does not spin).
MAX_RETRY_SECONDS = 300.0
#: The driver JVM gives memory it no longer uses back to the system while the pipeline
#: idles: G1 runs a collection after this many ms without one and uncommits free heap
#: (JDK 12+, JEP 346). Without it the heap a gold cycle grew stays resident.
DRIVER_JAVA_OPTIONS = "-XX:G1PeriodicGCInterval=30000"


@dataclass
class Stage:
    """What one stage last did: when it began and ended (epoch seconds), how it ended
    (``ok``, ``idle`` or the error), and how many times it ran."""

    began: float | None = None
    ended: float | None = None
    result: str = "not run yet"
    runs: int = 0
    detail: str = ""

    def done(self, began: float, result: str, detail: str = "") -> None:
        self.began, self.ended, self.result, self.detail = began, time.time(), result, detail
        self.runs += 1


@dataclass
class Status:
    """The pipeline's state, as ``status.json`` holds it."""

    pid: int
    started: float
    heartbeat: float
    gold_interval_seconds: float
    ingest: Stage = field(default_factory=Stage)
    spc: Stage = field(default_factory=Stage)
    gold: Stage = field(default_factory=Stage)
    alerts: Stage = field(default_factory=Stage)
    silver_versions: dict[str, int | None] = field(default_factory=dict)

    def write(self, path: Path) -> None:
        """Replace ``path`` with this status in one rename (a reader never sees half)."""
        self.heartbeat = time.time()
        tmp = path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            json.dump(asdict(self), fh)
        os.replace(tmp, path)


def gold_inputs() -> list[catalog.Table]:
    """The silver tables some gold job reads: a new commit in one starts a gold cycle."""
    from redline.jobs.runner import JOBS

    seen = {t.qualified_name: t for job in JOBS.values() for t in job.inputs
            if t.layer == catalog.Layer.SILVER}
    return [seen[name] for name in sorted(seen)]


def gold_outputs() -> list[catalog.Table]:
    from redline.jobs.runner import JOBS

    return sorted({t for job in JOBS.values() for t in job.outputs},
                  key=lambda t: t.qualified_name)


def versions(spark: SparkSession, lake_root: str, tables: Sequence[catalog.Table]
             ) -> dict[str, int | None]:
    return {t.qualified_name: lake.table_version(spark, lake_root, t) for t in tables}


def resumed_from(spark: SparkSession, lake_root: str, inputs: Sequence[catalog.Table]
                 ) -> dict[str, int] | None:
    """Silver table -> the oldest version a gold job reading it has consumed (its
    watermark in ops.job_runs; -1 when such a job never succeeded): where the first cycle
    after a start picks up, so it runs only the jobs that something new is waiting for.
    None when no job ever ran (the first cycle runs them all)."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    from redline.jobs.incremental import MODES
    from redline.jobs.runner import JOBS

    if not catalog.exists(spark, lake_root, catalog.JOB_RUNS):
        return None
    latest = Window.partitionBy("job").orderBy(F.col("ended_at").desc())
    rows = (catalog.read(spark, lake_root, catalog.JOB_RUNS)
            .where((F.col("status") == "SUCCEEDED") & F.col("metrics")["mode"].isin(*MODES)
                   & F.col("job").isin(*JOBS))
            .withColumn("_n", F.row_number().over(latest)).where("_n = 1")
            .select("job", "inputs").collect())
    if not rows:
        return None
    marks = {r.job: {i.table: i.version for i in r.inputs if i.version is not None}
             for r in rows}
    return {t.qualified_name: min(marks.get(name, {}).get(t.qualified_name, -1)
                                  for name, job in JOBS.items() if t in job.inputs)
            for t in inputs}


def affected_jobs(changed: Collection[str] | None) -> list[str]:
    """The gold jobs to run when the tables ``changed`` (qualified names; None: all) have
    new commits: those reading one of them, and those reading what those write."""
    from redline.jobs.runner import JOBS

    if changed is None:
        return sorted(JOBS)
    dirty, chosen = set(changed), set()
    grew = True
    while grew:
        grew = False
        for name, job in JOBS.items():
            if name not in chosen and dirty & {t.qualified_name for t in job.inputs}:
                chosen.add(name)
                dirty |= {t.qualified_name for t in job.outputs}
                grew = True
    return sorted(chosen)


def alert_jobs(names: Sequence[str]) -> tuple[list[str], list[str]]:
    """``names`` split into the jobs writing ``gold.spc_violations`` (run first: the alerts
    wait on them alone) and the others."""
    from redline.jobs.runner import JOBS

    first = [n for n in names if catalog.SPC_VIOLATIONS in JOBS[n].outputs]
    return first, [n for n in names if n not in first]


class Lane:
    """One of the gold loop's two lanes: the jobs writing ``gold.spc_violations``
    (``alerting``) or all the others, with the silver versions they last consumed
    (None: run every job of the lane) and their retry schedule."""

    def __init__(self, name: str, stage: Stage, consumed: dict[str, int] | None,
                 alerting: bool):
        self.name, self.stage, self.alerting = name, stage, alerting
        self.consumed: dict[str, int | None] | None = consumed
        self.failures, self.retry_at = 0, 0.0
        self.jobs_ran = False

    def due(self, now: dict[str, int | None], at: float) -> bool:
        """Whether silver moved past what this lane consumed (and a retry is not waited
        for): then its jobs reading the changed tables run."""
        return now != self.consumed and any(v is not None for v in now.values()) \
            and at >= self.retry_at

    def jobs(self, now: dict[str, int | None]) -> list[str]:
        changed = None if self.consumed is None else {
            name for name, v in now.items() if self.consumed.get(name) != v}
        first, rest = alert_jobs(affected_jobs(changed))
        chosen = first if self.alerting else rest
        self.jobs_ran = bool(chosen)
        return chosen

    def failed(self, interval: float) -> float:
        """Record a failed cycle: the seconds until the next try (doubling, capped)."""
        self.failures += 1
        wait = min(interval * 2 ** (self.failures - 1), MAX_RETRY_SECONDS)
        self.retry_at = time.time() + wait
        return wait


def run_gold(spark: SparkSession, cfg: Config, names: Sequence[str],
             log: Callable[[str], None]) -> list[str]:
    """Run the gold jobs ``names`` (in dependency order, incrementally by their watermarks,
    audited when ``quality.audit_gold``, each skipped while an input has no data) and make
    the gold tables that changed current in the Thrift Server. Returns those tables'
    names; raises the first error (the caller records it and tries again later)."""
    from redline.pipeline import run_jobs
    from redline.quality.gate import auditor
    from redline.quality.suites import freshness_limits
    from redline.services.thrift import ThriftServer

    if not names:
        return []
    root = cfg.lake_root
    outputs = gold_outputs()
    before = versions(spark, root, outputs)
    audit = (auditor(cfg.home / "reports" / "quality",
                     freshness_limits(cfg.quality.freshness_hours))
             if cfg.quality.audit_gold else None)
    run_jobs(spark, root, names, progress=log, ingest=cfg.ingest, audit=audit,
             analysis=cfg.analysis, alone=True)
    after = versions(spark, root, outputs)
    changed = [t for t in outputs if after[t.qualified_name] != before[t.qualified_name]]
    server = ThriftServer(cfg)
    if changed and server.reads(root) and server.running() and server.check():
        server.register_tables(root, changed)
    return [t.qualified_name for t in changed]


def _describe(exc: BaseException) -> str:
    if isinstance(exc, RedlineError):
        return f"[{exc.code}] {exc.message[:500]}"
    return f"{type(exc).__name__}: {str(exc).splitlines()[0][:500] if str(exc) else ''}"


def post_alerts(spark: SparkSession, cfg: Config, log: Callable[[str], None]) -> dict | None:
    """New SPC episodes to the webhook; None when no webhook is configured."""
    from redline.dashboards import alerts

    if not alerts.webhook_configured(cfg):
        return None
    return alerts.post_new(spark, cfg, progress=log)


def run(spark: SparkSession, cfg: Config, status_path: Path, stop: threading.Event,
        topics: Sequence[str], log: Callable[[str], None] = print) -> None:
    """Run ingest and the gold loop until ``stop`` is set or ingest fails (re-raised)."""
    from redline.streaming import ingest

    interval = cfg.pipeline.gold_interval_seconds
    status = Status(pid=os.getpid(), started=time.time(), heartbeat=time.time(),
                    gold_interval_seconds=interval)
    lock = threading.Lock()
    failure: list[BaseException] = []
    last_logged = [0.0]

    def save() -> None:
        with lock:
            status.write(status_path)

    def on_ingest_line(line: str) -> None:
        with lock:
            status.ingest.detail = line
            status.ingest.result = "running"
        now = time.monotonic()
        if now - last_logged[0] >= LOG_EVERY_SECONDS:
            last_logged[0] = now
            log(line)

    def ingest_loop() -> None:
        began = time.time()
        try:
            ingest.run(spark, cfg, cfg.lake_root, topics, available_now=False,
                       progress=on_ingest_line, stop=stop)
            with lock:
                status.ingest.done(began, "stopped")
        except BaseException as exc:  # noqa: BLE001 - re-raised by the main thread
            failure.append(exc)
            with lock:
                status.ingest.done(began, f"failed: {exc}")
            stop.set()

    status.ingest.began = time.time()
    save()
    thread = threading.Thread(target=ingest_loop, name="redline-ingest", daemon=True)
    thread.start()
    inputs = gold_inputs()
    resumed = resumed_from(spark, cfg.lake_root, inputs)
    if resumed is not None:
        log("gold: resuming from the jobs' watermarks: "
            + ", ".join(f"{name} v{v}" for name, v in resumed.items()))
    spc = Lane("spc", status.spc, resumed, alerting=True)
    rest = Lane("gold", status.gold, resumed, alerting=False)
    alerts_due = True  # after the SPC jobs ran, and until the webhook took them

    def post_due() -> None:
        nonlocal alerts_due
        alerts_began = time.time()
        try:
            posted = post_alerts(spark, cfg, log)
            alerts_due = False
            with lock:
                status.alerts.done(
                    alerts_began, "no webhook configured" if posted is None else "ok",
                    "" if posted is None else f"{posted['posted']} posted")
        except Exception as exc:  # noqa: BLE001 - the next interval tries again
            log(f"alerts failed, retried in {interval:.0f}s: {_describe(exc)}")
            with lock:
                status.alerts.done(alerts_began, f"failed: {_describe(exc)}")

    def cycle(lane: Lane, now: dict[str, int | None], began: float) -> bool:
        """Run ``lane``'s jobs for what changed up to ``now``; False when it failed."""
        names = lane.jobs(now)
        try:
            done = run_gold(spark, cfg, names, log)
        except Exception as exc:  # noqa: BLE001 - recorded, retried later
            wait = lane.failed(interval)
            log(f"{lane.name} cycle failed, retried in {wait:.0f}s: {_describe(exc)}")
            with lock:
                lane.stage.done(began, f"failed: {_describe(exc)}")
            return False
        lane.consumed, lane.failures = now, 0
        with lock:
            lane.stage.done(began, "ok", f"{len(names)} jobs, {len(done)} tables changed")
        log(f"{lane.name} cycle: {time.time() - began:.1f}s, changed: "
            f"{', '.join(done) or 'nothing'}")
        return True

    background: threading.Thread | None = None
    try:
        while not stop.is_set():
            began = time.time()
            now = versions(spark, cfg.lake_root, inputs)
            with lock:
                status.silver_versions = now
            # The other gold jobs in a thread of their own: an out-of-control point
            # reaches the webhook after the SPC job alone, never behind a capability
            # rebuild. The SPC lane runs here, its alerts right after it.
            if (background is None or not background.is_alive()) and rest.due(now, began):
                background = threading.Thread(target=cycle, args=(rest, now, began),
                                              name="redline-gold", daemon=True)
                background.start()
            if spc.due(now, began) and cycle(spc, now, began) and spc.jobs_ran:
                alerts_due = True
                post_due()
            if alerts_due and (status.spc.runs or now == spc.consumed):  # SPC is current
                post_due()
            save()
            stop.wait(max(0.0, interval - (time.time() - began)))
    finally:
        stop.set()
        if background is not None:
            background.join(timeout=120)
        thread.join(timeout=120)
        save()
    if failure:
        raise failure[0]
