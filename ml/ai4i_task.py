"""The ai4i task: machine failure of an AI4I 2020 process run, from gold.ai4i_features.

The model and its fixed stratified 80/20 split (seed 0) are ``ml/classifier.py``; the
decision threshold is chosen on the training part only. Logged with the sklearn flavour
(skops, pyfunc output ``predict_proba``) and registered as ``<prefix>-ai4i-failure``,
alias ``challenger``; promotion compares F1 on the 20 % test part. Scoring writes every
process run with the champion's probability and predictive entropy, and the drift of
each day of process runs against the training part.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import mlflow
import numpy as np
import pandas as pd
import sklearn
import skops
from mlflow.models import ModelSignature
from mlflow.types import ColSpec, Schema, TensorSpec

from redline import catalog, lake
from redline.config import Config
from redline.ml import classifier, registry, scoring, tracking
from redline.ml.ai4i import FEATURES, LABEL
from redline.ml.tasks import AI4I, SCORE, TrainResult, log_drift_reference, shown
from redline.services.mlflow_server import tracking_uri

Progress = Callable[[str], None]

_TYPES = {"type": "string", "rotational_speed_rpm": "integer", "tool_wear_min": "integer"}


def signature() -> ModelSignature:
    inputs = Schema([ColSpec(_TYPES.get(c, "double"), c) for c in FEATURES])
    # pyfunc predict is predict_proba: column 1 is P(machine failure).
    return ModelSignature(inputs=inputs, outputs=Schema([TensorSpec(np.dtype("float64"),
                                                                    (-1, 2))]))


def load(spark, lake_root: str) -> pd.DataFrame:
    return catalog.read(spark, lake_root, catalog.AI4I_FEATURES).toPandas()


def held_out(spark, cfg: Config, subset: str | None = None) -> pd.DataFrame:
    """The test part of the fixed split."""
    return classifier.split(load(spark, cfg.lake_root))[1]


def load_model(model_uri: str) -> classifier.ThresholdedClassifier:
    return mlflow.sklearn.load_model(model_uri)


def evaluate(model_uri: str, frame: pd.DataFrame) -> float:
    """F1 of the failure class at the model's own threshold (the primary metric)."""
    return classifier.evaluate(load_model(model_uri), frame)["f1"]


def pip_requirements() -> list[str]:
    return [f"mlflow=={mlflow.__version__}", f"scikit-learn=={sklearn.__version__}",
            f"skops=={skops.__version__}", f"numpy=={np.__version__}",
            f"pandas=={pd.__version__}"]


def train(spark, cfg: Config, subset: str | None = None, progress: Progress = print,
          params: dict | None = None) -> TrainResult:
    """Fit on the training part, log to the ai4i experiment, register a challenger."""
    began = time.monotonic()
    frame = load(spark, cfg.lake_root)
    train_rows, test_rows = classifier.split(frame)
    progress(f"training on {len(train_rows)} process runs ({int(train_rows[LABEL].sum())} "
             f"failures), testing on {len(test_rows)} ({int(test_rows[LABEL].sum())})")
    model_name = AI4I.model_name(cfg)
    tracking.use_experiment(cfg, AI4I.name)
    with mlflow.start_run(run_name="ai4i-machine-failure") as run:
        model = classifier.fit(train_rows, params)
        metrics = classifier.evaluate(model, test_rows)
        metrics["train_seconds"] = round(time.monotonic() - began, 1)
        mlflow.log_params({"estimator": type(model.estimator_[-1]).__name__,
                           **model.estimator_[-1].get_params(),
                           "features": ",".join(FEATURES), "split": "stratified 80/20, "
                           "seed 0", "threshold_chosen_by": f"{classifier.CV_FOLDS}-fold "
                           "out-of-fold F1 on the training part"})
        tracking.log_table_input(spark, cfg.lake_root, catalog.AI4I_FEATURES)
        mlflow.log_metrics(metrics)
        p_test = model.predict_proba(test_rows[list(FEATURES)])[:, 1]
        importance = classifier.importance(model, test_rows)
        tracking.log_classifier_plots(test_rows[LABEL].to_numpy(), p_test,
                                      dict(zip(importance["feature"], importance["importance"])),
                                      "AI4I machine failure")
        log_drift_reference(train_rows.assign(
            **{SCORE: model.predict_proba(train_rows[list(FEATURES)])[:, 1]}),
            [*FEATURES, SCORE])
        info = tracking.log_sklearn(model, signature(), train_rows[list(FEATURES)].head(5),
                                    model_name, pip_requirements())
    version = str(info.registered_model_version)
    registry.name_challenger(cfg, model_name, version)
    progress(f"registered {model_name} version {version} as @{registry.CHALLENGER} (run "
             f"{run.info.run_id}): test {shown(metrics)}")
    return TrainResult(AI4I.name, model_name, version, run.info.run_id, metrics,
                       round(time.monotonic() - began, 1), model)


def score(spark, cfg: Config, progress: Progress = print) -> int:
    """Every process run with the champion into gold.ai4i_failure_scores, and the drift
    of each day of runs; rows written."""
    from pyspark.sql import functions as F
    from pyspark.sql.types import ArrayType, DoubleType

    model_name = AI4I.model_name(cfg)
    version = registry.require(cfg, model_name, registry.CHAMPION)
    mlflow.set_tracking_uri(tracking_uri(cfg))
    predict = mlflow.pyfunc.spark_udf(spark, registry.uri(model_name, version),
                                      result_type=ArrayType(DoubleType()), env_manager="local")
    entropy = scoring.entropy_udf()
    features = catalog.read(spark, cfg.lake_root, catalog.AI4I_FEATURES)
    scored = (features.withColumn(SCORE, predict(*FEATURES)[1])
              .withColumn("uncertainty", entropy(F.col(SCORE))).cache())
    try:
        table = catalog.AI4I_FAILURE_SCORES
        lake.overwrite(scored.select(
            "udi", "product_id", "event_time", F.col(SCORE).alias("failure_probability"),
            "uncertainty", F.lit(model_name).alias("model_name"),
            F.lit(version).alias("model_version"), F.current_timestamp().alias("scored_at")),
            cfg.lake_root, table)
        rows = scored.count()
        progress(f"{table.qualified_name}: {rows} process runs scored with {model_name} "
                 f"v{version}")
        run_id = registry.client(cfg).get_model_version(model_name, version).run_id
        scoring.write_drift(spark, cfg.lake_root, AI4I.name, model_name, version, run_id,
                            scored.select(F.to_date("event_time").alias("day"), *FEATURES,
                                          SCORE).toPandas(), "day", progress)
    finally:
        scored.unpersist()
    return rows
