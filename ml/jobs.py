"""Thin job entry points of the ML layer: read silver, compute features, write gold."""

from __future__ import annotations

from typing import Callable

from pyspark.sql import functions as F

from redline import catalog, lake
from redline.errors import RedlineError
from redline.ml.features import as_of_dates, vehicle_features

SOURCES = ("vehicle_builds", "vehicle_telemetry", "vehicle_dtc", "warranty_claims")


def build_features(spark, lake_root: str, step_days: int = 7,
                   progress: Callable[[str], None] = print) -> int:
    """Overwrite gold.vehicle_features from the silver vehicle tables; return its rows.

    As-of dates run every ``step_days`` days over the telemetry's date range, the last
    one the day after the last telemetry day (the date the fleet is scored at).
    """
    builds, telemetry, dtc, claims = (
        catalog.read(spark, lake_root, catalog.silver(t)) for t in SOURCES)
    first, last = telemetry.agg(F.min(F.to_date("event_time")),
                                F.max(F.to_date("event_time"))).first()
    if first is None:
        raise RedlineError("TABLE_EMPTY", "silver.vehicle_telemetry has no rows; "
                                          "ingest vehicle telemetry first")
    dates = as_of_dates(first, last, step_days)
    table = catalog.get("gold.vehicle_features")
    lake.overwrite(vehicle_features(builds, telemetry, dtc, claims, dates), lake_root, table)
    rows = catalog.read(spark, lake_root, table).count()
    progress(f"{table.qualified_name}: {rows} rows over {len(dates)} as-of dates "
             f"{dates[0]}..{dates[-1]}")
    return rows
