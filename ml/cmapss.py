"""C-MAPSS turbofan cycles -> model inputs, by the standard protocol (pure transforms).

- **Operating condition.** The three operating settings (altitude, Mach number, throttle
  resolver angle) cluster around one point in FD001/FD003 and six in FD002/FD004; the
  condition is the rounded triple ``"<op1>_<op2 x 100>_<op3>"`` (e.g. ``"42_84_100"``),
  signs dropped so the noise around 0 (``-0.0009``) is one condition.
- **Normalisation.** Every sensor is z-scored per data set and condition with the mean and
  standard deviation of that data set's *training* engines (the test engines are
  normalised with the training statistics, never their own). A sensor with no spread in
  a condition scores 0 there.
- **Sensors without variance are dropped** by caret's near-zero-variance rule (Kuhn,
  *Applied Predictive Modeling*, 2013, s. 3.5): in some condition the most frequent value
  is more than 19 times as frequent as the second (``FREQ_RATIO``) and distinct values
  are under 10 % of the rows (``UNIQUE_PERCENT``), or there is one value only. On FD001
  this drops sensors 1, 5, 6, 10, 16, 18 and 19, the set the literature drops by hand.
  ``gold.cmapss_sensor_stats`` records every statistic and the ``kept`` verdict; the
  features table keeps every sensor column (z-scored) and models read ``kept_sensors``.
- **Target.** Piecewise-linear remaining useful life, ``rul_target = min(rul, RUL_CAP)``
  with ``rul = last_cycle - cycle`` on training engines (which run to failure). A test
  engine stops before failure; its RUL is what is predicted, so it is null there.

Nothing here reads or writes a table; ``jobs/cmapss_features.py`` is the gold job.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from redline.schemas.tables import CMAPSS_FEATURES, CMAPSS_SENSOR_STATS, CMAPSS_SENSORS

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame

RUL_CAP = 125
"""Cap of the piecewise-linear RUL target (Li, Ding and Sun, 2018, use 125)."""
FREQ_RATIO = 19.0
"""Near-zero variance: most frequent / second most frequent value above this (95/5)."""
UNIQUE_PERCENT = 10.0
"""... and distinct values under this percentage of the rows."""
SENSORS: tuple[str, ...] = CMAPSS_SENSORS
TRAIN = "train"


def condition(op1: Column, op2: Column, op3: Column) -> Column:
    """The operating condition of a cycle: its three settings rounded, as one string."""
    from pyspark.sql import functions as F

    def part(c: Column) -> Column:
        return F.abs(F.round(c)).cast("int").cast("string")

    return F.concat_ws("_", part(op1), part(op2 * 100), part(op3))


def with_condition(cycles: DataFrame) -> DataFrame:
    from pyspark.sql import functions as F

    return cycles.withColumn("condition", condition(
        F.col("op_setting_1"), F.col("op_setting_2"), F.col("op_setting_3")))


def sensor_stats(cycles: DataFrame) -> DataFrame:
    """gold.cmapss_sensor_stats from the cycles of training engines (any split may be
    passed; only ``split = 'train'`` rows count)."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    train = with_condition(cycles).where(F.col("split") == TRAIN)
    long = train.select("dataset", "condition", F.explode(F.array(*(
        F.struct(F.lit(s).alias("sensor"), F.col(s).alias("value")) for s in SENSORS)))
        .alias("r")).select("dataset", "condition", "r.sensor", "r.value")
    group = ["dataset", "condition", "sensor"]
    moments = long.groupBy(*group).agg(
        F.count("*").alias("rows"), F.mean("value").alias("mean"),
        F.coalesce(F.stddev_samp("value"), F.lit(0.0)).alias("std"))
    counts = long.groupBy(*group, "value").agg(F.count("*").alias("n"))
    by_freq = Window.partitionBy(*group).orderBy(F.col("n").desc(), F.col("value"))
    top = (counts.withColumn("_rank", F.row_number().over(by_freq))
           .groupBy(*group).agg(
               F.count("*").alias("distinct_values"),
               F.max(F.when(F.col("_rank") == 1, F.col("n"))).alias("top_count"),
               F.coalesce(F.max(F.when(F.col("_rank") == 2, F.col("n"))),
                          F.lit(0)).cast("long").alias("second_count")))
    # A constant column's sample deviation can come out as rounding noise, not 0.
    stats = moments.join(top, group).withColumn(
        "std", F.when(F.col("distinct_values") == 1, F.lit(0.0)).otherwise(F.col("std"))
    ).withColumn("near_zero_variance", near_zero_variance(
        F.col("rows"), F.col("distinct_values"), F.col("top_count"), F.col("second_count")))
    anywhere = Window.partitionBy("dataset", "sensor")
    return (stats.withColumn("kept", ~F.max("near_zero_variance").over(anywhere))
            .select(*(F.col(f.name).cast(f.dataType) for f in CMAPSS_SENSOR_STATS.fields)))


def near_zero_variance(rows: Column, distinct: Column, top: Column, second: Column) -> Column:
    """caret's rule: one value only, or a dominant value and few distinct values."""
    from pyspark.sql import functions as F

    return (second == 0) | (
        (top > F.lit(FREQ_RATIO) * second)
        & (distinct * 100.0 < F.lit(UNIQUE_PERCENT) * rows))


def features(cycles: DataFrame, stats: DataFrame) -> DataFrame:
    """gold.cmapss_features: every cycle with its condition, z-scored sensors and target.

    Raises when a cycle's data set and condition have no training statistics (a test file
    replayed without its training file, or an operating condition training never saw):
    such a cycle cannot be normalised, and is not silently left null.
    """
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    wide = stats.groupBy("dataset", "condition").pivot("sensor", list(SENSORS)).agg(
        F.first("mean").alias("mean"), F.first("std").alias("std"))
    rows = with_condition(cycles).join(wide, ["dataset", "condition"], "left")
    engine = Window.partitionBy("engine_id")
    zscored = [F.when(F.col(f"{s}_std") > 0,
                      (F.col(s) - F.col(f"{s}_mean")) / F.col(f"{s}_std"))
               .otherwise(F.lit(0.0)).alias(s) for s in SENSORS]
    rul = F.when(F.col("split") == TRAIN, F.col("last_cycle") - F.col("cycle"))
    out = (rows.withColumn("last_cycle", F.max("cycle").over(engine))
           .withColumn("_normalised", F.col(f"{SENSORS[0]}_mean").isNotNull())
           .select("engine_id", "dataset", "split", "unit_id", "cycle", "condition",
                   "op_setting_1", "op_setting_2", "op_setting_3", *zscored, "last_cycle",
                   rul.alias("rul"), F.when(rul.isNotNull(), F.least(rul, F.lit(RUL_CAP)))
                   .alias("rul_target"),
                   "_normalised"))
    return out


def unnormalised(frame: DataFrame) -> DataFrame:
    """Rows of ``features`` output lacking training statistics (see ``features``)."""
    return frame.where(~frame["_normalised"])


def finished(frame: DataFrame) -> DataFrame:
    """``features`` output in the gold schema."""
    from pyspark.sql import functions as F

    return frame.select(*(F.col(f.name).cast(f.dataType) for f in CMAPSS_FEATURES.fields))


def kept_sensors(stats_rows: Sequence, dataset: str) -> list[str]:
    """The sensors kept as features of ``dataset``, in sensor order, from collected
    ``gold.cmapss_sensor_stats`` rows (any objects with dataset, sensor, kept)."""
    kept = {r["sensor"] for r in stats_rows if r["dataset"] == dataset and r["kept"]}
    return [s for s in SENSORS if s in kept]
