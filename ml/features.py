"""Point-in-time vehicle features and the 30-day failure label (pure transforms).

One row per vehicle and as-of date. The as-of instant is ``as_of_date`` 00:00 in the
session time zone (UTC in every profile): features see only events with
``event_time < as_of_date``, so a row computed today is the row a model would have seen
then. The label looks forward: ``failure_within_30d`` is 1 when the vehicle's first
warranty failure (any component) has ``as_of_date < failure_date <= as_of_date + 30``.

Vehicles enter at the first as-of date after their build date (``build_date <
as_of_date``) and leave once they have failed (``failure_date <= as_of_date``): the model
predicts the *first* failure, and a repaired vehicle is a different population.

Nothing here reads or writes a table or builds a session; the job in ``redline.ml.jobs``
does the I/O.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, timedelta

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F
from pyspark.sql.types import DateType, StructField, StructType

from redline.errors import RedlineError

HORIZON_DAYS = 30
"""The label's look-ahead: a failure in (as_of_date, as_of_date + HORIZON_DAYS]."""
WINDOW_DAYS = 30
"""Look-back of the windowed telemetry and DTC features."""
RISE_RECENT_DAYS = 14
"""A wearing coolant pump heats the coolant over about two weeks before it fails, so the
rise compares the last RISE_RECENT_DAYS with the RISE_BASELINE_DAYS before them."""
RISE_BASELINE_DAYS = 46

_LOOKBACK_DAYS = max(WINDOW_DAYS, RISE_RECENT_DAYS + RISE_BASELINE_DAYS)
_PUMP = "coolant_pump"

CATEGORICAL = ("model", "plant", "firmware_version", "coolant_pump_supplier", "coolant_pump_lot")
NUMERIC = ("age_days", "odometer_km", "mean_coolant_temp_c", "coolant_temp_rise_c",
           "max_motor_temp_c", "mean_battery_temp_c", "dtc_count_30d")
LABEL = "failure_within_30d"


def as_of_dates(first_day: date, last_day: date, step_days: int = 7) -> list[date]:
    """As-of dates every ``step_days`` days, ascending, for data from ``first_day`` to
    ``last_day`` (inclusive).

    The series is anchored at ``last_day + 1`` so that the latest as-of date sees every
    day of data (it is the date the fleet is scored at); it steps back while the date
    still has at least one day of data before it.
    """
    if step_days < 1:
        raise RedlineError("ML_AS_OF_INVALID", f"step_days={step_days} must be at least 1")
    if last_day < first_day:
        raise RedlineError(
            "ML_AS_OF_INVALID",
            f"last_day {last_day} is before first_day {first_day}; pass the first and last "
            f"day that have telemetry")
    out = []
    day = last_day + timedelta(days=1)
    while day > first_day:
        out.append(day)
        day -= timedelta(days=step_days)
    return sorted(out)


def _days_before(as_of: Column, days: int) -> Column:
    return F.date_sub(as_of, days)


def _vehicles(builds: DataFrame) -> DataFrame:
    """One build record per VIN (the latest published), with the coolant pump's origin."""
    latest = Window.partitionBy("vin").orderBy(F.col("event_time").desc(),
                                               F.col("event_id").desc())
    pump = F.get(F.filter("components", lambda c: c["component"] == F.lit(_PUMP)), 0)
    return (builds
            .withColumn("_rn", F.row_number().over(latest))
            .filter(F.col("_rn") == 1)
            .select("vin", "model", "plant", "build_date",
                    F.col("firmware_version").alias("_build_firmware"),
                    pump["supplier"].alias("coolant_pump_supplier"),
                    pump["lot"].alias("coolant_pump_lot")))


def _last_non_null(value: str) -> Column:
    """The value of the day's latest event where it is not null (max_by skips null
    orderings)."""
    return F.max_by(value, F.when(F.col(value).isNotNull(), F.col("event_time")))


def daily_readings(telemetry: DataFrame, dtc: DataFrame) -> DataFrame:
    """Per vehicle and day with telemetry or DTCs: sums and counts that windowed means can
    be rebuilt from, the day's last odometer reading and last reported firmware, and its
    number of telemetry records (``readings``; null on a day with DTCs only).

    Every feature is computed from these rows (``features_from_daily``), so the 10M-row
    telemetry is read once."""
    day = F.to_date("event_time").alias("day")
    signals = telemetry.groupBy("vin", day).agg(
        F.sum("coolant_temp_c").alias("coolant_sum"),
        F.count("coolant_temp_c").alias("coolant_n"),
        F.max("motor_temp_c").alias("motor_max"),
        F.sum("battery_temp_c").alias("battery_sum"),
        F.count("battery_temp_c").alias("battery_n"),
        _last_non_null("odometer_km").alias("odometer_last"),
        F.count(F.lit(1)).alias("readings"))
    codes = dtc.groupBy("vin", day).agg(F.count(F.lit(1)).alias("dtc_n"),
                                        _last_non_null("firmware_version").alias("fw_last"))
    return signals.join(codes, ["vin", "day"], "full")


def _windowed(keys: DataFrame, daily: DataFrame) -> DataFrame:
    """Aggregates of the days in [as_of - lookback, as_of) for each (vin, as_of_date)."""
    k, d = keys.alias("k"), daily.alias("d")
    as_of = F.col("k.as_of_date")
    joined = k.join(d, (F.col("k.vin") == F.col("d.vin"))
                    & (F.col("d.day") < as_of)
                    & (F.col("d.day") >= _days_before(as_of, _LOOKBACK_DAYS)))
    in_window = F.col("d.day") >= _days_before(as_of, WINDOW_DAYS)
    recent = F.col("d.day") >= _days_before(as_of, RISE_RECENT_DAYS)
    baseline = (~recent) & (F.col("d.day")
                            >= _days_before(as_of, RISE_RECENT_DAYS + RISE_BASELINE_DAYS))

    def mean(total: str, n: str, where: Column) -> Column:
        return F.try_divide(F.sum(F.when(where, F.col(total))),
                            F.sum(F.when(where, F.col(n))).cast("double"))

    return joined.groupBy(F.col("k.vin").alias("vin"), as_of.alias("as_of_date")).agg(
        mean("coolant_sum", "coolant_n", in_window).alias("mean_coolant_temp_c"),
        (mean("coolant_sum", "coolant_n", recent)
         - mean("coolant_sum", "coolant_n", baseline)).alias("coolant_temp_rise_c"),
        F.max(F.when(in_window, F.col("motor_max"))).alias("max_motor_temp_c"),
        mean("battery_sum", "battery_n", in_window).alias("mean_battery_temp_c"),
        F.sum(F.when(in_window, F.col("dtc_n"))).alias("_dtc_30d"))


def _latest(keys: DataFrame, daily: DataFrame) -> DataFrame:
    """Last odometer reading and last reported firmware before each as-of instant.

    The as-of instant is the as-of date's midnight, so the events before it are those of
    the days before it: an as-of join on days. As-of markers are sorted in with the days
    of their vehicle and pick up the last non-null value before them; a marker sorts
    before the day of its own date, which is in the future.
    """
    marker = keys.select("vin", F.col("as_of_date").alias("_d"), F.lit(0).alias("_k"),
                         "as_of_date", F.lit(None).cast("double").alias("_odo"),
                         F.lit(None).cast("string").alias("_fw"))
    days = daily.select("vin", F.col("day").alias("_d"), F.lit(1).alias("_k"),
                        F.lit(None).cast("date").alias("as_of_date"),
                        F.col("odometer_last").alias("_odo"), F.col("fw_last").alias("_fw"))
    upto = (Window.partitionBy("vin").orderBy("_d", "_k")
            .rowsBetween(Window.unboundedPreceding, Window.currentRow))
    return (marker.unionByName(days)
            .select("vin", "as_of_date", "_k",
                    F.last("_odo", ignorenulls=True).over(upto).alias("odometer_km"),
                    F.last("_fw", ignorenulls=True).over(upto).alias("_reported_firmware"))
            .filter(F.col("_k") == 0)
            .drop("_k"))


def vehicle_features(builds: DataFrame, telemetry: DataFrame, dtc: DataFrame,
                     claims: DataFrame, as_of_dates: Sequence[date]) -> DataFrame:
    """``features_from_daily`` of the daily readings of ``telemetry`` and ``dtc``."""
    return features_from_daily(builds, daily_readings(telemetry, dtc), claims, as_of_dates)


def telemetry_days(daily: DataFrame) -> tuple[date | None, date | None]:
    """(first, last) day with telemetry in ``daily`` (``daily_readings``); Nones if none."""
    return tuple(daily.where(F.col("readings") > 0).agg(F.min("day"), F.max("day")).first())


def features_from_daily(builds: DataFrame, daily: DataFrame, claims: DataFrame,
                        as_of_dates: Sequence[date]) -> DataFrame:
    """Features and label of every built, not yet failed vehicle at each as-of date.

    Inputs are the silver tables ``vehicle_builds`` and ``warranty_claims`` (only the
    columns used are required) and the ``daily_readings`` of telemetry and DTCs. The
    result has exactly the columns and types of ``schemas.tables.VEHICLE_FEATURES``:

    - ``firmware_version``: last firmware a DTC reported before the as-of instant, else
      the build firmware (vehicles take over-the-air updates): the version that
      gold.dim_vehicle_firmware's validity periods give for the instant just before the
      as-of instant. An update first seen at or after that instant does not show.
    - ``odometer_km``: last reading before the as-of instant (null without telemetry).
    - ``mean_coolant_temp_c``, ``max_motor_temp_c``, ``mean_battery_temp_c``,
      ``dtc_count_30d``: over the WINDOW_DAYS days before the as-of date.
    - ``coolant_temp_rise_c``: mean coolant temperature of the last RISE_RECENT_DAYS days
      minus that of the RISE_BASELINE_DAYS days before them (null if either is empty).
    """
    if not as_of_dates:
        raise RedlineError("ML_AS_OF_INVALID",
                           "as_of_dates is empty; pass at least one date (see as_of_dates())")
    spark = builds.sparkSession
    dates = spark.createDataFrame(
        [(d,) for d in sorted(set(as_of_dates))],
        StructType([StructField("as_of_date", DateType(), False)]))
    first_failure = claims.groupBy("vin").agg(F.min("failure_date").alias("_first_failure"))
    as_of = F.col("as_of_date")
    base = (_vehicles(builds).crossJoin(dates)
            .filter(F.col("build_date") < as_of)
            .join(first_failure, "vin", "left")
            .filter(F.col("_first_failure").isNull() | (F.col("_first_failure") > as_of)))
    # Only vehicles that sent telemetry or DTCs have readings; the others (most builds of
    # a plant never report) keep nulls, and need not enter the joins and the sort.
    keys = base.select("vin", "as_of_date").join(daily.select("vin").distinct(), "vin",
                                                 "left_semi")
    failed_soon = (F.col("_first_failure").isNotNull()
                   & (F.col("_first_failure") <= F.date_add(as_of, HORIZON_DAYS)))
    return (base
            .join(_windowed(keys, daily), ["vin", "as_of_date"], "left")
            .join(_latest(keys, daily), ["vin", "as_of_date"], "left")
            .select(
                "vin", "as_of_date", "model", "plant",
                F.coalesce("_reported_firmware", "_build_firmware").alias("firmware_version"),
                "coolant_pump_supplier", "coolant_pump_lot",
                F.datediff(as_of, "build_date").alias("age_days"),
                "odometer_km", "mean_coolant_temp_c", "coolant_temp_rise_c",
                "max_motor_temp_c", "mean_battery_temp_c",
                F.coalesce(F.col("_dtc_30d"), F.lit(0).cast("long")).alias("dtc_count_30d"),
                F.when(failed_soon, F.lit(1)).otherwise(F.lit(0)).alias(LABEL)))
