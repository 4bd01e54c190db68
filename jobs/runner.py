"""Named batch jobs with dependencies, run in dependency order."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Sequence

from redline.errors import RedlineError
from redline.jobs import capability, defect_pareto, gold_fpy, reliability, silver, spc
from redline.schemas.payloads import PAYLOADS

if TYPE_CHECKING:
    from pyspark.sql import SparkSession


@dataclass(frozen=True)
class Job:
    name: str
    run: Callable[["SparkSession", str], dict]
    depends_on: tuple[str, ...] = ()
    description: str = ""


def _silver_job(topic: str) -> Job:
    return Job(f"silver_{topic}", lambda spark, root: silver.run(spark, root, topic),
               description=f"bronze.{topic} -> silver.{topic} (+ quarantine)")


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
    Job("gold_defect_pareto", defect_pareto.run,
        ("silver_station_results", "silver_vehicle_builds"),
        "silver.station_results + vehicle_builds -> gold.defect_pareto"),
]}


def plan(names: Sequence[str]) -> list[Job]:
    """``names`` (or 'all') with their dependencies, dependencies first."""
    wanted = list(JOBS) if list(names) == ["all"] else list(names)
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
             progress: Callable[[str], None] = print) -> dict[str, dict]:
    results = {}
    jobs = plan(names)
    for i, job in enumerate(jobs, 1):
        began = time.monotonic()
        progress(f"[{i}/{len(jobs)}] {job.name}: {job.description}")
        out = job.run(spark, lake_root)
        out["seconds"] = round(time.monotonic() - began, 1)
        results[job.name] = out
        progress(f"[{i}/{len(jobs)}] {job.name}: done in {out['seconds']}s {out}")
    return results
