"""Silver station results (+ vehicle builds) -> gold defect Paretos.

Three Paretos in one table, told apart by ``pareto``:

- ``defect_code``: every defect code found, over all stations;
- ``station``: defects per station (``units``: units tested there);
- ``supplier_lot``: for each part (``component``) and station where defects were found,
  defects per supplier lot of that part in the defective units (``units``: units with
  that lot tested at that station). The lot comes from the build record
  (``unit_serial`` = ``vin``); results of units without a build record are not in it.

A defect is one defect code on one station result, retests included. Within a Pareto
(``pareto``, ``station``, ``component``) categories are ranked by defects, ties by
category name; ``share`` and ``cumulative_share`` are fractions of that Pareto's defects.
Categories without defects are not listed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from redline import catalog
from redline.jobs.declare import Full, GoldJob
from redline.schemas.tables import DEFECT_PARETO

if TYPE_CHECKING:
    from pyspark.sql import DataFrame


def defect_pareto(station_results: DataFrame, vehicle_builds: DataFrame) -> DataFrame:
    """The three defect Paretos of ``station_results`` (gold.defect_pareto)."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    null = F.lit(None).cast("string")
    defects = station_results.select("unit_serial", "station",
                                     F.explode("defect_codes").alias("defect_code"))
    tested = station_results.select("unit_serial", "station").distinct()
    parts = vehicle_builds.select(F.col("vin").alias("unit_serial"),
                                  F.explode("components").alias("c")).select(
        "unit_serial", "c.component", "c.supplier", "c.lot").distinct()

    by_code = defects.groupBy(F.col("defect_code").alias("category")).agg(
        F.count("*").alias("defects")).select(
        F.lit("defect_code").alias("pareto"), null.alias("station"), null.alias("component"),
        "category", null.alias("supplier"), "defects", F.lit(None).cast("long").alias("units"))

    units_at = tested.groupBy("station").agg(F.count("*").alias("units"))
    by_station = (defects.groupBy("station").agg(F.count("*").alias("defects"))
                  .join(units_at, "station", "left")
                  .select(F.lit("station").alias("pareto"), null.alias("station"),
                          null.alias("component"), F.col("station").alias("category"),
                          null.alias("supplier"), "defects", "units"))

    lot_key = ["station", "component", "supplier", "lot"]
    lot_units = tested.join(parts, "unit_serial").groupBy(*lot_key).agg(
        F.count("*").alias("units"))
    by_lot = (defects.join(parts, "unit_serial").groupBy(*lot_key)
              .agg(F.count("*").alias("defects"))
              .join(lot_units, lot_key, "left")
              .select(F.lit("supplier_lot").alias("pareto"), "station", "component",
                      F.col("lot").alias("category"), "supplier", "defects", "units"))

    scope = Window.partitionBy("pareto", "station", "component")
    ranked = scope.orderBy(F.col("defects").desc(), F.col("category"))
    out = (by_code.unionByName(by_station).unionByName(by_lot)
           .withColumn("defects_per_unit", F.col("defects") / F.col("units"))
           .withColumn("share", F.col("defects") / F.sum("defects").over(scope))
           .withColumn("cumulative_share",
                       F.sum("defects").over(ranked.rowsBetween(Window.unboundedPreceding, 0))
                       / F.sum("defects").over(scope))
           .withColumn("rank", F.row_number().over(ranked)))
    return out.select(*[f.name for f in DEFECT_PARETO.fields])



JOB = GoldJob(
    name="gold_defect_pareto",
    description="silver.station_results + vehicle_builds -> gold.defect_pareto",
    inputs=(catalog.silver("station_results"), catalog.silver("vehicle_builds")),
    outputs=(catalog.DEFECT_PARETO,),
    transform=lambda t: {catalog.DEFECT_PARETO: defect_pareto(
        t[catalog.silver("station_results")], t[catalog.silver("vehicle_builds")])},
    incremental=Full("shares and ranks are over all defects of each Pareto"),
)
