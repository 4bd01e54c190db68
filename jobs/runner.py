"""Named batch jobs with dependencies, run in dependency order."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Callable, Sequence

from redline.errors import RedlineError
from redline import catalog, lake
from redline.jobs import (
    attribution,
    capability,
    defect_pareto,
    dimensions,
    gold_fpy,
    incremental,
    manufacturing_kpis,
    mtbf,
    reliability,
    spc,
)
from redline.schemas.payloads import DATASET_TOPICS, PAYLOADS

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

    from redline.config import IngestConfig


@dataclass(frozen=True)
class Job:
    name: str
    run: Callable[["SparkSession", str], dict]
    depends_on: tuple[str, ...] = ()
    description: str = ""
    in_all: bool = True
    """Part of ``all``; replayed data sets' jobs are not (their topics stay empty unless
    `redline replay` ran) and are run by name."""
    incremental: "incremental.Spec | None" = None
    """How the job runs incrementally (``jobs/incremental.py``); None: ``run`` every
    time."""
    takes_ingest_config: bool = False
    """``run`` takes the ingest settings as a third argument (the silver streams: record
    size limit, dedupe window)."""


def _silver_job(topic: str) -> Job:
    # The same exactly-once stream `redline ingest` runs, drained (available-now): one
    # code path and one checkpoint for silver, so jobs and ingest never double a record.
    from redline.streaming import silver as silver_stream

    def run(spark: "SparkSession", root: str, ingest: "IngestConfig | None" = None) -> dict:
        settings = {} if ingest is None else {
            "max_record_bytes": ingest.max_record_bytes,
            "dedupe_window_minutes": ingest.dedupe_window_minutes}
        try:
            return silver_stream.run_available_now(spark, root, topic, **settings)
        except RedlineError as exc:
            if exc.code != "CHECKPOINT_IN_USE":
                raise
            # A running `redline ingest` owns this silver stream and keeps it current.
            return {"skipped": "silver stream owned by a running `redline ingest`"}

    return Job(f"silver_{topic}", run,
               description=f"bronze.{topic} -> silver.{topic} (+ quarantine), incremental",
               in_all=topic not in DATASET_TOPICS, takes_ingest_config=True)


def _features(spark: "SparkSession", root: str) -> dict:
    from redline.ml import train

    return train.build_features(spark, root)


JOBS: dict[str, Job] = {j.name: j for j in [
    *[_silver_job(t) for t in PAYLOADS],
    Job("gold_first_pass_yield", gold_fpy.run, ("silver_station_results",),
        "silver.station_results -> gold.first_pass_yield"),
    Job("gold_vehicle_features", _features,
        ("silver_vehicle_builds", "silver_vehicle_telemetry", "silver_vehicle_dtc",
         "silver_warranty_claims"),
        "silver vehicle tables -> gold.vehicle_features (ML features and labels)"),
    Job("gold_spc", spc.run, ("silver_station_results",),
        "silver.station_results -> gold.spc_points, gold.spc_violations"),
    Job("gold_capability", capability.run, ("silver_station_results",),
        "silver.station_results -> gold.capability"),
    Job("gold_reliability", reliability.run,
        ("silver_vehicle_builds", "silver_warranty_claims", "silver_vehicle_dtc"),
        "silver builds, claims, DTCs -> gold.weibull_fits, gold.dtc_rates, "
        "gold.warranty_triangle"),
    Job("gold_mtbf", mtbf.run, ("silver_vehicle_builds", "silver_warranty_claims"),
        "silver builds, claims -> gold.mtbf (MTBF, failure rates, chi-square bounds)"),
    Job("gold_defect_pareto", defect_pareto.run,
        ("silver_station_results", "silver_vehicle_builds"),
        "silver.station_results + vehicle_builds -> gold.defect_pareto"),
    Job("gold_manufacturing_kpis", manufacturing_kpis.run, ("silver_station_results",),
        "silver.station_results -> gold.station_kpis, gold.line_kpis"),
    Job("gold_kpi_attribution", attribution.run,
        ("silver_station_results", "silver_vehicle_builds"),
        "silver.station_results + vehicle_builds -> gold.kpi_attribution "
        "(FPY, last 7 days against the 7 before)"),
    Job("gold_dimensions", dimensions.run,
        ("silver_station_results", "silver_vehicle_builds", "silver_vehicle_dtc"),
        "silver -> gold.dim_vehicle, dim_station, dim_supplier_lot, dim_vehicle_firmware"),
]}

# Gold jobs run incrementally by their spec; a job without one is rebuilt on every run.
JOBS = {n: replace(j, incremental=incremental.SPECS.get(n)) for n, j in JOBS.items()}

#: The tables each gold job reads and writes (silver jobs: see ``io_of``), recorded in
#: ops.job_runs with their Delta versions.
_GOLD_IO: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "gold_first_pass_yield": (("silver.station_results",), ("gold.first_pass_yield",)),
    "gold_vehicle_features": (("silver.vehicle_builds", "silver.vehicle_telemetry",
                               "silver.vehicle_dtc", "silver.warranty_claims"),
                              ("gold.vehicle_features",)),
    "gold_spc": (("silver.station_results",),
                 ("gold.spc_points", "gold.spc_subgroups", "gold.spc_violations")),
    "gold_capability": (("silver.station_results",), ("gold.capability",)),
    "gold_reliability": (("silver.vehicle_builds", "silver.warranty_claims",
                          "silver.vehicle_dtc"),
                         ("gold.weibull_fits", "gold.dtc_rates", "gold.warranty_triangle")),
    "gold_mtbf": (("silver.vehicle_builds", "silver.warranty_claims"), ("gold.mtbf",)),
    "gold_defect_pareto": (("silver.station_results", "silver.vehicle_builds"),
                           ("gold.defect_pareto",)),
    "gold_manufacturing_kpis": (("silver.station_results",),
                                ("gold.station_kpis", "gold.line_kpis")),
    "gold_kpi_attribution": (("silver.station_results", "silver.vehicle_builds"),
                             ("gold.kpi_attribution",)),
    "gold_dimensions": (("silver.station_results", "silver.vehicle_builds",
                         "silver.vehicle_dtc"),
                        ("gold.dim_vehicle", "gold.dim_station", "gold.dim_supplier_lot",
                         "gold.dim_vehicle_firmware")),
}


def io_of(name: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(input tables, output tables) of job ``name``, by qualified name."""
    if name.startswith("silver_"):
        topic = name.removeprefix("silver_")
        return (f"bronze.{topic}",), (f"silver.{topic}", "silver.quarantine")
    return _GOLD_IO.get(name, ((), ()))


def _delta_state(spark: "SparkSession", lake_root: str, qualified_name: str
                 ) -> tuple[int | None, int | None]:
    """(latest Delta version, rows written by that commit) of a table; nulls when the
    table is not in the catalog or not written yet, or the commit reports no rows."""
    table = catalog.TABLES.get(qualified_name)
    last = None if table is None else lake.last_commit(spark, lake_root, table)
    if last is None:
        return None, None
    version, metrics = last
    rows = metrics.get("numOutputRows")
    return version, (int(rows) if rows is not None else None)


def _version(spark: "SparkSession", lake_root: str, qualified_name: str) -> int | None:
    table = catalog.TABLES.get(qualified_name)
    return None if table is None else lake.table_version(spark, lake_root, table)


def record_run(spark: "SparkSession", lake_root: str, row: dict) -> None:
    """Append one row to ops.job_runs."""
    from redline.schemas.tables import JOB_RUNS

    lake.append(spark.createDataFrame([row], JOB_RUNS), lake_root,
                catalog.get("ops.job_runs"))


def _execute(spark: "SparkSession", lake_root: str, job: Job, full: bool,
             ingest: "IngestConfig | None" = None) -> dict:
    """Run ``job``: by its incremental spec (a full rebuild with ``full``), else plainly."""
    if job.takes_ingest_config:
        return job.run(spark, lake_root, ingest)
    if job.incremental is None:
        return job.run(spark, lake_root)
    inputs, outputs = io_of(job.name)
    return incremental.run(spark, lake_root, job.name, job.incremental, inputs, outputs,
                           job.run, full=full)


def _run_recorded(spark: "SparkSession", lake_root: str, job: Job, batch_id: str,
                  full: bool = False, ingest: "IngestConfig | None" = None) -> dict:
    """Run ``job`` and append its ops.job_runs row, whether it succeeds or fails."""
    inputs, outputs = io_of(job.name)
    started = datetime.now(timezone.utc)
    began = time.monotonic()
    in_versions = [{"table": t, "version": _version(spark, lake_root, t)} for t in inputs]
    out: dict = {}
    error = None
    try:
        out = _execute(spark, lake_root, job, full, ingest)
        # An incremental job read these versions: its watermarks from now on.
        consumed = (out or {}).pop(incremental.CONSUMED, None) or {}
        in_versions = [{"table": i["table"], "version": consumed.get(i["table"], i["version"])}
                       for i in in_versions]
    except Exception as exc:
        error = f"{type(exc).__name__}: {exc}"[:4000]
        raise
    finally:
        written = [dict(zip(("version", "rows"), _delta_state(spark, lake_root, t)),
                        table=t) for t in outputs]
        record_run(spark, lake_root, {
            "run_id": str(uuid.uuid4()), "batch_id": batch_id, "job": job.name,
            "started_at": started, "ended_at": datetime.now(timezone.utc),
            "seconds": round(time.monotonic() - began, 3),
            "status": "FAILED" if error else "SUCCEEDED", "error": error,
            "inputs": in_versions, "outputs": written,
            "metrics": {k: str(v) for k, v in (out or {}).items()}})
    return out


def plan(names: Sequence[str]) -> list[Job]:
    """``names`` (or 'all') with their dependencies, dependencies first."""
    wanted = ([n for n, j in JOBS.items() if j.in_all] if list(names) == ["all"]
              else list(names))
    for n in wanted:
        if n not in JOBS:
            raise RedlineError("JOB_UNKNOWN", f"no job {n!r}; jobs: {', '.join(JOBS)}")
    ordered: list[Job] = []

    def visit(name: str) -> None:
        if any(j.name == name for j in ordered):
            return
        for dep in JOBS[name].depends_on:
            visit(dep)
        ordered.append(JOBS[name])

    for n in wanted:
        visit(n)
    return ordered


def run_jobs(spark: "SparkSession", lake_root: str, names: Sequence[str],
             progress: Callable[[str], None] = print, record: bool = True,
             full: bool = False, ingest: "IngestConfig | None" = None) -> dict[str, dict]:
    """Run ``names`` in dependency order; with ``record`` each run appends a row to
    ops.job_runs (a failed run too, before its error propagates). Gold jobs with an
    incremental spec process only new silver rows unless ``full``; their watermarks are
    the input versions of their last recorded successful run, so without ``record`` they
    rebuild in full. Silver jobs use
    ``ingest`` (the configuration's ingest settings) when given, else the defaults."""
    results = {}
    jobs = plan(names)
    batch_id = str(uuid.uuid4())
    for i, job in enumerate(jobs, 1):
        began = time.monotonic()
        progress(f"[{i}/{len(jobs)}] {job.name}: {job.description}")
        out = (_run_recorded(spark, lake_root, job, batch_id, full, ingest) if record
               else _execute(spark, lake_root, job, full, ingest))
        out.pop(incremental.CONSUMED, None)
        out["seconds"] = round(time.monotonic() - began, 1)
        results[job.name] = out
        progress(f"[{i}/{len(jobs)}] {job.name}: done in {out['seconds']}s {out}")
    return results
