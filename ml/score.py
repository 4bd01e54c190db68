"""Batch scoring: the champion model over the latest as-of date of every vehicle."""

from __future__ import annotations

from collections.abc import Callable

import mlflow
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException
from pyspark.sql import functions as F
from pyspark.sql.types import ArrayType, DoubleType

from redline import catalog, lake
from redline.config import Config
from redline.errors import RedlineError
from redline.ml.train import CHAMPION, FEATURES


def champion_version(cfg: Config) -> str:
    """Version of ``cfg.mlflow.model_name`` that carries the champion alias."""
    try:
        mv = MlflowClient(cfg.mlflow.uri).get_model_version_by_alias(
            cfg.mlflow.model_name, CHAMPION)
    except MlflowException as exc:
        raise RedlineError(
            "ML_NO_CHAMPION",
            f"registered model {cfg.mlflow.model_name!r} has no @{CHAMPION} version at "
            f"{cfg.mlflow.uri}: run `redline ml train` first ({exc.message})") from None
    return str(mv.version)


def score(spark, cfg: Config, lake_root: str | None = None,
          progress: Callable[[str], None] = print) -> int:
    """Score every vehicle at the latest as-of date, overwrite gold.vehicle_risk_scores,
    return the number of rows written."""
    lake_root = lake_root or cfg.lake_root
    version = champion_version(cfg)
    features = catalog.read(spark, lake_root, catalog.VEHICLE_FEATURES)
    as_of = features.agg(F.max("as_of_date")).first()[0]
    if as_of is None:
        raise RedlineError("TABLE_EMPTY",
                           f"{catalog.VEHICLE_FEATURES.qualified_name} has no rows; run "
                           f"`redline jobs run gold_vehicle_features` first")
    mlflow.set_tracking_uri(cfg.mlflow.uri)
    # The version the alias pointed at is loaded by number, so the rows record exactly
    # the model that produced them even if the alias moves meanwhile.
    predict = mlflow.pyfunc.spark_udf(
        spark, f"models:/{cfg.mlflow.model_name}/{version}",
        result_type=ArrayType(DoubleType()), env_manager="local")
    scores = (features.filter(F.col("as_of_date") == F.lit(as_of))
              .select("vin", "as_of_date",
                      predict(*FEATURES)[1].alias("failure_probability"),
                      F.lit(cfg.mlflow.model_name).alias("model_name"),
                      F.lit(version).alias("model_version"),
                      F.current_timestamp().alias("scored_at")))
    table = catalog.VEHICLE_RISK_SCORES
    lake.overwrite(scores, lake_root, table)
    rows = catalog.read(spark, lake_root, table).count()
    progress(f"{catalog.VEHICLE_RISK_SCORES.qualified_name}: {rows} vehicles scored as of {as_of} with "
             f"{cfg.mlflow.model_name} v{version}")
    return rows
