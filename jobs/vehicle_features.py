"""Silver vehicle tables -> gold.vehicle_features: the failure model's features and labels.

The features themselves are ``ml/features.py``'s pure transforms; this is their gold job.
As-of dates run every ``step_days`` days over the telemetry's date range, the last one the
day after the last telemetry day (the date the fleet is scored at): a week, shortened for
short histories so that there are about twenty as-of dates.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from redline import catalog
from redline.errors import RedlineError
from redline.jobs.declare import Full, GoldJob
from redline.ml.features import as_of_dates, daily_readings, features_from_daily, telemetry_days

if TYPE_CHECKING:
    from redline.jobs.declare import Inputs, Outputs


def step_days(first, last) -> int:
    """Days between as-of dates: a week, shorter for histories under 140 days."""
    return max(1, min(7, (last - first).days // 20))


def _features(t: Inputs) -> Outputs:
    telemetry = t[catalog.silver("vehicle_telemetry")]
    # The as-of dates, the windows and the as-of joins all read the daily readings.
    daily = t.cache(daily_readings(telemetry, t[catalog.silver("vehicle_dtc")]))
    first, last = telemetry_days(daily)
    if first is None:
        raise RedlineError("TABLE_EMPTY", "silver.vehicle_telemetry has no rows; "
                                          "ingest vehicle telemetry first")
    dates = as_of_dates(first, last, step_days(first, last))
    t.note(as_of_dates=len(dates), as_of_range=f"{dates[0]}..{dates[-1]}")
    return {catalog.VEHICLE_FEATURES: features_from_daily(
        t[catalog.silver("vehicle_builds")], daily, t[catalog.silver("warranty_claims")],
        dates)}


JOB = GoldJob(
    name="gold_vehicle_features",
    description="silver vehicle tables -> gold.vehicle_features (ML features and labels)",
    inputs=(catalog.silver("vehicle_builds"), catalog.silver("vehicle_telemetry"),
            catalog.silver("vehicle_dtc"), catalog.silver("warranty_claims")),
    outputs=(catalog.VEHICLE_FEATURES,),
    transform=_features,
    incremental=Full("as-of dates are anchored at the last telemetry day and spaced by "
                     "the date range"),
)
