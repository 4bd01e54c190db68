"""Silver station results -> gold manufacturing KPIs per station and per line.

Two tables, both per plant, line, shift and day:

- gold.station_kpis, per station as well;
- gold.line_kpis, over the stations of the line, with the rolled throughput yield.

A unit (``unit_serial``) is counted at a station on the day and shift of its attempt 1
there (as in gold.first_pass_yield: retests on later days count for that first day);
results of a unit without an attempt 1 at that station are not counted. Per unit and
station:

- first pass: attempt 1 is PASS;
- reworked: it needed more than one attempt (max attempt > 1);
- scrapped: its last attempt (highest attempt number) is not PASS: the unit never
  passed the station;
- defects: the distinct defect codes on attempt 1;
- opportunities: the characteristics measured on attempt 1, at least 1 (a station that
  measures nothing still makes one pass/fail check).

Station KPIs::

    fpy         = first_pass_units / units
    rework_rate = reworked_units / units          scrap_rate = scrapped_units / units
    dpmo        = defects / opportunities * 1,000,000
    opportunities = sum over units of their measured characteristics, i.e.
                    units x number of measured characteristics when every unit is measured
                    on each of them

Line KPIs: a unit belongs to the day and shift of its first attempt 1 on the line; it is
first pass when it passed every station first time, reworked when reworked at any
station, scrapped when scrapped at any station; defects and opportunities are summed
over its stations. The rolled throughput yield is the product of the station FPYs of
the same plant, line, shift and day::

    rty = prod over stations s of fpy_s

(it estimates the chance that a unit passes every station first time, assuming stations
fail independently; ``fpy`` of the line row is the observed fraction). A line row exists
for each day and shift in which some unit started on the line; station rows of a day
and shift in which no unit started there (a night shift's units reaching later stations
after midnight) are in gold.station_kpis but not in any line's RTY.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from redline import catalog
from redline.jobs import incremental
from redline.jobs.declare import GoldJob, Keyed, Source
from redline.schemas.tables import LINE_KPIS, STATION_KPIS

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame

STATION_KEY = ("plant", "line", "station")


def unit_results(station_results: DataFrame) -> DataFrame:
    """One row per unit and station: day, shift, the per-unit flags of the module doc and
    ``defect_codes``, the distinct codes on attempt 1."""
    from pyspark.sql import functions as F

    first = (station_results.where(F.col("attempt") == 1)
             .dropDuplicates(["unit_serial", *STATION_KEY])
             .select("unit_serial", *STATION_KEY, "shift", "event_time",
                     F.to_date("event_time").alias("day"),
                     (F.col("result") == "PASS").alias("first_pass"),
                     F.array_distinct(F.coalesce(
                         "defect_codes", F.array().cast("array<string>"))).alias("defect_codes"),
                     F.array_distinct(F.coalesce(
                         F.transform("measurements", lambda m: m["characteristic"]),
                         F.array().cast("array<string>"))).alias("characteristic_list")))
    # The last attempt decides scrap; among duplicates of it, the latest event wins.
    last = (station_results.groupBy("unit_serial", *STATION_KEY)
            .agg(F.max("attempt").alias("attempts"),
                 F.max_by("result", F.struct("attempt", "event_time")).alias("last_result")))
    return (first.join(last, ["unit_serial", *STATION_KEY])
            .withColumn("defects", F.size("defect_codes").cast("long"))
            .withColumn("reworked", F.col("attempts") > 1)
            .withColumn("scrapped", F.col("last_result") != "PASS")
            .withColumn("opportunities",
                        F.greatest(F.size("characteristic_list"), F.lit(1)).cast("long")))


def _count(flag: str) -> Column:
    from pyspark.sql import functions as F

    return F.sum(F.when(F.col(flag), 1).otherwise(0)).cast("long")


def _rates(df: DataFrame) -> DataFrame:
    from pyspark.sql import functions as F

    units = F.col("units")
    return (df.withColumn("fpy", F.col("first_pass_units") / units)
              .withColumn("rework_rate", F.col("reworked_units") / units)
              .withColumn("scrap_rate", F.col("scrapped_units") / units)
              .withColumn("dpmo", F.col("defects") / F.col("opportunities") * 1e6))


def station_kpis(station_results: DataFrame) -> DataFrame:
    """gold.station_kpis of ``station_results`` (silver.station_results rows)."""
    from pyspark.sql import functions as F

    units = unit_results(station_results)
    agg = units.groupBy("day", *STATION_KEY, "shift").agg(
        F.count("*").alias("units"),
        _count("first_pass").alias("first_pass_units"),
        _count("reworked").alias("reworked_units"),
        _count("scrapped").alias("scrapped_units"),
        F.sum("defects").cast("long").alias("defects"),
        F.sum("opportunities").cast("long").alias("opportunities"),
        F.size(F.array_distinct(F.flatten(F.collect_list("characteristic_list"))))
        .alias("characteristics"))
    return _rates(agg).select(*[f.name for f in STATION_KPIS.fields])


def line_kpis(station_results: DataFrame, stations: DataFrame | None = None
              ) -> DataFrame:
    """gold.line_kpis of ``station_results``; ``stations`` is their gold.station_kpis
    (computed when not given)."""
    from pyspark.sql import functions as F

    if stations is None:
        stations = station_kpis(station_results)
    units = (unit_results(station_results)
             .groupBy("unit_serial", "plant", "line")
             .agg(F.min_by(F.struct("day", "shift"), "event_time").alias("_first"),
                  F.bool_and("first_pass").alias("first_pass"),
                  F.bool_or("reworked").alias("reworked"),
                  F.bool_or("scrapped").alias("scrapped"),
                  F.sum("defects").alias("defects"),
                  F.sum("opportunities").alias("opportunities"))
             .select("*", "_first.day", "_first.shift"))
    agg = units.groupBy("day", "plant", "line", "shift").agg(
        F.count("*").alias("units"),
        _count("first_pass").alias("first_pass_units"),
        _count("reworked").alias("reworked_units"),
        _count("scrapped").alias("scrapped_units"),
        F.sum("defects").cast("long").alias("defects"),
        F.sum("opportunities").cast("long").alias("opportunities"))
    # A product is exp(sum(log)); a station with FPY 0 makes the whole product 0.
    rty = stations.groupBy("day", "plant", "line", "shift").agg(
        F.count("*").cast("int").alias("stations"),
        F.when(F.min("fpy") <= 0, F.lit(0.0))
         .otherwise(F.exp(F.sum(F.log(F.greatest("fpy", F.lit(1e-300)))))).alias("rty"))
    out = _rates(agg).join(rty, ["day", "plant", "line", "shift"], "inner")
    return out.select(*[f.name for f in LINE_KPIS.fields])



JOB = GoldJob(
    name="gold_manufacturing_kpis",
    description="silver.station_results -> gold.station_kpis, gold.line_kpis",
    inputs=(catalog.silver("station_results"),),
    outputs=(catalog.STATION_KPIS, catalog.LINE_KPIS),
    transform=lambda t: {
        catalog.STATION_KPIS: station_kpis(t[catalog.silver("station_results")]),
        catalog.LINE_KPIS: lambda out: line_kpis(t[catalog.silver("station_results")],
                                                 out[catalog.STATION_KPIS])},
    incremental=Keyed(("plant", "line", "day"), (
        Source(catalog.silver("station_results"), incremental.day,
               entity=("unit_serial", "plant", "line")),)),
)
