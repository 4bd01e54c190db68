"""Build gold.vehicle_features, train the 30-day failure model on it, register it.

The split is by time, never by row: the latest as-of dates are the test set, and a
training date is kept only if its whole label horizon ends before the first test date
(otherwise a failure would be seen in a training label and again in a test row). As-of
dates whose horizon runs past the end of the data have unknown labels and are left out.

The fitted scikit-learn pipeline is logged with the sklearn flavour (skops format,
explicit pip requirements, an explicit signature whose pyfunc output is
``predict_proba``), registered as ``cfg.mlflow.model_name`` and made the ``champion``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta

import mlflow
import numpy as np
import pandas as pd
import sklearn
import skops
import skops.io
from mlflow import MlflowClient
from mlflow.models import ModelSignature
from mlflow.types import ColSpec, Schema, TensorSpec
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.impute import SimpleImputer
from sklearn.metrics import average_precision_score, roc_auc_score
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder

from redline import catalog
from redline.config import Config
from redline.errors import RedlineError
from redline.ml.features import CATEGORICAL, HORIZON_DAYS, LABEL, NUMERIC

CHAMPION = "champion"
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
class TrainResult:
    run_id: str
    model_name: str
    version: str
    metrics: dict[str, float] = field(default_factory=dict)


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


def train(spark, cfg: Config, lake_root: str | None = None,
          progress: Callable[[str], None] = print) -> TrainResult:
    """Fit on gold.vehicle_features, log to MLflow, register and promote to champion."""
    lake_root = lake_root or cfg.lake_root
    table = catalog.VEHICLE_FEATURES
    frame = catalog.read(spark, lake_root, table).select(
        "as_of_date", *FEATURES, LABEL).toPandas()
    dates = frame["as_of_date"].tolist()
    try:
        split = time_split(dates)
    except RedlineError as exc:
        if exc.code != "ML_NOT_ENOUGH_HISTORY":
            raise
        # A short history (the 60-day demo) has no room for a purge gap; train anyway,
        # say so, and record it with the run.
        split = time_split(dates, purge=False)
        progress(f"warning: {exc.message}. Training without the purge gap: training "
                 f"labels overlap the test period, so the test metrics are optimistic")
    train_rows = frame[frame["as_of_date"].isin(split.train_dates)]
    test_rows = frame[frame["as_of_date"].isin(split.test_dates)]
    x_train, y_train = train_rows[list(FEATURES)], train_rows[LABEL]
    x_test, y_test = test_rows[list(FEATURES)], test_rows[LABEL]
    _check_classes(y_train, "training", split.train_dates)
    progress(f"training on {len(x_train)} rows ({split.train_dates[0]}..{split.train_dates[-1]}),"
             f" testing on {len(x_test)} ({split.test_dates[0]}..{split.test_dates[-1]})")

    model = pipeline().fit(x_train, y_train)
    metrics = {"n_train": float(len(x_train)), "n_test": float(len(x_test)),
               "base_rate_train": float(y_train.mean()), "base_rate": float(y_test.mean())}
    if y_test.nunique() == 2:
        p_test = model.predict_proba(x_test)[:, 1]
        metrics["roc_auc"] = float(roc_auc_score(y_test, p_test))
        metrics["pr_auc"] = float(average_precision_score(y_test, p_test))
    else:
        progress(f"test set has only {LABEL}={int(y_test.iloc[0])}: "
                 "ROC AUC and PR AUC are undefined and not logged")

    mlflow.set_tracking_uri(cfg.mlflow.uri)
    mlflow.set_experiment(cfg.mlflow.experiment)
    with mlflow.start_run(run_name="vehicle-failure-30d") as run:
        mlflow.log_params({
            "estimator": type(model[-1]).__name__, **HYPERPARAMETERS,
            "horizon_days": HORIZON_DAYS, "test_fraction": TEST_FRACTION,
            "purged_split": split.purged,
            "train_from": split.train_dates[0], "train_to": split.train_dates[-1],
            "test_from": split.test_dates[0], "test_to": split.test_dates[-1],
            "categorical": ",".join(CATEGORICAL), "numeric": ",".join(NUMERIC),
        })
        mlflow.log_metrics(metrics)
        info = mlflow.sklearn.log_model(
            model, name="model",
            serialization_format=mlflow.sklearn.SERIALIZATION_FORMAT_SKOPS,
            skops_trusted_types=skops.io.get_untrusted_types(data=skops.io.dumps(model)),
            pip_requirements=pip_requirements(),
            signature=signature(),
            pyfunc_predict_fn="predict_proba",
            registered_model_name=cfg.mlflow.model_name,
        )
    version = str(info.registered_model_version)
    MlflowClient(cfg.mlflow.uri).set_registered_model_alias(
        cfg.mlflow.model_name, CHAMPION, version)
    shown = ", ".join(f"{k}={v:.3f}" for k, v in metrics.items() if not k.startswith("n_"))
    progress(f"registered {cfg.mlflow.model_name} version {version} as @{CHAMPION} "
             f"(run {run.info.run_id}): {shown}")
    return TrainResult(run.info.run_id, cfg.mlflow.model_name, version, metrics)
