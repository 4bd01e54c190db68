"""Job runs recorded in ``ops.job_runs``: one row per run, succeeded or failed.

Silver drains (``streaming``) and gold jobs (``jobs``) are both recorded here, with the
Delta version of every input before the run and of every output after it.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from redline import catalog, lake
from redline.catalog import Table

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

CONSUMED = "_consumed_versions"
"""Key of a run's result holding the input versions it read (qualified input name ->
version): recorded as the run's inputs, where an incremental job finds its next
watermarks."""


def delta_state(spark: SparkSession, lake_root: str, table: Table
                ) -> tuple[int | None, int | None]:
    """(latest Delta version, rows written by that commit) of ``table``; nulls when it is
    not written yet, or the commit reports no rows."""
    last = lake.last_commit(spark, lake_root, table)
    if last is None:
        return None, None
    version, metrics = last
    rows = metrics.get("numOutputRows")
    return version, (int(rows) if rows is not None else None)


def record(spark: SparkSession, lake_root: str, row: Mapping) -> None:
    """Append one row to ops.job_runs."""
    from redline.schemas.tables import JOB_RUNS

    lake.append(spark.createDataFrame([dict(row)], JOB_RUNS), lake_root, catalog.JOB_RUNS)


def recorded(spark: SparkSession, lake_root: str, job: str, batch_id: str,
             inputs: Sequence[Table], outputs: Sequence[Table],
             run: Callable[[], dict]) -> dict:
    """Call ``run`` and append its ops.job_runs row, whether it succeeds or fails (the
    error propagates after the row is written). A result holding ``CONSUMED`` records
    those input versions instead of the ones seen before the run."""
    started = datetime.now(UTC)
    began = time.monotonic()
    in_versions = [{"table": t.qualified_name,
                    "version": lake.table_version(spark, lake_root, t)} for t in inputs]
    out: dict = {}
    error = None
    try:
        out = run() or {}
        consumed = out.pop(CONSUMED, None) or {}
        in_versions = [{"table": i["table"], "version": consumed.get(i["table"], i["version"])}
                       for i in in_versions]
    except Exception as exc:
        error = f"{type(exc).__name__}: {exc}"[:4000]
        raise
    finally:
        written = [dict(zip(("version", "rows"), delta_state(spark, lake_root, t)),
                        table=t.qualified_name) for t in outputs]
        record(spark, lake_root, {
            "run_id": str(uuid.uuid4()), "batch_id": batch_id, "job": job,
            "started_at": started, "ended_at": datetime.now(UTC),
            "seconds": round(time.monotonic() - began, 3),
            "status": "FAILED" if error else "SUCCEEDED", "error": error,
            "inputs": in_versions, "outputs": written,
            "metrics": {k: str(v) for k, v in out.items()}})
    return out
