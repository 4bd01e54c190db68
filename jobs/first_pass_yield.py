"""Silver station results -> gold first-pass yield per plant, line, station and day."""

from __future__ import annotations

from typing import TYPE_CHECKING

from redline import catalog
from redline.jobs import incremental
from redline.jobs.declare import GoldJob, Keyed, Source

if TYPE_CHECKING:
    from pyspark.sql import DataFrame


def first_pass_yield(station_results: DataFrame) -> DataFrame:
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



JOB = GoldJob(
    name="gold_first_pass_yield",
    description="silver.station_results -> gold.first_pass_yield",
    inputs=(catalog.silver("station_results"),),
    outputs=(catalog.FIRST_PASS_YIELD,),
    transform=lambda t: {catalog.FIRST_PASS_YIELD:
                         first_pass_yield(t[catalog.silver("station_results")])},
    incremental=Keyed(("plant", "line", "station", "day"), (
        Source(catalog.silver("station_results"), incremental.day,
               entity=("unit_serial", "plant", "line", "station")),)),
)
