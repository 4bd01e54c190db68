"""Silver station results -> gold first-pass yield per plant, line, station and day."""

from __future__ import annotations

from typing import TYPE_CHECKING

from redline import catalog, lake

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession


def first_pass_yield(station_results: "DataFrame") -> "DataFrame":
    """A unit passes first time at a station when its attempt 1 there is PASS.

    The day is the day of attempt 1; retests on later days count for that first day.
    """
    from pyspark.sql import functions as F

    first = station_results.where(F.col("attempt") == 1).dropDuplicates(
        ["unit_serial", "plant", "line", "station"])
    return (first.groupBy(F.to_date("event_time").alias("day"), "plant", "line", "station")
            .agg(F.count("*").alias("units"),
                 F.sum(F.when(F.col("result") == "PASS", 1).otherwise(0))
                  .cast("long").alias("first_pass_units"))
            .withColumn("fpy", F.col("first_pass_units") / F.col("units"))
            .select("day", "plant", "line", "station", "units", "first_pass_units", "fpy"))


def run(spark: "SparkSession", lake_root: str) -> dict[str, int]:
    results = catalog.read(spark, lake_root, catalog.silver("station_results"))
    target = catalog.get("gold.first_pass_yield")
    lake.overwrite(first_pass_yield(results), lake_root, target)
    return {"rows": catalog.read(spark, lake_root, target).count()}
