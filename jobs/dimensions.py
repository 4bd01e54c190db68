"""Silver -> conformed gold dimensions: vehicles, stations, supplier lots, firmware periods.

- gold.dim_vehicle: one row per VIN, its latest build record (model, plant, line, build
  date and time, firmware at build, component suppliers and lots).
- gold.dim_station: one row per plant, line and station: its operation (the latest
  seen), the characteristics it measures, first and last result seen.
- gold.dim_supplier_lot: one row per component, supplier and lot: vehicles built with
  it and the first and last build date.
- gold.dim_vehicle_firmware: the firmware of each vehicle with validity periods.

Firmware periods. Today a vehicle's firmware is only *observed*: in its build record (at
the build's event time) and in each DTC event (``firmware_version`` at the DTC's event
time); there is no update event. Observations of a VIN are ordered by time and runs of
the same version are collapsed into one period::

    valid_from = time of the first observation of the run
    valid_to   = valid_from of the next run (exclusive), null for the current version
    last_seen  = time of the last observation of the run

The update really happened somewhere in [last_seen of the previous run, valid_from); the
period starts at the first evidence of the new version, so "firmware of vin X at time T"
never answers a version that had not yet been seen. Before the first observation (before
the build) the answer is no row. ``source`` says what opened the period ('build' or
'dtc'). A version that comes back after another (a rollback) opens a new period.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from redline import catalog
from redline.jobs.declare import Full, GoldJob
from redline.schemas.tables import (
    DIM_STATION,
    DIM_SUPPLIER_LOT,
    DIM_VEHICLE_FIRMWARE,
)

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

    from redline.jobs.declare import Inputs, Outputs


def _latest_builds(vehicle_builds: DataFrame) -> DataFrame:
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    w = Window.partitionBy("vin").orderBy(F.col("event_time").desc(), F.col("event_id"))
    return vehicle_builds.withColumn("_n", F.row_number().over(w)).where("_n = 1").drop("_n")


def dim_vehicle(vehicle_builds: DataFrame) -> DataFrame:
    """gold.dim_vehicle: the latest build record of each VIN."""
    from pyspark.sql import functions as F

    return _latest_builds(vehicle_builds).select(
        "vin", "model", "plant", "line", "build_date", F.col("event_time").alias("build_time"),
        F.col("firmware_version").alias("build_firmware_version"), "components")


def dim_station(station_results: DataFrame) -> DataFrame:
    """gold.dim_station: operation, measured characteristics and first/last seen."""
    from pyspark.sql import functions as F

    chars = F.coalesce(F.transform("measurements", lambda m: m["characteristic"]),
                       F.array().cast("array<string>"))
    out = station_results.groupBy("plant", "line", "station").agg(
        F.max_by("operation", "event_time").alias("operation"),
        F.array_sort(F.array_distinct(F.flatten(F.collect_list(chars))))
        .alias("characteristics"),
        F.min("event_time").alias("first_seen"), F.max("event_time").alias("last_seen"))
    return out.select(*[f.name for f in DIM_STATION.fields])


def dim_supplier_lot(vehicle_builds: DataFrame) -> DataFrame:
    """gold.dim_supplier_lot: every lot built into a vehicle, with its build dates."""
    from pyspark.sql import functions as F

    parts = _latest_builds(vehicle_builds).select(
        "vin", "build_date", F.explode("components").alias("c"))
    out = parts.groupBy("c.component", "c.supplier", "c.lot").agg(
        F.countDistinct("vin").alias("vehicles"),
        F.min("build_date").alias("first_build_date"),
        F.max("build_date").alias("last_build_date"))
    return out.select(*[f.name for f in DIM_SUPPLIER_LOT.fields])


def firmware_periods(vehicle_builds: DataFrame, vehicle_dtc: DataFrame) -> DataFrame:
    """gold.dim_vehicle_firmware: firmware validity periods per VIN (see the module doc)."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    seen = (vehicle_builds.select("vin", "firmware_version", "event_time",
                                  F.lit("build").alias("source"))
            .unionByName(vehicle_dtc.select("vin", "firmware_version", "event_time",
                                            F.lit("dtc").alias("source"))))
    # At equal times the build comes first ('build' < 'dtc').
    w = Window.partitionBy("vin").orderBy("event_time", "source", "firmware_version")
    runs = (seen.withColumn("_prev", F.lag("firmware_version").over(w))
                .withColumn("_new", F.coalesce(F.col("_prev") != F.col("firmware_version"),
                                               F.lit(True)))
                .withColumn("_run", F.sum(F.when(F.col("_new"), 1).otherwise(0)).over(w)))
    periods = runs.groupBy("vin", "_run").agg(
        F.first("firmware_version").alias("firmware_version"),
        F.min("event_time").alias("valid_from"), F.max("event_time").alias("last_seen"),
        F.count("*").alias("observations"),
        F.min_by("source", F.struct("event_time", "source")).alias("source"))
    wp = Window.partitionBy("vin").orderBy("_run")
    out = periods.withColumn("valid_to", F.lead("valid_from").over(wp))
    return out.select(*[f.name for f in DIM_VEHICLE_FIRMWARE.fields])


def firmware_at(periods: DataFrame, lookups: DataFrame, vin: str = "vin",
                at: str = "at") -> DataFrame:
    """``lookups`` with ``firmware_version`` added: the firmware of ``vin`` at time ``at``
    (a range join on [valid_from, valid_to); null before the vehicle's first observation)."""
    from pyspark.sql import functions as F

    p = periods.select(F.col("vin").alias("_vin"), "firmware_version", "valid_from",
                       "valid_to")
    cond = ((F.col(vin) == F.col("_vin")) & (F.col(at) >= F.col("valid_from"))
            & (F.col("valid_to").isNull() | (F.col(at) < F.col("valid_to"))))
    return lookups.join(p, cond, "left").drop("_vin", "valid_from", "valid_to")



def _dimensions(t: Inputs) -> Outputs:
    builds = t[catalog.silver("vehicle_builds")]
    return {catalog.DIM_VEHICLE: dim_vehicle(builds),
            catalog.DIM_STATION: dim_station(t[catalog.silver("station_results")]),
            catalog.DIM_SUPPLIER_LOT: dim_supplier_lot(builds),
            catalog.DIM_VEHICLE_FIRMWARE: firmware_periods(builds,
                                                           t[catalog.silver("vehicle_dtc")])}


JOB = GoldJob(
    name="gold_dimensions",
    description="silver -> gold.dim_vehicle, dim_station, dim_supplier_lot, "
                "dim_vehicle_firmware",
    inputs=(catalog.silver("station_results"), catalog.silver("vehicle_builds"),
            catalog.silver("vehicle_dtc")),
    outputs=(catalog.DIM_VEHICLE, catalog.DIM_STATION, catalog.DIM_SUPPLIER_LOT,
             catalog.DIM_VEHICLE_FIRMWARE),
    transform=_dimensions,
    incremental=Full("small tables; station first/last seen span all history"),
)
