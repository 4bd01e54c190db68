"""Silver builds, warranty claims and DTCs -> gold field reliability.

Four tables, all relative to an observation end (the last day with data: the job takes
the last event day of the builds, claims and DTCs it reads):

- gold.weibull_fits: a two-parameter Weibull life model per component (``level`` =
  'component') and per component supplier lot (``level`` = 'lot'). A unit's life is its
  days in service (build date to failure date) to the first claim on that component;
  units without a claim are right-censored at the observation end. The fit is maximum
  likelihood with censoring, solved on the driver after Spark has reduced the fleet to
  counts per (group, days, failed): the shape solves the profile-likelihood equation
  (Brent's method), the scale follows in closed form. Confidence intervals are Fisher
  matrix bounds: the inverse of the observed information (the analytic Hessian of the
  log-likelihood at the MLE) gives standard errors, and the Wald interval is taken on the
  log scale so that both bounds stay positive (``ci_method`` says so per row). B10 gets
  bounds the same way: the variance of ln B10 by the delta method from the full
  covariance matrix (covariance of shape and scale included).
- gold.weibull_plot: the points of a Weibull probability plot of each fit, one row per
  failure: its days in service and its median rank, with suspensions handled by
  Johnson's adjusted ranks and Bernard's approximation, on the linearised axes (ln days,
  ln(-ln(1 - F))) together with the fitted line's ordinate at the same days.
- gold.dtc_rates: DTC events per 1,000 vehicles and per 1,000 vehicle-days, per
  firmware version and DTC code, plus a row per firmware with ``dtc_code`` null for all
  codes together, on the firmware validity periods of gold.dim_vehicle_firmware
  (``dimensions.firmware_periods``). Each DTC counts under the firmware its vehicle ran
  at the DTC's time (``dimensions.firmware_at``). A vehicle's days in service (build
  date to the observation end, as whole days) are split between the firmware versions
  it ran by the dates of its periods (the day of an update counts under the new
  version); ``vehicles`` counts the vehicles with at least one such day under the
  version and ``vehicle_days`` sums them, so a vehicle updated midway counts under both
  versions, each with its own days.
- gold.warranty_triangle: claims per 1,000 vehicles at risk by build month and months
  in service (MIS, completed calendar months since the build date: MIS 0 is the first
  month). A vehicle is at risk in MIS m when it has reached month m of service by the
  observation end, so the newest MIS of a build month is partly observed.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING

from redline import catalog
from redline.errors import RedlineError
from redline.jobs import dimensions
from redline.jobs.declare import Full, GoldJob
from redline.schemas.tables import DTC_RATES, WARRANTY_TRIANGLE, WEIBULL_FITS, WEIBULL_PLOT

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

    from redline.jobs.declare import Inputs, Outputs

CI_METHOD = "fisher-matrix-log-wald"
#: A failure on the day of build has under a day in service; half a day keeps log t finite.
SAME_DAY_FAILURE_DAYS = 0.5
DEFAULT_MIN_FAILURES = 2


# --- Weibull maximum likelihood (plain numpy; no Spark) --------------------------------

@dataclass(frozen=True)
class WeibullFit:
    """A censored two-parameter Weibull MLE; ``status`` is 'OK' when the fields are set."""

    status: str
    units: int
    failures: int
    shape: float | None = None
    scale: float | None = None
    shape_ci: tuple[float, float] | None = None
    scale_ci: tuple[float, float] | None = None
    covariance: tuple[tuple[float, float], tuple[float, float]] | None = None
    """Inverse observed Fisher information of (shape, scale) at the MLE."""
    confidence: float = 0.95

    def life(self, fraction_failed: float) -> float | None:
        """Time by which ``fraction_failed`` of units fail (0.1 gives B10)."""
        if self.status != "OK":
            return None
        return self.scale * (-math.log1p(-fraction_failed)) ** (1.0 / self.shape)

    def life_ci(self, fraction_failed: float) -> tuple[float, float] | None:
        """Fisher-matrix bounds on ``life(fraction_failed)`` at ``confidence``: Wald on
        ln life, whose variance comes by the delta method from the full covariance
        matrix, since ln life = ln scale + ln(-ln(1 - p)) / shape."""
        if self.status != "OK" or self.covariance is None:
            return None
        from scipy.stats import norm

        life = self.life(fraction_failed)
        u = math.log(-math.log1p(-fraction_failed))
        d_shape, d_scale = -u / self.shape ** 2, 1.0 / self.scale
        (v_kk, v_kl), (_, v_ll) = self.covariance
        variance = d_shape ** 2 * v_kk + 2 * d_shape * d_scale * v_kl + d_scale ** 2 * v_ll
        spread = float(norm.ppf(0.5 + self.confidence / 2.0)) * math.sqrt(variance)
        return life * math.exp(-spread), life * math.exp(spread)

    @property
    def mean_life(self) -> float | None:
        return None if self.status != "OK" else self.scale * math.gamma(1.0 + 1.0 / self.shape)


def fit_weibull(times: Sequence[float], failed: Sequence[bool],
                weights: Sequence[float] | None = None, confidence: float = 0.95,
                min_failures: int = DEFAULT_MIN_FAILURES) -> WeibullFit:
    """Censored Weibull MLE of ``times`` (failed, or right-censored where ``failed`` is
    false), each observed ``weights`` times, with Fisher-matrix confidence intervals.

    Status 'TOO_FEW_FAILURES' below ``min_failures`` failures; 'NO_MLE' when the
    likelihood has no finite maximum (e.g. every failure at the longest time observed).
    """
    import numpy as np
    from scipy.optimize import brentq
    from scipy.stats import norm

    t = np.asarray(times, dtype=float)
    f = np.asarray(failed, dtype=bool)
    w = np.ones_like(t) if weights is None else np.asarray(weights, dtype=float)
    if not (t.shape == f.shape == w.shape):
        raise RedlineError("WEIBULL_INPUT_INVALID",
                           "times, failed and weights must have the same length")
    if (t < 0).any() or (w < 0).any():
        raise RedlineError("WEIBULL_INPUT_INVALID", "times and weights must not be negative")
    units, r = int(round(w.sum())), float(w[f].sum())
    if r < min_failures:
        return WeibullFit("TOO_FEW_FAILURES", units, int(round(r)))
    t = np.where(f, np.maximum(t, SAME_DAY_FAILURE_DAYS), t)
    keep = (t > 0) & (w > 0)  # a unit censored at time 0 adds nothing to the likelihood
    t, f, w = t[keep], f[keep], w[keep]
    # Scale-free problem: times in units of the longest time avoid overflow of t**k.
    t_max = t.max()
    x = t / t_max
    lx = np.log(x)
    mean_log_failed = float((w[f] * lx[f]).sum() / r)

    def profile(k: float) -> float:  # d/dk of the profile log-likelihood, divided by r
        xk = w * x ** k
        return 1.0 / k + mean_log_failed - float((xk * lx).sum() / xk.sum())

    lo, hi = 1e-3, 1e3
    if not (profile(lo) > 0 > profile(hi)):
        return WeibullFit("NO_MLE", units, int(round(r)))
    k = float(brentq(profile, lo, hi, xtol=1e-12, rtol=1e-12, maxiter=500))
    lam = float(t_max) * float((w * x ** k).sum() / r) ** (1.0 / k)

    z = t / lam
    zk = w * z ** k
    lz = np.log(z)
    a, b, c = float(zk.sum()), float((zk * lz).sum()), float((zk * lz * lz).sum())
    hessian = np.array([
        [-r / k ** 2 - c, (-r + a + k * b) / lam],
        [(-r + a + k * b) / lam, (r * k - k * (k + 1) * a) / lam ** 2],
    ])
    cov = np.linalg.inv(-hessian)
    q = float(norm.ppf(0.5 + confidence / 2.0))

    def bounds(value: float, variance: float) -> tuple[float, float]:
        spread = q * math.sqrt(float(variance)) / value
        return value * math.exp(-spread), value * math.exp(spread)

    return WeibullFit("OK", units, int(round(r)), k, lam,
                      bounds(k, cov[0, 0]), bounds(lam, cov[1, 1]),
                      ((float(cov[0, 0]), float(cov[0, 1])), (float(cov[1, 0]), float(cov[1, 1]))),
                      confidence)


def plotting_positions(times: Sequence[float], failed: Sequence[bool],
                       weights: Sequence[float] | None = None
                       ) -> list[tuple[float, float, float]]:
    """(days, adjusted rank, median rank) of each failure, in time order, for a Weibull
    probability plot of the same data ``fit_weibull`` takes.

    Suspensions shift the ranks by Johnson's method: the units in time order (at equal
    times failures first, a unit suspended at t having been at risk at t), each failure's
    rank is the previous one plus (n + 1 - previous) / (1 + units from this one on).
    The median rank is Bernard's (rank - 0.3) / (n + 0.4). As in the fit, a failure on
    day 0 is put at half a day and a unit censored at day 0 is left out (n too).
    """
    import numpy as np

    t = np.asarray(times, dtype=float)
    f = np.asarray(failed, dtype=bool)
    w = np.ones_like(t) if weights is None else np.asarray(weights, dtype=float)
    t = np.where(f, np.maximum(t, SAME_DAY_FAILURE_DAYS), t)
    keep = (t > 0) & (w > 0)
    t, f, w = t[keep], f[keep], np.rint(w[keep]).astype(int)
    n = int(w.sum())
    at_risk, rank, out = n, 0.0, []
    for i in np.lexsort((~f, t)):  # by time, failures first
        if not f[i]:
            at_risk -= int(w[i])
            continue
        for _ in range(int(w[i])):
            rank += (n + 1 - rank) / (1 + at_risk)
            at_risk -= 1
            out.append((float(t[i]), rank, (rank - 0.3) / (n + 0.4)))
    return out


# --- Spark transforms -------------------------------------------------------------------

def unit_lives(vehicle_builds: DataFrame, warranty_claims: DataFrame,
               observation_end: date) -> DataFrame:
    """One row per vehicle and component: ``days`` in service to the first claim on the
    component (``failed``) or to ``observation_end`` (censored).

    Vehicles built after the observation end and claims outside [build date,
    observation end] are left out.
    """
    from pyspark.sql import functions as F

    end = F.lit(observation_end)
    parts = (vehicle_builds.where(F.col("build_date") <= end)
             .select("vin", "build_date", F.explode("components").alias("c"))
             .select("vin", "build_date", "c.component", "c.supplier", "c.lot"))
    first = (warranty_claims.join(parts.select("vin", "component", "build_date"),
                                  ["vin", "component"])
             .where(F.col("failure_date").between(F.col("build_date"), end))
             .groupBy("vin", "component").agg(F.min("failure_date").alias("failure_date")))
    return (parts.join(first, ["vin", "component"], "left")
            .select("vin", "component", "supplier", "lot", "build_date",
                    F.datediff(F.coalesce("failure_date", end), "build_date").alias("days"),
                    F.col("failure_date").isNotNull().alias("failed")))


def weibull_tables(vehicle_builds: DataFrame, warranty_claims: DataFrame,
                   observation_end: date, confidence: float = 0.95,
                   min_failures: int = DEFAULT_MIN_FAILURES) -> tuple[DataFrame, DataFrame]:
    """Weibull fits per component and per component lot (gold.weibull_fits) and the
    points of their probability plots (gold.weibull_plot), from one pass over the fleet.

    Every group with failures has its points; ``fitted_y`` is null where the group has
    no fit (too few failures, no MLE).
    """
    from pyspark.sql import functions as F

    lives = unit_lives(vehicle_builds, warranty_claims, observation_end)
    counts = (lives.groupBy("component", "supplier", "lot", "days", "failed")
              .agg(F.count("*").alias("n")).collect())
    groups: dict[tuple, list] = {}
    for row in counts:
        for key in (("component", row.component, None, None),
                    ("lot", row.component, row.supplier, row.lot)):
            groups.setdefault(key, []).append((row.days, row.failed, row.n))
    fits, points = [], []
    for (level, component, supplier, lot), obs in sorted(
            groups.items(), key=lambda kv: tuple("" if v is None else v for v in kv[0])):
        days, failed, n = zip(*obs)
        fit = fit_weibull(days, failed, n, confidence, min_failures)
        ok = fit.status == "OK"
        b10_ci = fit.life_ci(0.1)
        fits.append((level, component, supplier, lot, fit.units, fit.failures,
                     observation_end, fit.status, fit.shape, fit.scale, fit.life(0.1),
                     fit.mean_life,
                     fit.shape_ci[0] if ok else None, fit.shape_ci[1] if ok else None,
                     fit.scale_ci[0] if ok else None, fit.scale_ci[1] if ok else None,
                     b10_ci[0] if b10_ci else None, b10_ci[1] if b10_ci else None,
                     CI_METHOD))
        for t, rank, median_rank in plotting_positions(days, failed, n):
            ln_t = math.log(t)
            points.append((level, component, supplier, lot, observation_end, t, rank,
                           median_rank, ln_t, math.log(-math.log1p(-median_rank)),
                           fit.shape * (ln_t - math.log(fit.scale)) if ok else None))
    spark = vehicle_builds.sparkSession
    return (spark.createDataFrame(fits, WEIBULL_FITS),
            spark.createDataFrame(points, WEIBULL_PLOT))


def weibull_fits(vehicle_builds: DataFrame, warranty_claims: DataFrame,
                 observation_end: date, confidence: float = 0.95,
                 min_failures: int = DEFAULT_MIN_FAILURES) -> DataFrame:
    """Weibull fits per component and per component lot (gold.weibull_fits)."""
    return weibull_tables(vehicle_builds, warranty_claims, observation_end, confidence,
                          min_failures)[0]


def weibull_plot(vehicle_builds: DataFrame, warranty_claims: DataFrame,
                 observation_end: date, confidence: float = 0.95,
                 min_failures: int = DEFAULT_MIN_FAILURES) -> DataFrame:
    """Weibull probability plot points per component and per lot (gold.weibull_plot)."""
    return weibull_tables(vehicle_builds, warranty_claims, observation_end, confidence,
                          min_failures)[1]


def dtc_rates(vehicle_builds: DataFrame, vehicle_dtc: DataFrame,
              observation_end: date, firmware_periods: DataFrame | None = None
              ) -> DataFrame:
    """DTC events per 1,000 vehicles (and vehicle-days) per firmware version, each event
    under the firmware its vehicle ran at the event's time (see the module doc).

    ``firmware_periods`` is gold.dim_vehicle_firmware; by default it is derived from
    ``vehicle_builds`` and ``vehicle_dtc`` exactly as the dimension job does.
    """
    from pyspark.sql import functions as F

    periods = (dimensions.firmware_periods(vehicle_builds, vehicle_dtc)
               if firmware_periods is None else firmware_periods)
    end = F.lit(observation_end)
    built = (vehicle_builds.where(F.col("build_date") <= end)
             .groupBy("vin").agg(F.min("build_date").alias("build_date")))
    start = F.greatest(F.to_date("valid_from"), F.col("build_date"))
    stop = F.least(F.coalesce(F.to_date("valid_to"), end), end)
    exposure = (periods.join(built, "vin")
                .select("vin", "firmware_version",
                        F.greatest(F.datediff(stop, start), F.lit(0)).alias("_days"))
                .groupBy("vin", "firmware_version").agg(F.sum("_days").alias("_days"))
                .where(F.col("_days") > 0))
    fleet = exposure.groupBy("firmware_version").agg(
        F.count("*").alias("vehicles"), F.sum("_days").cast("long").alias("vehicle_days"))
    events = dimensions.firmware_at(
        periods,
        vehicle_dtc.where(F.to_date("event_time") <= end).select(
            "vin", F.col("event_time").alias("at"), "dtc_code",
            F.col("firmware_version").alias("_reported"))
    ).select("dtc_code", F.coalesce("firmware_version", "_reported").alias("firmware_version"))
    by_code = events.groupBy("firmware_version", "dtc_code").agg(
        F.count("*").alias("dtc_events"))
    all_codes = events.groupBy("firmware_version").agg(
        F.count("*").alias("dtc_events")).withColumn("dtc_code", F.lit(None).cast("string"))
    rows = (by_code.join(fleet, "firmware_version", "left")
            .unionByName(all_codes.join(fleet, "firmware_version", "full")))
    vehicles = F.coalesce("vehicles", F.lit(0)).cast("long")
    vehicle_days = F.coalesce("vehicle_days", F.lit(0)).cast("long")
    events_n = F.coalesce("dtc_events", F.lit(0)).cast("long")
    out = rows.select(
        "firmware_version", "dtc_code", end.alias("observation_end"),
        events_n.alias("dtc_events"), vehicles.alias("vehicles"),
        vehicle_days.alias("vehicle_days"),
        F.when(vehicles > 0, events_n * 1000.0 / vehicles).alias("dtc_per_1000_vehicles"),
        F.when(vehicle_days > 0, events_n * 1000.0 / vehicle_days)
         .alias("dtc_per_1000_vehicle_days"))
    return out.select(*[f.name for f in DTC_RATES.fields])


def warranty_triangle(vehicle_builds: DataFrame, warranty_claims: DataFrame,
                      observation_end: date) -> DataFrame:
    """Claims per 1,000 vehicles at risk by build month and months in service."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    end = F.lit(observation_end)
    vehicles = (vehicle_builds.where(F.col("build_date") <= end)
                .select("vin", "build_date",
                        F.trunc("build_date", "month").alias("build_month"),
                        F.floor(F.months_between(end, "build_date")).cast("int")
                         .alias("_max_mis")))
    at_risk = (vehicles.select("build_month", F.explode(F.sequence(F.lit(0), "_max_mis"))
                               .alias("months_in_service"))
               .groupBy("build_month", "months_in_service")
               .agg(F.count("*").alias("vehicles_at_risk")))
    claims = (warranty_claims.join(vehicles, "vin")
              .where(F.col("failure_date").between(F.col("build_date"), end))
              .groupBy("build_month",
                       F.floor(F.months_between("failure_date", "build_date")).cast("int")
                        .alias("months_in_service"))
              .agg(F.count("*").alias("claims")))
    w = (Window.partitionBy("build_month").orderBy("months_in_service")
         .rowsBetween(Window.unboundedPreceding, 0))
    out = (at_risk.join(claims, ["build_month", "months_in_service"], "left")
           .withColumn("claims", F.coalesce("claims", F.lit(0)).cast("long"))
           .withColumn("observation_end", end)
           .withColumn("claims_per_1000", F.col("claims") * 1000.0 / F.col("vehicles_at_risk"))
           .withColumn("cumulative_claims_per_1000", F.sum("claims_per_1000").over(w)))
    return out.select(*[f.name for f in WARRANTY_TRIANGLE.fields])


def observation_end(*frames: DataFrame) -> date:
    """The last event day over ``frames`` (each with an ``event_time`` column)."""
    from pyspark.sql import functions as F

    days = [d for df in frames
            if (d := df.agg(F.max(F.to_date("event_time"))).first()[0]) is not None]
    if not days:
        raise RedlineError("TABLE_EMPTY", "no events to take an observation end from; "
                                          "load vehicle builds, claims or DTCs first")
    return max(days)



def _reliability(t: Inputs) -> Outputs:
    builds = t[catalog.silver("vehicle_builds")]
    claims = t[catalog.silver("warranty_claims")]
    dtc = t[catalog.silver("vehicle_dtc")]
    end = observation_end(builds, claims, dtc)
    fits, plot = weibull_tables(builds, claims, end)
    return {catalog.WEIBULL_FITS: fits, catalog.WEIBULL_PLOT: plot,
            catalog.DTC_RATES: dtc_rates(builds, dtc, end),
            catalog.WARRANTY_TRIANGLE: warranty_triangle(builds, claims, end)}


JOB = GoldJob(
    name="gold_reliability",
    description="silver builds, claims, DTCs -> gold.weibull_fits, gold.weibull_plot, "
                "gold.dtc_rates, gold.warranty_triangle",
    inputs=(catalog.silver("vehicle_builds"), catalog.silver("warranty_claims"),
            catalog.silver("vehicle_dtc")),
    outputs=(catalog.WEIBULL_FITS, catalog.WEIBULL_PLOT, catalog.DTC_RATES,
             catalog.WARRANTY_TRIANGLE),
    transform=_reliability,
    incremental=Full("censoring, vehicles in service and months at risk are relative to "
                     "the last event day"),
)
