"""The one catalog of lake tables: layer, name, schema, partitioning and location.

Jobs never spell a path or a table name; they ask the catalog. ``location`` is the only
function that maps a table to storage (``{lake_root}/{layer}/{name}``), and
``qualified_name`` is the name people use in SQL (`redline sql`, the Thrift Server,
Superset).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import TYPE_CHECKING

from redline.errors import RedlineError
from redline.schemas import tables as ts
from redline.schemas.payloads import DATASET_TOPICS, PAYLOADS, latest

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession
    from pyspark.sql.types import StructType


class Layer(str, Enum):
    BRONZE = "bronze"
    SILVER = "silver"
    GOLD = "gold"
    OPS = "ops"
    """Operational records of the platform itself (job runs), not analytics."""


@dataclass(frozen=True)
class Table:
    layer: Layer
    name: str
    schema: Callable[[], StructType]
    description: str
    partition_by: tuple[str, ...] = ()
    topic: str | None = None
    """Logical topic whose events the table holds (bronze and silver)."""
    key: tuple[str, ...] = ()
    """Columns that identify a row: never null (unless nullable in the schema) and
    unique together (the quality gate checks both)."""
    arrival: str | None = None
    """Timestamp column saying when a row reached the lake (the gate's freshness)."""
    optional: bool = False
    """Nothing having written the table yet is normal (replayed data sets, scores before
    the first scoring, a quarantine nothing was sent to)."""

    @property
    def qualified_name(self) -> str:
        return f"{self.layer.value}.{self.name}"


def location(lake_root: str, table: Table) -> str:
    """Storage location of ``table`` under ``lake_root``."""
    return f"{lake_root.rstrip('/')}/{table.layer.value}/{table.name}"


def _topic_tables() -> Iterable[Table]:
    for topic in PAYLOADS:
        optional = topic in DATASET_TOPICS
        yield Table(Layer.BRONZE, topic, lambda: ts.BRONZE,
                    f"Raw Kafka records of topic {topic}, append-only.", topic=topic,
                    key=("topic", "partition", "offset"), arrival="ingest_time",
                    optional=optional)
        yield Table(Layer.SILVER, topic, (lambda t=topic: ts.silver(latest(t))),
                    f"Parsed, typed and deduplicated {topic} events.", topic=topic,
                    key=("event_id",), arrival="kafka_timestamp", optional=optional)


QUARANTINE = Table(Layer.SILVER, "quarantine", lambda: ts.QUARANTINE,
    "Records that failed parsing, the schema or a rule, with a reason.",
    partition_by=("source_table",),
    key=("source_table", "kafka_topic", "kafka_partition", "kafka_offset"), arrival="quarantined_at", optional=True)

FIRST_PASS_YIELD = Table(Layer.GOLD, "first_pass_yield", lambda: ts.FIRST_PASS_YIELD,
    "First-pass yield per plant, line, station and day.",
    key=("day", "plant", "line", "station"))

VEHICLE_FEATURES = Table(Layer.GOLD, "vehicle_features", lambda: ts.VEHICLE_FEATURES,
    "Per-vehicle features as of a date, with the 30-day failure label.",
    key=("vin", "as_of_date"))

VEHICLE_RISK_SCORES = Table(Layer.GOLD, "vehicle_risk_scores", lambda: ts.VEHICLE_RISK_SCORES,
    "Batch scores of the champion failure model.",
    key=("vin", "as_of_date"), arrival="scored_at", optional=True)

CMAPSS_FEATURES = Table(Layer.GOLD, "cmapss_features", lambda: ts.CMAPSS_FEATURES,
    "C-MAPSS turbofan cycles as model inputs: operating condition, sensors z-scored per "
    "data set and condition on training engines, RUL target capped at 125 (training engines).",
    partition_by=("dataset",), key=("engine_id", "cycle"), optional=True)

CMAPSS_SENSOR_STATS = Table(Layer.GOLD, "cmapss_sensor_stats", lambda: ts.CMAPSS_SENSOR_STATS,
    "Per data set, operating condition and sensor: the training mean and standard deviation "
    "that normalise it, and whether it varies enough to be a feature (near-zero variance).",
    key=("dataset", "condition", "sensor"), optional=True)

AI4I_FEATURES = Table(Layer.GOLD, "ai4i_features", lambda: ts.AI4I_FEATURES,
    "AI4I 2020 process runs as model inputs with the machine-failure label; the failure-mode "
    "flags (TWF, HDF, PWF, OSF, RNF) are causes of the label and are not carried.",
    key=("udi",), optional=True)

CMAPSS_RUL_SCORES = Table(Layer.GOLD, "cmapss_rul_scores", lambda: ts.CMAPSS_RUL_SCORES,
    "Remaining useful life of every C-MAPSS engine at its last recorded cycle, with the "
    "ensemble's spread, by the champion model of its data set.",
    key=("engine_id",), arrival="scored_at", optional=True)

AI4I_FAILURE_SCORES = Table(Layer.GOLD, "ai4i_failure_scores", lambda: ts.AI4I_FAILURE_SCORES,
    "Failure probability of every AI4I process run by the champion classifier, with its "
    "predictive entropy.",
    key=("udi",), arrival="scored_at", optional=True)

REVIEW_QUEUE = Table(Layer.GOLD, "review_queue", lambda: ts.REVIEW_QUEUE,
    "Vehicles, engines and process runs ranked for a person to look at: high risk and "
    "high model uncertainty first.",
    key=("task", "entity"), arrival="scored_at", optional=True)

MODEL_DRIFT = Table(Layer.GOLD, "model_drift", lambda: ts.MODEL_DRIFT,
    "Population stability index of every model feature and of the scores, per day, against "
    "the champion's training window.",
    key=("task", "model_version", "day", "feature"), arrival="computed_at", optional=True)

SPC_POINTS = Table(Layer.GOLD, "spc_points", lambda: ts.SPC_POINTS,
    "Every measured value with its I-MR centre line and control limits.",
    key=("plant", "line", "station", "characteristic", "seq"))

SPC_VIOLATIONS = Table(Layer.GOLD, "spc_violations", lambda: ts.SPC_VIOLATIONS,
    "Nelson rule 1-8 violations per characteristic and chart ('I': individuals, "
    "'XBAR': subgroup means): rule, window and points.",
    key=("plant", "line", "station", "characteristic", "chart", "rule", "start_seq"))

SPC_SUBGROUPS = Table(Layer.GOLD, "spc_subgroups", lambda: ts.SPC_SUBGROUPS,
    "X-bar/R chart: subgroups of consecutive measurements with their mean, range "
    "and control limits.",
    key=("plant", "line", "station", "characteristic", "subgroup"))

CAPABILITY = Table(Layer.GOLD, "capability", lambda: ts.CAPABILITY,
    "Cp, Cpk, Pp and Ppk per characteristic and period, with the sample size.",
    key=("plant", "line", "station", "characteristic", "period", "period_start", "lsl", "usl"))

WEIBULL_FITS = Table(Layer.GOLD, "weibull_fits", lambda: ts.WEIBULL_FITS,
    "Censored Weibull fits per component and per supplier lot: shape, scale, B10, with "
    "Fisher-matrix bounds.",
    key=("level", "component", "supplier", "lot"))

WEIBULL_PLOT = Table(Layer.GOLD, "weibull_plot", lambda: ts.WEIBULL_PLOT,
    "Weibull probability plot points of each weibull_fits group: one row per failure with "
    "its median rank (Johnson's adjusted ranks for suspensions) and the fitted line.",
    key=("level", "component", "supplier", "lot", "failure_order"))

DTC_RATES = Table(Layer.GOLD, "dtc_rates", lambda: ts.DTC_RATES,
    "DTC events per 1,000 vehicles per firmware version, each DTC under the "
    "firmware the vehicle ran at its time (dtc_code null: all codes).",
    key=("firmware_version", "dtc_code"))

MTBF = Table(Layer.GOLD, "mtbf", lambda: ts.MTBF,
    "MTBF and failure rate per 1,000 vehicle-months per component, with a "
    "chi-square confidence interval.",
    key=("component",))

WARRANTY_TRIANGLE = Table(Layer.GOLD, "warranty_triangle", lambda: ts.WARRANTY_TRIANGLE,
    "Warranty claims per 1,000 vehicles at risk by build month and months in service.",
    key=("build_month", "months_in_service"))

DEFECT_PARETO = Table(Layer.GOLD, "defect_pareto", lambda: ts.DEFECT_PARETO,
    "Defect Paretos by defect code, by station and by supplier lot per part and "
    "station.",
    key=("pareto", "station", "component", "category", "supplier"))

STATION_KPIS = Table(Layer.GOLD, "station_kpis", lambda: ts.STATION_KPIS,
    "FPY, rework, scrap and DPMO per plant, line, station, shift and day.",
    key=("day", "plant", "line", "station", "shift"))

LINE_KPIS = Table(Layer.GOLD, "line_kpis", lambda: ts.LINE_KPIS,
    "Rolled throughput yield, FPY, rework, scrap and DPMO per plant, line, shift and day.",
    key=("day", "plant", "line", "shift"))

KPI_ATTRIBUTION = Table(Layer.GOLD, "kpi_attribution", lambda: ts.KPI_ATTRIBUTION,
    "Change of each KPI (FPY, DPMO, scrap, rework, RTY) between two periods attributed "
    "to dimension values (mix and rate effects), ranked by contribution.",
    key=("kpi", "scope", "dimension", "value"))

DIM_VEHICLE = Table(Layer.GOLD, "dim_vehicle", lambda: ts.DIM_VEHICLE,
    "Conformed vehicle dimension: build configuration per VIN.",
    key=("vin",))

DIM_STATION = Table(Layer.GOLD, "dim_station", lambda: ts.DIM_STATION,
    "Conformed station dimension: operation and measured characteristics.",
    key=("plant", "line", "station"))

DIM_SUPPLIER_LOT = Table(Layer.GOLD, "dim_supplier_lot", lambda: ts.DIM_SUPPLIER_LOT,
    "Conformed supplier lot dimension: component, supplier, lot and build dates.",
    key=("component", "supplier", "lot"))

DIM_VEHICLE_FIRMWARE = Table(Layer.GOLD, "dim_vehicle_firmware", lambda: ts.DIM_VEHICLE_FIRMWARE,
    "Firmware version of each vehicle with validity periods [valid_from, valid_to).",
    key=("vin", "valid_from"))

JOB_RUNS = Table(Layer.OPS, "job_runs", lambda: ts.JOB_RUNS,
    "One row per job run: status, times, inputs and outputs with Delta versions "
    "(an incremental job's inputs: the versions it consumed, its next watermark).",
    key=("run_id",), arrival="ended_at")

SILVER_BATCHES = Table(Layer.OPS, "silver_batches", lambda: ts.SILVER_BATCHES,
    "One row per silver micro-batch: rows in, to silver, to quarantine, duplicates, "
    "and the violations of each row rule.", partition_by=("topic",),
    key=("topic", "query_id", "batch_id"), arrival="ended_at")

QUALITY_RESULTS = Table(Layer.OPS, "quality_results", lambda: ts.QUALITY_RESULTS,
    "One row per expectation per table per quality gate run: the Delta version validated, "
    "severity, success, observed value, unexpected count and percent, sample values.",
    key=("run_id", "table", "check"), arrival="validated_at",
    optional=True)

SPC_ALERTS = Table(Layer.OPS, "spc_alerts", lambda: ts.SPC_ALERTS,
    "One row per Nelson-rule episode `redline alerts` posted to the webhook (status POSTED, "
    "with the HTTP status and the text) or skipped as older than its --since (SKIPPED).",
    key=("plant", "line", "station", "characteristic", "chart", "rule", "start_seq"),
    arrival="recorded_at", optional=True)

TABLES: dict[str, Table] = {t.qualified_name: t for t in [
    *_topic_tables(),
    QUARANTINE,
    FIRST_PASS_YIELD,
    VEHICLE_FEATURES,
    VEHICLE_RISK_SCORES,
    CMAPSS_FEATURES,
    CMAPSS_SENSOR_STATS,
    AI4I_FEATURES,
    CMAPSS_RUL_SCORES,
    AI4I_FAILURE_SCORES,
    REVIEW_QUEUE,
    MODEL_DRIFT,
    SPC_POINTS,
    SPC_VIOLATIONS,
    SPC_SUBGROUPS,
    CAPABILITY,
    WEIBULL_FITS,
    WEIBULL_PLOT,
    DTC_RATES,
    MTBF,
    WARRANTY_TRIANGLE,
    DEFECT_PARETO,
    STATION_KPIS,
    LINE_KPIS,
    KPI_ATTRIBUTION,
    DIM_VEHICLE,
    DIM_STATION,
    DIM_SUPPLIER_LOT,
    DIM_VEHICLE_FIRMWARE,
    JOB_RUNS,
    SILVER_BATCHES,
    QUALITY_RESULTS,
    SPC_ALERTS,
]}


def get(qualified_name: str) -> Table:
    try:
        return TABLES[qualified_name]
    except KeyError:
        raise RedlineError(
            "TABLE_UNKNOWN",
            f"no table {qualified_name!r} in the catalog; known: {', '.join(sorted(TABLES))}",
        ) from None


def bronze(topic: str) -> Table:
    return get(f"bronze.{topic}")


def silver(topic: str) -> Table:
    return get(f"silver.{topic}")


def exists(spark: SparkSession, lake_root: str, table: Table) -> bool:
    from delta.tables import DeltaTable

    path = location(lake_root, table)
    if DeltaTable.isDeltaTable(spark, path):
        return True
    # Delta caches its log per path, including "no table here": a table another process
    # created since the last look would stay invisible. Drop that entry and look again.
    jvm = spark.sparkContext._jvm
    jvm.org.apache.spark.sql.delta.DeltaLog.invalidateCache(
        spark._jsparkSession, jvm.org.apache.hadoop.fs.Path(path))
    return DeltaTable.isDeltaTable(spark, path)


def read(spark: SparkSession, lake_root: str, table: Table) -> DataFrame:
    if not exists(spark, lake_root, table):
        raise RedlineError(
            "TABLE_EMPTY",
            f"{table.qualified_name} has no data yet at {location(lake_root, table)}; "
            f"run the job that writes it first (`redline demo` runs them all)")
    return spark.read.format("delta").load(location(lake_root, table))


def register_sql(lake_root: str, table: Table) -> list[str]:
    """SQL statements that make ``table`` visible by its qualified name."""
    path = location(lake_root, table).replace("'", "\\'")
    return [f"CREATE DATABASE IF NOT EXISTS {table.layer.value}",
            f"CREATE TABLE IF NOT EXISTS {table.qualified_name} USING delta LOCATION '{path}'"]


def register_all(spark: SparkSession, lake_root: str) -> list[Table]:
    """Register every existing table in ``spark``'s session catalog; return them."""
    found = []
    for table in TABLES.values():
        if exists(spark, lake_root, table):
            for stmt in register_sql(lake_root, table):
                spark.sql(stmt)
            found.append(table)
    return found


def require_topics(names: Sequence[str]) -> list[str]:
    """``names`` when each is a logical topic (a payload); a clear error naming the others."""
    unknown = [n for n in names if n not in PAYLOADS]
    if unknown:
        raise RedlineError("TOPIC_UNKNOWN", f"no topic {', '.join(map(repr, unknown))}; the "
                                            f"topics are {', '.join(PAYLOADS)}")
    return list(names)


_QUERY_NAME = re.compile(r"[a-z][a-z0-9_]*(/[a-z][a-z0-9_]*)*")


def checkpoint(lake_root: str, query: str) -> str:
    """Checkpoint folder of the streaming query ``query`` (kept with the lake it feeds).

    ``query`` becomes a folder path: segments of lower-case letters, digits and ``_``
    joined by ``/``; anything else (a ``..`` would place the folder outside the lake) is
    refused before a folder is made.
    """
    if not _QUERY_NAME.fullmatch(query):
        raise RedlineError("QUERY_NAME", f"streaming query name {query!r} is not a plain name "
                                         f"(lower-case letters, digits, _ and /)")
    return f"{lake_root.rstrip('/')}/_checkpoints/{query}"
