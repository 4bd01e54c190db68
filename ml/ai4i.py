"""AI4I 2020 process runs -> machine-failure model inputs (pure transform).

One row per process run (``udi``) of ``silver.ai4i_process``: the product's quality
variant, the five process measurements, three physical quantities derived from them and
the label. The derived quantities are the ones the data set's description names as the
drivers of its failure modes:

- ``temperature_difference_k`` = process - air temperature (heat dissipation);
- ``power_w`` = torque x angular speed = ``torque_nm * rotational_speed_rpm * 2 pi / 60``
  (power);
- ``overstrain_nm_min`` = ``tool_wear_min * torque_nm`` (overstrain).

The failure-mode flags (TWF, HDF, PWF, OSF, RNF) say *which* failure happened: they are
causes of ``machine_failure``, known only after the fact, and a model that saw them would
read the label. They are not carried into gold at all.

Nothing here reads or writes a table or builds a session; ``jobs/ai4i_features.py`` is
the gold job. PySpark is imported inside the transform, so that the pandas model
(``ml/classifier.py``) can use the column lists below without it.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

CATEGORICAL: tuple[str, ...] = ("type",)
"""Product quality variant: L, M or H."""
NUMERIC: tuple[str, ...] = (
    "air_temperature_k", "process_temperature_k", "rotational_speed_rpm", "torque_nm",
    "tool_wear_min", "temperature_difference_k", "power_w", "overstrain_nm_min")
FEATURES: tuple[str, ...] = CATEGORICAL + NUMERIC
"""The model's input columns, in order."""
LABEL = "machine_failure"
FAILURE_MODES: tuple[str, ...] = ("twf", "hdf", "pwf", "osf", "rnf")
"""Which failure happened: causes of the label, never features (not in gold)."""

_RPM_TO_RAD_PER_S = 2 * math.pi / 60


def features(process: DataFrame) -> DataFrame:
    """Rows of ``silver.ai4i_process`` as rows of ``gold.ai4i_features``.

    The result has exactly the columns and types of ``schemas.tables.AI4I_FEATURES``, one
    row per ``udi``: should a run be published twice under different event ids, its latest
    event (then the highest event id) is kept. ``machine_failure`` is 1 or 0.
    """
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    latest = Window.partitionBy("udi").orderBy(F.col("event_time").desc(),
                                               F.col("event_id").desc())
    torque, rpm = F.col("torque_nm"), F.col("rotational_speed_rpm")
    return (process
            .withColumn("_rn", F.row_number().over(latest))
            .filter(F.col("_rn") == 1)
            .select(
                "udi", "product_id", "type", "event_time", "air_temperature_k",
                "process_temperature_k", "rotational_speed_rpm", "torque_nm",
                "tool_wear_min",
                (F.col("process_temperature_k") - F.col("air_temperature_k"))
                .alias("temperature_difference_k"),
                (torque * rpm * F.lit(_RPM_TO_RAD_PER_S)).alias("power_w"),
                (F.col("tool_wear_min") * torque).alias("overstrain_nm_min"),
                F.col(LABEL).cast("int").alias(LABEL)))
