"""The vehicle task: 30-day failure of a vehicle, trained on gold.vehicle_features.

The split is by time, never by row: the latest as-of dates are the test set, and a
training date is kept only if its whole label horizon ends before the first test date
(otherwise a failure would be seen in a training label and again in a test row). As-of
dates whose horizon runs past the end of the data have unknown labels and are left out.

The fitted scikit-learn pipeline is logged with the sklearn flavour (skops format,
explicit pip requirements, an explicit signature whose pyfunc output is
``predict_proba``) and registered as the task's model, alias ``challenger``
(``ml/registry.py`` promotes it). Scoring writes every as-of date of every vehicle with
the champion, its predictive entropy as the uncertainty, and the drift of each day.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, timedelta

import mlflow
import numpy as np
import pandas as pd
import sklearn
import skops
import skops.io
from mlflow.models import ModelSignature
from mlflow.types import ColSpec, Schema, TensorSpec
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.impute import SimpleImputer
from sklearn.inspection import permutation_importance
from sklearn.metrics import average_precision_score, log_loss, roc_auc_score
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder

from redline import catalog, lake
from redline.config import Config
from redline.errors import RedlineError
from redline.ml import registry, scoring, tracking
from redline.ml.features import CATEGORICAL, HORIZON_DAYS, LABEL, NUMERIC
from redline.ml.tasks import SCORE, VEHICLE, TrainResult, log_drift_reference, shown
from redline.services.mlflow_server import tracking_uri

TEST_FRACTION = 0.25
"""Share of the labelled as-of dates (the latest ones) held out for testing."""

HYPERPARAMETERS = {
    "learning_rate": 0.05,
    "max_iter": 200,
    "max_leaf_nodes": 15,
    "min_samples_leaf": 20,
    "l2_regularization": 1.0,
    "random_state": 0,
}

#: MLflow column types of the model's inputs, in the order the pipeline expects them.
_INPUT_TYPES = {**{c: "string" for c in CATEGORICAL}, "age_days": "integer",
                "odometer_km": "double", "mean_coolant_temp_c": "double",
                "coolant_temp_rise_c": "double", "max_motor_temp_c": "double",
                "mean_battery_temp_c": "double", "dtc_count_30d": "long"}
FEATURES: tuple[str, ...] = (*CATEGORICAL, *NUMERIC)


@dataclass(frozen=True)
class TimeSplit:
    train_dates: tuple[date, ...]
    test_dates: tuple[date, ...]
    observed_until: date
    """The latest as-of date: data exists for every day before it."""
    purged: bool = True
    """False when training labels may reach into the test period (short histories)."""


def time_split(feature_dates: Sequence[date], horizon_days: int = HORIZON_DAYS,
               test_fraction: float = TEST_FRACTION, purge: bool = True) -> TimeSplit:
    """Train and test as-of dates: labelled dates only, test last; with ``purge`` only
    training dates whose label horizon ends before the first test date."""
    dates = sorted(set(feature_dates))
    if not dates:
        raise RedlineError("ML_NO_FEATURES",
                           f"{catalog.VEHICLE_FEATURES.qualified_name} is empty; run `redline jobs run "
                           f"gold_vehicle_features` first")
    end = dates[-1]
    horizon = timedelta(days=horizon_days)
    labelled = [d for d in dates if d + horizon < end]
    n_test = max(1, round(len(labelled) * test_fraction))
    test = labelled[-n_test:]
    train = [d for d in labelled[:-n_test] if test and (not purge or d + horizon < test[0])]
    if not train:
        raise RedlineError(
            "ML_NOT_ENOUGH_HISTORY",
            f"{catalog.VEHICLE_FEATURES.qualified_name} spans as-of dates {dates[0]}..{end}: too short for a "
            f"{horizon_days}-day label plus a purged time split ({len(labelled)} labelled "
            f"dates, {n_test} held out); about {3 * horizon_days} days of telemetry are "
            f"needed")
    return TimeSplit(tuple(train), tuple(test), end, purge)


def pipeline() -> Pipeline:
    """One-hot categoricals (nulls are a category) into gradient-boosted trees.

    Numeric gaps are imputed with an indicator column, so "missing" stays a signal: the
    trees could handle NaN themselves, but a feature that is missing in every training
    row (e.g. a rolling statistic on a short history) makes their binning fail.
    """
    numeric = SimpleImputer(strategy="median", add_indicator=True, keep_empty_features=True)
    encode = ColumnTransformer(
        [("categorical", OneHotEncoder(handle_unknown="ignore", sparse_output=False),
          list(CATEGORICAL)),
         ("numeric", numeric, list(NUMERIC))],
        verbose_feature_names_out=False)
    return Pipeline([("encode", encode),
                     ("model", HistGradientBoostingClassifier(**HYPERPARAMETERS))])


def signature() -> ModelSignature:
    inputs = Schema([ColSpec(_INPUT_TYPES[c], c, required=False) for c in FEATURES])
    # pyfunc predict is predict_proba: column 1 is P(failure within the horizon).
    outputs = Schema([TensorSpec(np.dtype("float64"), (-1, 2))])
    return ModelSignature(inputs=inputs, outputs=outputs)


def pip_requirements() -> list[str]:
    return [f"mlflow=={mlflow.__version__}", f"scikit-learn=={sklearn.__version__}",
            f"skops=={skops.__version__}", f"numpy=={np.__version__}",
            f"pandas=={pd.__version__}"]


def _check_classes(y: pd.Series, where: str, dates: Sequence[date]) -> None:
    classes = sorted(y.unique().tolist())
    if len(classes) < 2:
        raise RedlineError(
            "ML_ONE_CLASS",
            f"the {where} set ({len(y)} rows, as-of dates {dates[0]}..{dates[-1]}) has only "
            f"{LABEL}={classes[0] if classes else 'none'}; a classifier needs failures and "
            f"non-failures: add history with warranty claims or lower TEST_FRACTION")


def _frame(spark, lake_root: str) -> pd.DataFrame:
    return catalog.read(spark, lake_root, catalog.VEHICLE_FEATURES).select(
        "vin", "as_of_date", *FEATURES, LABEL).toPandas()


def _split(frame: pd.DataFrame, progress: Callable[[str], None]) -> TimeSplit:
    dates = frame["as_of_date"].tolist()
    try:
        return time_split(dates)
    except RedlineError as exc:
        if exc.code != "ML_NOT_ENOUGH_HISTORY":
            raise
        # A short history has no room for a purge gap; train anyway, say so, and
        # record it with the run.
        progress(f"warning: {exc.message}. Training without the purge gap: training "
                 f"labels overlap the test period, so the test metrics are optimistic")
        return time_split(dates, purge=False)


def held_out(spark, cfg: Config, subset: str | None = None) -> pd.DataFrame:
    """The test rows of the time split of gold.vehicle_features as it is now."""
    frame = _frame(spark, cfg.lake_root)
    split = _split(frame, lambda _: None)
    return frame[frame["as_of_date"].isin(split.test_dates)]


def evaluate(model_uri: str, frame: pd.DataFrame) -> float:
    """Log loss of the model at ``model_uri`` on ``frame`` (the primary metric: a proper
    scoring rule, defined even when a short held-out window has no failure, unlike PR AUC)."""
    p = np.asarray(mlflow.pyfunc.load_model(model_uri).predict(frame[list(FEATURES)]))[:, 1]
    return float(log_loss(frame[LABEL], p, labels=[0, 1]))


def train(spark, cfg: Config, subset: str | None = None,
          progress: Callable[[str], None] = print) -> TrainResult:
    """Fit on gold.vehicle_features, log to the vehicle experiment, register a challenger."""
    began = time.monotonic()
    frame = _frame(spark, cfg.lake_root)
    split = _split(frame, progress)
    train_rows = frame[frame["as_of_date"].isin(split.train_dates)]
    test_rows = frame[frame["as_of_date"].isin(split.test_dates)]
    x_train, y_train = train_rows[list(FEATURES)], train_rows[LABEL]
    x_test, y_test = test_rows[list(FEATURES)], test_rows[LABEL]
    _check_classes(y_train, "training", split.train_dates)
    progress(f"training on {len(x_train)} rows ({split.train_dates[0]}..{split.train_dates[-1]}),"
             f" testing on {len(x_test)} ({split.test_dates[0]}..{split.test_dates[-1]})")

    model = pipeline().fit(x_train, y_train)
    p_test = model.predict_proba(x_test)[:, 1]
    metrics = {"n_train": float(len(x_train)), "n_test": float(len(x_test)),
               "base_rate_train": float(y_train.mean()), "base_rate": float(y_test.mean()),
               "log_loss": float(log_loss(y_test, p_test, labels=[0, 1]))}
    if y_test.nunique() == 2:
        metrics["roc_auc"] = float(roc_auc_score(y_test, p_test))
        metrics["pr_auc"] = float(average_precision_score(y_test, p_test))
    else:
        progress(f"test set has only {LABEL}={int(y_test.iloc[0])}: "
                 "ROC AUC and PR AUC are undefined and not logged")
    model_name = VEHICLE.model_name(cfg)
    tracking.use_experiment(cfg, VEHICLE.name)
    with mlflow.start_run(run_name="vehicle-failure-30d") as run:
        mlflow.log_params({
            "estimator": type(model[-1]).__name__, **HYPERPARAMETERS,
            "horizon_days": HORIZON_DAYS, "test_fraction": TEST_FRACTION,
            "purged_split": split.purged,
            "train_from": split.train_dates[0], "train_to": split.train_dates[-1],
            "test_from": split.test_dates[0], "test_to": split.test_dates[-1],
            "categorical": ",".join(CATEGORICAL), "numeric": ",".join(NUMERIC),
        })
        tracking.log_table_input(spark, cfg.lake_root, catalog.VEHICLE_FEATURES)
        mlflow.log_metrics(metrics)
        importances = permutation_importance(
            model, x_test, y_test, n_repeats=5, random_state=0,
            scoring="average_precision" if y_test.nunique() == 2 else "neg_log_loss")
        tracking.log_classifier_plots(y_test.to_numpy(), p_test, dict(zip(
            FEATURES, importances.importances_mean)), "vehicle failure in 30 days")
        log_drift_reference(train_rows.assign(
            **{SCORE: model.predict_proba(x_train)[:, 1]}), [*FEATURES, SCORE])
        info = tracking.log_sklearn(model, signature(), x_train.head(5), model_name,
                                    pip_requirements())
    version = str(info.registered_model_version)
    registry.name_challenger(cfg, model_name, version)
    progress(f"registered {model_name} version {version} as @{registry.CHALLENGER} "
             f"(run {run.info.run_id}): "
             f"{shown({k: v for k, v in metrics.items() if not k.startswith('n_')})}")
    return TrainResult(VEHICLE.name, model_name, version, run.info.run_id, metrics,
                       round(time.monotonic() - began, 1))


def score(spark, cfg: Config, progress: Callable[[str], None] = print) -> int:
    """Score every vehicle at every as-of date with the champion into
    gold.vehicle_risk_scores, and the drift of each as-of date; rows written."""
    from pyspark.sql import functions as F
    from pyspark.sql.types import ArrayType, DoubleType

    lake_root = cfg.lake_root
    model_name = VEHICLE.model_name(cfg)
    version = registry.require(cfg, model_name, registry.CHAMPION)
    features = catalog.read(spark, lake_root, catalog.VEHICLE_FEATURES)
    mlflow.set_tracking_uri(tracking_uri(cfg))
    # The version the alias pointed at is loaded by number, so the rows record exactly
    # the model that produced them even if the alias moves meanwhile.
    predict = mlflow.pyfunc.spark_udf(spark, registry.uri(model_name, version),
                                      result_type=ArrayType(DoubleType()), env_manager="local")
    entropy = scoring.entropy_udf()
    scored = (features.withColumn(SCORE, predict(*FEATURES)[1])
              .withColumn("uncertainty", entropy(F.col(SCORE))).cache())
    try:
        table = catalog.VEHICLE_RISK_SCORES
        lake.overwrite(scored.select(
            "vin", "as_of_date", F.col(SCORE).alias("failure_probability"), "uncertainty",
            F.lit(model_name).alias("model_name"), F.lit(version).alias("model_version"),
            F.current_timestamp().alias("scored_at")), lake_root, table)
        rows = scored.count()
        progress(f"{table.qualified_name}: {rows} rows (vehicles x as-of dates) scored "
                 f"with {model_name} v{version}")
        run_id = registry.client(cfg).get_model_version(model_name, version).run_id
        scoring.write_drift(spark, lake_root, VEHICLE.name, model_name, version, run_id,
                            scored.select("as_of_date", *FEATURES, SCORE).toPandas(),
                            "as_of_date", progress)
    finally:
        scored.unpersist()
    return rows
