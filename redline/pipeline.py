"""`redline jobs`: the silver drains and the gold jobs, ordered by the tables they share.

A step is either a silver drain (``silver_<topic>``: bronze.<topic> -> silver.<topic> and
quarantine, the same exactly-once stream `redline ingest` runs, drained) or a gold job
(``jobs/``, declared once each). The order is derived from their tables: a step runs
after every step that writes one of its inputs. ``streaming`` and ``jobs`` do not know of
each other; this module, above both, joins them.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from redline import catalog, runs
from redline.catalog import Table
from redline.config import AnalysisConfig, IngestConfig
from redline.errors import RedlineError
from redline.jobs import runner
from redline.jobs.declare import GoldJob
from redline.schemas.payloads import DATASET_TOPICS, PAYLOADS
from redline.streaming import silver

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

GROUPS = ("all", "silver", "gold")
"""Names that stand for several steps: every step (``all``: the simulated fleet's and
plants' silver drains, the gold jobs, and the replayed data sets' drains their gold jobs
read), every silver drain, every gold job (on silver as it is). A step a group brings
along is skipped, not failed, while one of its inputs has no data yet (a data set nobody
replayed); a step named explicitly fails then."""


@dataclass(frozen=True)
class Step:
    name: str
    description: str
    inputs: tuple[Table, ...]
    outputs: tuple[Table, ...]
    topic: str | None = None
    """The topic a silver drain processes; None for a gold job."""
    job: GoldJob | None = None
    """The gold job; None for a silver drain."""

    @property
    def in_all(self) -> bool:
        return self.topic not in DATASET_TOPICS


def _silver_step(topic: str) -> Step:
    return Step(f"silver_{topic}",
                f"bronze.{topic} -> silver.{topic} (+ quarantine), incremental",
                (catalog.bronze(topic),), (catalog.silver(topic), catalog.QUARANTINE),
                topic=topic)


def steps() -> dict[str, Step]:
    """Every step by name: the silver drains, then the gold jobs."""
    out = {s.name: s for s in (_silver_step(t) for t in PAYLOADS)}
    for job in runner.JOBS.values():
        out[job.name] = Step(job.name, job.description, job.inputs, job.outputs, job=job)
    return out


def upstream(step: Step, every: dict[str, Step]) -> list[Step]:
    """The steps writing one of ``step``'s inputs."""
    return [s for s in every.values()
            if s is not step and any(t in step.inputs for t in s.outputs)]


def plan(names: Sequence[str], alone: bool = False) -> list[Step]:
    """The steps ``names`` stand for, each after the steps it reads from. A step name
    brings the steps writing its inputs along (unless ``alone``: a scheduler runs those
    as tasks of their own); a group (``silver``, ``gold``) is just its steps, in order
    (``gold`` runs on silver as it is); ``all`` is both."""
    every = steps()
    wanted: list[tuple[str, bool]] = []
    for name in names or ["all"]:
        if name == "all":
            wanted += [(n, True) for n, s in every.items() if s.in_all]
        elif name == "silver":
            wanted += [(n, False) for n, s in every.items() if s.topic is not None]
        elif name == "gold":
            wanted += [(n, False) for n, s in every.items() if s.job is not None]
        elif name in every:
            wanted.append((name, not alone))
        else:
            raise RedlineError("JOB_UNKNOWN", f"no job {name!r}; jobs: {', '.join(every)} "
                                              f"(or {', '.join(GROUPS)})")
    ordered: list[Step] = []
    visiting: set[str] = set()
    chosen = {n for n, _ in wanted}

    def visit(step: Step, closure: bool) -> None:
        if step in ordered:
            return
        if step.name in visiting:
            raise RedlineError("JOB_CYCLE", f"jobs read each other's outputs: "
                                            f"{', '.join(sorted(visiting))}")
        visiting.add(step.name)
        for dep in upstream(step, every):
            if closure or dep.name in chosen:
                visit(dep, closure)
        visiting.discard(step.name)
        ordered.append(step)

    for name, closure in wanted:
        visit(every[name], closure)
    return ordered


def _drain(spark: SparkSession, lake_root: str, topic: str,
           ingest: IngestConfig) -> dict:
    try:
        return silver.drain(spark, lake_root, topic, ingest)
    except RedlineError as exc:
        if exc.code != "CHECKPOINT_IN_USE":
            raise
        # A running `redline ingest` owns this silver stream and keeps it current.
        return {"skipped": "silver stream owned by a running `redline ingest`"}


def run_step(spark: SparkSession, lake_root: str, step: Step, batch_id: str,
             full: bool = False, record: bool = True,
             ingest: IngestConfig | None = None, audit: runner.Audit | None = None,
             analysis: AnalysisConfig | None = None,
             refreshed: Collection[str] = ()) -> dict:
    """Run one step; with ``record`` its ops.job_runs row is appended (a failed run's
    too); a gold job runs with the ``analysis`` settings (default: the defaults) and its
    outputs pass ``audit`` before they stay published, their references checked against
    its inputs and the tables ``refreshed`` earlier in the run."""
    if step.job is not None:
        return runner.run(spark, lake_root, step.job, batch_id, full=full, record=record,
                          audit=audit, settings=analysis, refreshed=refreshed)
    assert step.topic is not None
    settings = ingest or IngestConfig()

    def drain() -> dict:
        return _drain(spark, lake_root, step.topic, settings)

    if not record:
        return drain()
    return runs.recorded(spark, lake_root, step.name, batch_id, step.inputs, step.outputs,
                         drain)


_REPLAY_HINT = {"cmapss_cycles": " (`redline replay cmapss` publishes it)",
                "ai4i_process": " (`redline replay ai4i` publishes it)"}
_PRODUCE_HINT = " (`redline simulate` or a producer publishes it, `redline ingest` lands it)"


def _absent(spark: SparkSession, lake_root: str, step: Step) -> list[str]:
    """Input tables of ``step`` nothing has written yet (a skipped step upstream)."""
    return [t.qualified_name for t in step.inputs if not catalog.exists(spark, lake_root, t)]


def run_jobs(spark: SparkSession, lake_root: str, names: Sequence[str],
             progress: Callable[[str], None] = print, record: bool = True,
             full: bool = False, ingest: IngestConfig | None = None,
             audit: runner.Audit | None = None,
             analysis: AnalysisConfig | None = None, alone: bool = False) -> dict[str, dict]:
    """Run ``names`` (or a group) in dependency order; with ``record`` each run appends a
    row to ops.job_runs (a failed run too, before its error propagates). Gold jobs run
    incrementally by their strategy unless ``full``; their watermarks are the input
    versions of their last recorded successful run, so without ``record`` they rebuild in
    full. Silver drains use ``ingest`` (the configuration's ingest settings) when given,
    else the defaults; gold jobs use ``analysis`` (the configuration's analysis settings)
    when given, else the defaults. With ``audit`` each gold job's outputs are validated
    before they stay published (write-audit-publish, ``jobs/runner.py``). With ``alone``
    the named steps run without the steps writing their inputs, and each is skipped while
    one of its inputs has no data yet, as a step a group brings along is."""
    results = {}
    todo = plan(names, alone)
    named = set() if alone else set(names) - set(GROUPS)
    batch_id = str(uuid.uuid4())
    refreshed: set[str] = set()  # tables written by this run's steps so far
    for i, step in enumerate(todo, 1):
        began = time.monotonic()
        progress(f"[{i}/{len(todo)}] {step.name}: {step.description}")
        absent = [] if step.name in named else _absent(spark, lake_root, step)
        if absent:
            # Brought along by a group with nothing to read yet (a data set nobody
            # replayed, a fleet nobody simulated); a step named explicitly fails instead.
            verb = "has" if len(absent) == 1 else "have"
            results[step.name] = {"skipped": f"{', '.join(absent)} {verb} no data yet"}
            progress(f"[{i}/{len(todo)}] {step.name}: skipped, {results[step.name]['skipped']}"
                     f"{_REPLAY_HINT.get(step.topic, _PRODUCE_HINT) if step.topic else ''}")
            continue
        out = run_step(spark, lake_root, step, batch_id, full, record, ingest, audit,
                       analysis, frozenset(refreshed))
        refreshed.update(t.qualified_name for t in step.outputs)
        out.pop(runs.CONSUMED, None)
        out["seconds"] = round(time.monotonic() - began, 1)
        results[step.name] = out
        progress(f"[{i}/{len(todo)}] {step.name}: done in {out['seconds']}s {out}")
    return results
