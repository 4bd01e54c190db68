"""Silver station results -> gold process capability per characteristic and period.

For every characteristic key (plant, line, station, characteristic), spec limits and
period (a day, or an ISO week starting on Monday):

    Cp  = (USL - LSL) / (6 sigma_within)      sigma_within  = MRbar / d2 (d2 = 1.128)
    Cpk = min(USL - mean, mean - LSL) / (3 sigma_within)
    Pp  = (USL - LSL) / (6 sigma_overall)     sigma_overall = sample standard deviation
    Ppk = min(USL - mean, mean - LSL) / (3 sigma_overall)              (n - 1 divisor)

Moving ranges are taken between consecutive points of the same period only, so a
period's indices do not depend on its neighbours. With one spec limit, Cp and Pp are null
and Cpk/Ppk use the side that exists. Points are the first-pass measurements charted by
SPC (``spc.measurements``); a change of spec limits starts a new row.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from redline import catalog
from redline.errors import RedlineError
from redline.jobs import incremental
from redline.jobs.declare import GoldJob, Keyed, Source
from redline.jobs.spc import D2, KEY, measurements
from redline.schemas.tables import CAPABILITY

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

PERIODS = ("day", "week")


def capability(points: DataFrame, period: str = "day") -> DataFrame:
    """Cp, Cpk, Pp, Ppk and n per key and ``period`` of ``spc.measurements`` points."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    if period not in PERIODS:
        raise RedlineError("CAPABILITY_PERIOD_INVALID",
                           f"period must be one of {', '.join(PERIODS)}; got {period!r}")
    start = (F.to_date("event_time") if period == "day"
             else F.to_date(F.date_trunc("week", "event_time")))
    group = [*KEY, "period_start", "lsl", "usl"]
    w = Window.partitionBy(*group).orderBy("seq")
    pts = points.withColumn("period_start", start)
    pts = pts.withColumn("_mr", F.abs(F.col("value") - F.lag("value").over(w)))
    agg = pts.groupBy(*group).agg(
        F.count("*").alias("n"), F.avg("value").alias("mean"),
        F.stddev_samp("value").alias("_so"), (F.avg("_mr") / D2).alias("_sw"))
    usl, lsl, mean = F.col("usl"), F.col("lsl"), F.col("mean")

    def indices(sigma: str) -> tuple:
        s = F.when(F.col(sigma) > 0, F.col(sigma))
        spread = (usl - lsl) / (6 * s)
        # least() skips nulls: with one spec limit only that side counts.
        k = F.least((usl - mean) / (3 * s), (mean - lsl) / (3 * s))
        return spread, k

    cp, cpk = indices("_sw")
    pp, ppk = indices("_so")
    out = agg.select(*KEY, F.lit(period).alias("period"), "period_start", "lsl", "usl",
                     "n", "mean", F.col("_sw").alias("sigma_within"),
                     F.col("_so").alias("sigma_overall"),
                     cp.alias("cp"), cpk.alias("cpk"), pp.alias("pp"), ppk.alias("ppk"))
    return out.select(*[f.name for f in CAPABILITY.fields])



JOB = GoldJob(
    name="gold_capability",
    description="silver.station_results -> gold.capability (daily periods)",
    inputs=(catalog.silver("station_results"),),
    outputs=(catalog.CAPABILITY,),
    transform=lambda t: {catalog.CAPABILITY: capability(
        measurements(t[catalog.silver("station_results")]), "day")},
    incremental=Keyed(("plant", "line", "station", "period_start"), (
        Source(catalog.silver("station_results"), incremental.period_day),)),
)
