"""Silver builds and warranty claims -> gold.mtbf: MTBF and failure rates per component.

The fleet is a set of repairable systems observed up to an observation end (the last
event day of the builds and claims read, as for the other reliability tables). Per
component:

    vehicles        vehicles built on or before the observation end that have the
                    component on their build record
    exposure T      vehicle-days in service, build date to the observation end (the
                    censoring date of every vehicle: no vehicle leaves the fleet);
                    vehicle-months = vehicle-days / 30.4375 (the mean Gregorian month)
    failures r      every warranty claim on the component between the vehicle's build
                    date and the observation end (repeat claims count: a repaired part
                    goes back into service, unlike gold.weibull_fits, which models the
                    life to the first failure)
    MTBF            T / r                   (null without failures)
    failure rate    r / vehicle-months * 1000

The confidence interval is the chi-square interval of a time-terminated test (failures
as a homogeneous Poisson process over the exposure), two-sided at ``confidence``::

    MTBF low  = 2T / chi2(1 - a/2; 2r + 2)      MTBF high = 2T / chi2(a/2; 2r)

with a = 1 - confidence; without failures the high bound is null (unbounded). The
failure-rate bounds are the same bounds turned into failures per 1,000 vehicle-months.
"""

from __future__ import annotations

from datetime import date
from typing import TYPE_CHECKING

from redline import catalog
from redline.errors import RedlineError
from redline.jobs.declare import Full, GoldJob
from redline.jobs.reliability import observation_end
from redline.schemas.tables import MTBF

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

    from redline.jobs.declare import Inputs, Outputs

DAYS_PER_MONTH = 365.25 / 12
DEFAULT_CONFIDENCE = 0.90
CI_METHOD = "chi-square-time-terminated"


def chi_square_interval(vehicle_days: float, failures: int, confidence: float
                        ) -> tuple[float | None, float | None]:
    """(low, high) MTBF bounds in days (see the module doc); nulls without exposure."""
    from scipy.stats import chi2

    if vehicle_days <= 0:
        return None, None
    alpha = 1.0 - confidence
    low = 2.0 * vehicle_days / float(chi2.ppf(1.0 - alpha / 2.0, 2 * failures + 2))
    high = (2.0 * vehicle_days / float(chi2.ppf(alpha / 2.0, 2 * failures))
            if failures > 0 else None)
    return low, high


def mtbf(vehicle_builds: DataFrame, warranty_claims: DataFrame, observation_end: date,
         confidence: float = DEFAULT_CONFIDENCE) -> DataFrame:
    """MTBF, failure rate and their confidence bounds per component (gold.mtbf)."""
    from pyspark.sql import functions as F

    if not isinstance(confidence, float) or not 0.0 < confidence < 1.0:
        raise RedlineError("MTBF_CONFIDENCE_INVALID",
                           f"confidence must be a float between 0 and 1 (e.g. 0.90); "
                           f"got {confidence!r}")
    end = F.lit(observation_end)
    parts = (vehicle_builds.where(F.col("build_date") <= end)
             .select("vin", "build_date", F.explode("components").alias("c"))
             .select("vin", "build_date", "c.component").distinct())
    exposure = parts.groupBy("component").agg(
        F.countDistinct("vin").alias("vehicles"),
        F.sum(F.datediff(end, "build_date")).cast("long").alias("vehicle_days"))
    failures = (warranty_claims.join(parts, ["vin", "component"])
                .where(F.col("failure_date").between(F.col("build_date"), end))
                .groupBy("component").agg(F.count("*").alias("failures")))
    counts = (exposure.join(failures, "component", "left")
              .select("component", "vehicles", "vehicle_days",
                      F.coalesce("failures", F.lit(0)).alias("failures"))
              .orderBy("component").collect())
    rows = []
    for c in counts:
        months = c.vehicle_days / DAYS_PER_MONTH
        low, high = chi_square_interval(c.vehicle_days, c.failures, confidence)

        def rate(mtbf_days):  # failures per 1,000 vehicle-months at an MTBF in days
            return None if mtbf_days is None else 1000.0 * DAYS_PER_MONTH / mtbf_days

        mtbf_days = c.vehicle_days / c.failures if c.failures else None
        rows.append((c.component, observation_end, c.vehicles, c.failures, c.vehicle_days,
                     months, mtbf_days,
                     None if mtbf_days is None else mtbf_days / DAYS_PER_MONTH,
                     c.failures * 1000.0 / months if months > 0 else None,
                     confidence, low, high, rate(high), rate(low), CI_METHOD))
    return vehicle_builds.sparkSession.createDataFrame(rows, MTBF)



def _mtbf(t: Inputs) -> Outputs:
    builds, claims = t[catalog.silver("vehicle_builds")], t[catalog.silver("warranty_claims")]
    return {catalog.MTBF: mtbf(builds, claims, observation_end(builds, claims))}


JOB = GoldJob(
    name="gold_mtbf",
    description="silver builds, claims -> gold.mtbf (MTBF, failure rates, chi-square bounds)",
    inputs=(catalog.silver("vehicle_builds"), catalog.silver("warranty_claims")),
    outputs=(catalog.MTBF,),
    transform=_mtbf,
    incremental=Full("time in service of every unit runs to the last event day"),
)
