"""The gold job runner: finds every declared job, reads, writes and records its runs.

Every module of ``jobs/`` that declares a ``JOB`` (a ``GoldJob``, ``jobs/declare.py``)
contributes one job; nothing else lists jobs or their tables. A run reads the job's
inputs through the catalog, hands them to its pure transform, writes the outputs through
``redline.lake`` in the order the transform gives them, and (``record``) appends a row
to ``ops.job_runs``. Jobs run incrementally by their declared strategy unless ``full``.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING

from redline import catalog, lake, runs
from redline.catalog import Table
from redline.config import AnalysisConfig
from redline.errors import RedlineError
from redline.jobs import incremental
from redline.jobs.declare import Full, GoldJob, Inputs, Keyed, Tail

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession


def _discover() -> dict[str, GoldJob]:
    import redline.jobs as package

    found: dict[str, GoldJob] = {}
    writers: dict[Table, str] = {}
    for info in sorted(pkgutil.iter_modules(package.__path__), key=lambda m: m.name):
        job = getattr(importlib.import_module(f"{package.__name__}.{info.name}"), "JOB", None)
        if not isinstance(job, GoldJob):
            continue
        if job.name in found:
            raise RedlineError("JOB_DECLARATION", f"two jobs named {job.name!r}")
        for table in job.outputs:
            if table in writers:
                raise RedlineError("JOB_DECLARATION",
                                   f"{table.qualified_name} is written by {writers[table]} "
                                   f"and {job.name}: one writer per table")
            writers[table] = job.name
        found[job.name] = job
    return found


JOBS: dict[str, GoldJob] = _discover()
"""Every gold job, by name."""


def get(name: str) -> GoldJob:
    try:
        return JOBS[name]
    except KeyError:
        raise RedlineError("JOB_UNKNOWN",
                           f"no gold job {name!r}; jobs: {', '.join(JOBS)}") from None


def strategy(job: GoldJob) -> str:
    """How ``job`` runs incrementally, in a few words."""
    s = job.incremental
    if isinstance(s, Keyed):
        return f"keyed by {', '.join(s.key)}"
    if isinstance(s, Tail):
        return "from each series' first changed point"
    assert isinstance(s, Full)
    return f"full ({s.reason})"


def _read_inputs(spark: SparkSession, lake_root: str, job: GoldJob,
                 settings: AnalysisConfig | None) -> Inputs:
    return Inputs({t: catalog.read(spark, lake_root, t) for t in job.inputs}, settings)


def rebuild(spark: SparkSession, lake_root: str, job: GoldJob,
            settings: AnalysisConfig | None = None) -> dict:
    """Recompute every output of ``job`` from all of its inputs with the analysis
    ``settings`` (default: the defaults) and overwrite it. Returns the rows written per
    output (``rows`` for a single output) and the transform's notes."""
    inputs = _read_inputs(spark, lake_root, job, settings)
    written: dict[Table, DataFrame] = {}
    rows: dict[str, int] = {}
    try:
        for table, df in job.transform(inputs).items():
            if table not in job.outputs:
                raise RedlineError("JOB_OUTPUT_UNDECLARED",
                                   f"{job.name} produced {table.qualified_name}, not one "
                                   f"of its declared outputs")
            frame = df(dict(written)) if callable(df) else df
            lake.overwrite(frame, lake_root, table)
            written[table] = catalog.read(spark, lake_root, table)
            rows[table.name] = runs.delta_state(spark, lake_root, table)[1] or 0
    finally:
        inputs.release()
    missing = [t.qualified_name for t in job.outputs if t not in written]
    if missing:
        raise RedlineError("JOB_OUTPUT_MISSING",
                           f"{job.name} did not produce {', '.join(missing)}")
    counts: dict[str, object] = ({"rows": rows[job.outputs[0].name]}
                                 if len(job.outputs) == 1 else dict(rows))
    return {**counts, **inputs.notes}


Audit = Callable[["SparkSession", str, Sequence[Table], Collection[str]], "str | None"]
"""Validates tables a job just wrote, checking references only against the tables named
last: None when they pass, else what failed."""


def checkable(job: GoldJob, refreshed: Collection[str] = ()) -> frozenset[str]:
    """Tables a reference of ``job``'s outputs is audited against: the job's own inputs and
    outputs and the tables ``refreshed`` earlier in the same run. Another job's table that
    this run did not refresh may lag behind (a dimension not rebuilt yet) for reasons that
    are not this job's; `redline gate` checks every reference."""
    return frozenset({t.qualified_name for t in (*job.inputs, *job.outputs)} | set(refreshed))


def _execute(spark: SparkSession, lake_root: str, job: GoldJob, full: bool,
             audit: Audit | None = None, settings: AnalysisConfig | None = None,
             refreshed: Collection[str] = ()) -> dict:
    def full_run() -> dict:
        return rebuild(spark, lake_root, job, settings)

    if audit is None:
        return incremental.run(spark, lake_root, job, full_run, full=full, settings=settings)
    before = {t: lake.table_version(spark, lake_root, t) for t in job.outputs}
    out = incremental.run(spark, lake_root, job, full_run, full=full, settings=settings)
    if out.get("mode") == "unchanged":
        return out
    problems = audit(spark, lake_root, job.outputs, checkable(job, refreshed))
    if problems:
        undone = unpublish(spark, lake_root, before)
        raise RedlineError("QUALITY_GATE_FAILED",
                           f"{job.name} wrote data that fails the quality gate, so it was "
                           f"not published ({'; '.join(undone)}):\n{problems}")
    out["audit"] = "passed"
    return out


def unpublish(spark: SparkSession, lake_root: str, before: Mapping[Table, int | None]
              ) -> list[str]:
    """Put every table back at its version in ``before`` (Delta RESTORE; a table that did
    not exist is removed): write-audit-publish's undo. Returns what was done."""
    from delta.tables import DeltaTable

    done = []
    for table, version in before.items():
        now = lake.table_version(spark, lake_root, table)
        if now is None or now == version:
            continue
        path = catalog.location(lake_root, table)
        if version is None:
            jvm = spark.sparkContext._jvm
            hpath = jvm.org.apache.hadoop.fs.Path(path)
            hpath.getFileSystem(spark.sparkContext._jsc.hadoopConfiguration()).delete(hpath, True)
            jvm.org.apache.spark.sql.delta.DeltaLog.invalidateCache(spark._jsparkSession, hpath)
            done.append(f"{table.qualified_name} removed (it did not exist before)")
        else:
            DeltaTable.forPath(spark, path).restoreToVersion(version)
            done.append(f"{table.qualified_name} restored to version {version}")
    return done


def run(spark: SparkSession, lake_root: str, job: GoldJob, batch_id: str,
        full: bool = False, record: bool = True, audit: Audit | None = None,
        settings: AnalysisConfig | None = None, refreshed: Collection[str] = ()) -> dict:
    """Run ``job`` (incrementally by its strategy, or in full with ``full``) with the
    analysis ``settings`` (``cfg.analysis``; default: the defaults); with ``record`` its
    ops.job_runs row is appended, a failed run's too. Without ``record`` there are no
    watermarks, so the job rebuilds in full. With ``audit`` (write-audit-publish) the
    outputs are validated after the write; when they fail, every output is restored to its
    version before the run and the run fails (``QUALITY_GATE_FAILED``), so readers keep
    the published version. References are audited against ``checkable(job, refreshed)``:
    ``refreshed`` names the tables written earlier in the same run."""
    if not record:
        out = _execute(spark, lake_root, job, full, audit, settings, refreshed)
        out.pop(runs.CONSUMED, None)
        return out
    return runs.recorded(spark, lake_root, job.name, batch_id, job.inputs, job.outputs,
                         lambda: _execute(spark, lake_root, job, full, audit, settings,
                                          refreshed))


def with_transform(job: GoldJob, transform) -> GoldJob:
    """``job`` with another transform (a test's failing or faulty variant)."""
    return replace(job, transform=transform)


def writers() -> Mapping[Table, GoldJob]:
    """The gold job writing each gold table."""
    return {t: j for j in JOBS.values() for t in j.outputs}
