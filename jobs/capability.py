"""Silver station results -> gold process capability per characteristic and period.

For every characteristic key (plant, line, station, characteristic), spec limits and
period:

    Cp  = (USL - LSL) / (6 sigma_within)      sigma_within  = MRbar / d2 (d2 = 1.128)
    Cpk = min(USL - mean, mean - LSL) / (3 sigma_within)
    Pp  = (USL - LSL) / (6 sigma_overall)     sigma_overall = sample standard deviation
    Ppk = min(USL - mean, mean - LSL) / (3 sigma_overall)              (n - 1 divisor)

Periods (``period``, the kinds ``capability_periods`` of ``redline.config.AnalysisConfig``
names for the series; all four by default):

- ``day``: a UTC day; ``week``: an ISO week, from Monday; ``month``: a calendar month
  (``period_start`` is the first day of each);
- ``baseline``: the points of the series' SPC I-MR baseline (``spc``: its first points or
  a date range), once that baseline is full; ``period_start`` is the day of its first
  point. Its sigma_within is the I-MR chart's sigma.

Only where they mean something: a row of fewer than ``capability_min_n`` points (30 by
default, per characteristic or series like the SPC settings) keeps its n and mean, and its
indices are null with ``status`` ``too few points`` (a Cpk from two points is noise); a
row whose points do not vary has ``no variation``; the others are ``ok``.

Each index has a 95 % confidence interval (``*_ci_low``, ``*_ci_high``):

    Cp, Pp:   index * sqrt(chi2(alpha/2, n-1) / (n-1)) .. index * sqrt(chi2(1-alpha/2, n-1) / (n-1))
    Cpk, Ppk: index -/+ z(1-alpha/2) * sqrt(1 / (9n) + index^2 / (2(n-1)))     (Bissell 1990)

(scipy's exact chi-square quantiles, as literals: the interval is plain Spark SQL). For Cp and Cpk,
whose sigma is MR-bar / d2, n - 1 degrees of freedom is the textbook approximation
(Montgomery, Introduction to Statistical Quality Control, section 8.3).

Moving ranges are taken between consecutive points of the same period only, so a
period's indices do not depend on its neighbours. With one spec limit, Cp and Pp are null
and Cpk/Ppk use the side that exists. Points are the first-pass measurements charted by
SPC (``spc.measurements``); a change of spec limits starts a new row.

Incremental strategy: keyed by station (plant, line, station). A changed result can move
a day, a week, a month and, when it is early in its series, the baseline's points; the
station's rows are all recomputed from its silver rows (the baseline needs the whole
series' numbering), so a late result is handled like any other.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from redline import catalog
from redline.config import CAPABILITY_PERIODS, AnalysisConfig
from redline.errors import RedlineError
from redline.jobs import spc
from redline.jobs.declare import GoldJob, Keyed, Source
from redline.jobs.spc import D2, KEY, measurements
from redline.schemas.tables import CAPABILITY

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame

    from redline.jobs.declare import Inputs, Outputs

PERIODS = CAPABILITY_PERIODS
"""day, week, month, baseline."""
OK, TOO_FEW, NO_VARIATION = "ok", "too few points", "no variation"
"""A row's ``status``: indices computed, or why not."""
Z_95 = 1.959963984540054
"""The standard normal quantile at 0.975 (scipy.stats.norm.ppf(0.975))."""


def _period_points(points: DataFrame, period: str, settings: AnalysisConfig) -> DataFrame:
    """``points`` of each period with its ``period_start``."""
    from pyspark.sql import functions as F

    if period == "baseline":
        pts = spc.with_moving_range(points, settings)
        full = spc.baseline_limits(pts, settings).select(
            *KEY, F.to_date("baseline_start").alias("period_start"))
        return pts.where("in_baseline").select(*points.columns).join(full, list(KEY))
    unit = {"day": "day", "week": "week", "month": "month"}[period]
    return points.withColumn("period_start", F.to_date(F.date_trunc(unit, "event_time")))


def capability(points: DataFrame, period: str = "day",
               settings: AnalysisConfig = spc.DEFAULTS) -> DataFrame:
    """Cp, Cpk, Pp, Ppk and n per key and ``period`` (day, week, month or baseline) of
    ``spc.measurements`` points, for every series (``settings`` decides the baseline)."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    if period not in PERIODS:
        raise RedlineError("CAPABILITY_PERIOD_INVALID",
                           f"period must be one of {', '.join(PERIODS)}; got {period!r}")
    group = [*KEY, "period_start", "lsl", "usl"]
    w = Window.partitionBy(*group).orderBy("seq")
    pts = _period_points(points, period, settings)
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

    min_n = spc.series_settings(settings)["capability_min_n"].cast("long")
    enough = F.col("n") >= min_n
    agg = agg.withColumn("min_n", min_n)
    cols = {}
    for name, (spread, k) in (("cp", indices("_sw")), ("pp", indices("_so"))):
        cols[name] = F.when(enough, spread)
        cols[f"{name}k"] = F.when(enough, k)
    status = (F.when(~enough, F.lit(TOO_FEW))
              .when(F.coalesce(F.col("_so"), F.lit(0.0)) <= 0, F.lit(NO_VARIATION))
              .otherwise(F.lit(OK)))
    out = agg.select(*KEY, F.lit(period).alias("period"), "period_start", "lsl", "usl",
                     "n", "mean", F.col("_sw").alias("sigma_within"),
                     F.col("_so").alias("sigma_overall"),
                     *[c.alias(name) for name, c in cols.items()],
                     status.alias("status"), "min_n")
    n = F.col("n")
    for name in ("cp", "pp"):
        low, high = spread_interval(F.col(name), n)
        out = out.withColumn(f"{name}_ci_low", low).withColumn(f"{name}_ci_high", high)
    for name in ("cpk", "ppk"):
        low, high = bissell_interval(F.col(name), n)
        out = out.withColumn(f"{name}_ci_low", low).withColumn(f"{name}_ci_high", high)
    return out.select(*[f.name for f in CAPABILITY.fields])


EXACT_DOF = 500
"""Degrees of freedom up to which the chi-square quantiles are scipy's exact ones."""


def chi2_quantile(q: float, dof: Column) -> Column:
    """The chi-square quantile at probability ``q`` for ``dof`` (a column of whole
    numbers >= 1) degrees of freedom: scipy's, looked up in a literal array, up to
    ``EXACT_DOF``; above it the Wilson-Hilferty approximation, dof * (1 - 2/(9 dof) + z
    sqrt(2/(9 dof)))^3, within 0.001 % there."""
    from pyspark.sql import functions as F
    from scipy.stats import chi2, norm

    exact = F.array(*[F.lit(float(v)) for v in chi2.ppf(q, range(1, EXACT_DOF + 1))])
    a = F.lit(2.0) / (9.0 * dof)
    approx = dof * F.pow(F.lit(1.0) - a + F.lit(float(norm.ppf(q))) * F.sqrt(a), 3)
    return F.when(dof <= EXACT_DOF, F.element_at(exact, dof.cast("int"))).otherwise(approx)


def spread_interval(index: Column, n: Column) -> tuple[Column, Column]:
    """The 95 % chi-square interval of Cp or Pp from ``n`` points (null where the index
    is, or n < 2)."""
    from pyspark.sql import functions as F

    dof = (n - 1).cast("double")
    ok = index.isNotNull() & (n >= 2)
    return (F.when(ok, index * F.sqrt(chi2_quantile(0.025, dof) / dof)),
            F.when(ok, index * F.sqrt(chi2_quantile(0.975, dof) / dof)))


def bissell_interval(index: Column, n: Column) -> tuple[Column, Column]:
    """Bissell's approximate 95 % interval of Cpk or Ppk from ``n`` points."""
    from pyspark.sql import functions as F

    ok = index.isNotNull() & (n >= 2)
    half = F.lit(Z_95) * F.sqrt(F.lit(1.0) / (9.0 * n) + index * index / (2.0 * (n - 1)))
    return F.when(ok, index - half), F.when(ok, index + half)


def capability_table(points: DataFrame, settings: AnalysisConfig = spc.DEFAULTS
                     ) -> DataFrame:
    """gold.capability: for each series, the periods its settings name."""
    from functools import reduce

    from pyspark.sql import functions as F

    branches = [s.periods for _, s in settings.branches()]
    kinds = [p for p in PERIODS if any(p in b for b in branches)]
    out = reduce(lambda a, b: a.unionByName(b),
                 [capability(points, p, settings) for p in kinds])
    if any(set(b) != set(kinds) for b in branches):
        out = out.where(F.array_contains(spc.series_settings(settings)["periods"],
                                         F.col("period")))
    return out


def _capability(t: Inputs) -> Outputs:
    points = measurements(t[catalog.silver("station_results")])
    t.note(periods=t.settings.capability_periods)
    return {catalog.CAPABILITY: capability_table(points, t.settings)}


def _station(df: DataFrame) -> DataFrame:
    """Rows keyed by their station (the columns are there already)."""
    return df


JOB = GoldJob(
    name="gold_capability",
    description="silver.station_results -> gold.capability (the configured periods: day, "
                "week, month, SPC baseline)",
    inputs=(catalog.silver("station_results"),),
    outputs=(catalog.CAPABILITY,),
    transform=_capability,
    incremental=Keyed(("plant", "line", "station"), (
        Source(catalog.silver("station_results"), _station),)),
    settings=("capability_periods", "capability_min_n", "spc_baseline_points",
              "spc_baseline_dates"),
)
