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
from collections.abc import Mapping
from dataclasses import replace
from typing import TYPE_CHECKING

from redline import catalog, lake, runs
from redline.catalog import Table
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


def _read_inputs(spark: SparkSession, lake_root: str, job: GoldJob) -> Inputs:
    return Inputs({t: catalog.read(spark, lake_root, t) for t in job.inputs})


def rebuild(spark: SparkSession, lake_root: str, job: GoldJob) -> dict:
    """Recompute every output of ``job`` from all of its inputs and overwrite it. Returns
    the rows written per output (``rows`` for a single output) and the transform's
    notes."""
    inputs = _read_inputs(spark, lake_root, job)
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


def _execute(spark: SparkSession, lake_root: str, job: GoldJob, full: bool) -> dict:
    return incremental.run(spark, lake_root, job, lambda: rebuild(spark, lake_root, job),
                           full=full)


def run(spark: SparkSession, lake_root: str, job: GoldJob, batch_id: str,
        full: bool = False, record: bool = True) -> dict:
    """Run ``job`` (incrementally by its strategy, or in full with ``full``); with
    ``record`` its ops.job_runs row is appended, a failed run's too. Without ``record``
    there are no watermarks, so the job rebuilds in full."""
    if not record:
        out = _execute(spark, lake_root, job, full)
        out.pop(runs.CONSUMED, None)
        return out
    return runs.recorded(spark, lake_root, job.name, batch_id, job.inputs, job.outputs,
                         lambda: _execute(spark, lake_root, job, full))


def with_transform(job: GoldJob, transform) -> GoldJob:
    """``job`` with another transform (a test's failing or faulty variant)."""
    return replace(job, transform=transform)


def writers() -> Mapping[Table, GoldJob]:
    """The gold job writing each gold table."""
    return {t: j for j in JOBS.values() for t in j.outputs}
