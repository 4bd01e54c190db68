"""The cmapss task: remaining useful life of a turbofan, one model per data set.

Data: gold.cmapss_features (``ml/cmapss.py``) of one data set, the sensors kept by
gold.cmapss_sensor_stats, plus one-hot operating conditions where a data set has several
(FD002, FD004). Validation is by engine: ``VALIDATION_FRACTION`` of the training engines
(seed 0) never train; they are cut the way the test trajectories are (``rul.truncate``,
``VALIDATION_CUTS`` cuts each) and scored at their last remaining cycle, the test
protocol. The test engines' true RUL
is not in the lake and never needed: ``ml predict`` writes one prediction per test
engine, ``ml evaluate`` scores them against a true-RUL file given by path.

The model (``ml/rul.py``: an ensemble of GRUs) is logged with the pytorch flavour
(tensor signature: windows of cycles x features in, mean and spread out) and registered
as ``<prefix>-cmapss-fd00x-rul``, alias ``challenger``. The gradient-boosted baseline is
its own run in the same experiment, not registered.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import torch
from mlflow.models import ModelSignature
from mlflow.types import Schema, TensorSpec

from redline import catalog, lake
from redline.config import Config
from redline.errors import RedlineError
from redline.ml import registry, rul, tracking
from redline.ml.cmapss import kept_sensors
from redline.ml.tasks import CMAPSS, TrainResult, shown
from redline.services.mlflow_server import tracking_uri

VALIDATION_FRACTION = 0.2
VALIDATION_CUTS = 5
SEED = 0
Progress = Callable[[str], None]


def load(spark, lake_root: str, subset: str) -> tuple[pd.DataFrame, list[str]]:
    """The feature rows of ``subset`` and the sensors kept for it."""
    from pyspark.sql import functions as F

    stats = catalog.read(spark, lake_root, catalog.CMAPSS_SENSOR_STATS).where(
        F.col("dataset") == subset).collect()
    sensors = kept_sensors(stats, subset)
    frame = (catalog.read(spark, lake_root, catalog.CMAPSS_FEATURES)
             .where(F.col("dataset") == subset).toPandas())
    if frame.empty or not sensors:
        raise RedlineError(
            "ML_NO_FEATURES",
            f"gold.cmapss_features has no {subset} rows; `redline replay cmapss`, "
            f"`redline ingest --available-now` and `redline jobs run all` build them")
    return frame, sensors


def conditions(frame: pd.DataFrame) -> list[str]:
    """The operating conditions of the training engines when there are several."""
    found = sorted(frame.loc[frame["split"] == "train", "condition"].unique())
    return found if len(found) > 1 else []


def inputs(frame: pd.DataFrame, sensors: Sequence[str],
           known_conditions: Sequence[str]) -> tuple[pd.DataFrame, list[str]]:
    """``frame`` with the model's input columns, and their names: the kept sensors, the
    engine's age, and the operating condition one-hot where there are several."""
    frame, age = rul.add_age_column(frame)
    columns = [*sensors, *age]
    if known_conditions:
        frame, onehot = rul.add_condition_columns(frame, known_conditions)
        columns += onehot
    return frame, columns


def split(frame: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Training rows and the truncated validation engines: no engine in both.

    Each validation engine is cut ``VALIDATION_CUTS`` times (seeds 0, 1, ...), each cut a
    trajectory of its own (``engine_id`` ``<id>#<k>``), so that the validation figures
    average over where an engine is cut: one cut of 20 engines moved the RMSE by several
    cycles from seed to seed. With 20 % of the engines and 5 cuts there are about as many
    validation trajectories as test engines (FD001: 100, FD002: 260 against 259), so a
    PHM08 score, a sum, reads on the published scale."""
    train = frame[frame["split"] == "train"]
    fit_ids, validation_ids = rul.split_engines(train["engine_id"], VALIDATION_FRACTION,
                                                SEED)
    engines = train[train["engine_id"].isin(validation_ids)]
    cuts = [rul.truncate(engines, seed=SEED + k).assign(
        engine_id=lambda d, k=k: d["engine_id"] + f"#{k}") for k in range(VALIDATION_CUTS)]
    return train[train["engine_id"].isin(fit_ids)], pd.concat(cuts, ignore_index=True)


def held_out(spark, cfg: Config, subset: str) -> pd.DataFrame:
    """The truncated validation engines of ``subset`` (with the raw columns: every model
    rebuilds its own inputs from them)."""
    frame, _ = load(spark, cfg.lake_root, subset)
    return split(frame)[1]


def load_model(model_uri: str) -> rul.RulEnsemble:
    return mlflow.pytorch.load_model(model_uri, map_location="cpu").eval()


def predict_frame(model: rul.RulEnsemble, frame: pd.DataFrame) -> pd.DataFrame:
    """The model's prediction at each engine's last cycle in ``frame``."""
    frame, columns = inputs(frame, model.sensors, model.conditions)
    return rul.predict(model, frame, columns)


def evaluate(model_uri: str, frame: pd.DataFrame) -> float:
    """Validation RMSE (the primary metric) of the model at ``model_uri``."""
    scored = predict_frame(load_model(model_uri), frame)
    return rul.rmse(scored["rul_pred"], scored["rul"])


def permutation_importance(model: rul.RulEnsemble, frame: pd.DataFrame,
                           repeats: int = 3) -> dict[str, float]:
    """Increase of the RMSE over every validation window when one input is shuffled
    across windows (mean of ``repeats`` shuffles, seed 0)."""
    data, columns = inputs(frame, model.sensors, model.conditions)
    X, y, _ = rul.windows(data, columns, model.window)
    base = rul.rmse(_forward(model, X)[:, 0], y)
    rng = np.random.default_rng(SEED)
    out = {}
    for j, name in enumerate(columns):
        losses = []
        for _ in range(repeats):
            shuffled = X.copy()
            shuffled[:, :, j] = shuffled[rng.permutation(len(X)), :, j]
            losses.append(rul.rmse(_forward(model, shuffled)[:, 0], y))
        out[name] = float(np.mean(losses) - base)
    return out


def _forward(model: rul.RulEnsemble, X: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return model(torch.from_numpy(X)).numpy()


def signature(window: int, n_inputs: int) -> ModelSignature:
    return ModelSignature(
        inputs=Schema([TensorSpec(np.dtype("float32"), (-1, window, n_inputs))]),
        outputs=Schema([TensorSpec(np.dtype("float32"), (-1, 2))]))


def train(spark, cfg: Config, subset: str, progress: Progress = print,
          params: rul.RulParams | None = None) -> TrainResult:
    """Fit the GRU ensemble and the baseline on ``subset``, log both, register the
    ensemble as the challenger."""
    params = params or rul.RulParams()
    began = time.monotonic()
    torch.set_num_threads(max(1, torch.get_num_threads()))
    frame, sensors = load(spark, cfg.lake_root, subset)
    known = conditions(frame)
    fit_rows, validation = split(frame)
    fit_rows, columns = inputs(fit_rows, sensors, known)
    validation_in, _ = inputs(validation, sensors, known)
    progress(f"{subset}: training on {fit_rows['engine_id'].nunique()} engines "
             f"({len(fit_rows)} cycles), validating on {validation['engine_id'].nunique()} "
             f"cut trajectories of the other engines; {len(columns)} inputs, windows of {params.window} cycles, "
             f"{params.members} GRUs, {params.epochs} epochs")
    model_name = CMAPSS.model_name(cfg, subset)
    tracking.use_experiment(cfg, CMAPSS.name)
    history: list[dict[str, float]] = []

    def on_epoch(epoch: int, metrics: dict[str, float]) -> None:
        history.append(metrics)
        mlflow.log_metrics(metrics, step=epoch)
        progress(f"  epoch {epoch}/{params.epochs}: {shown(metrics)}")

    with mlflow.start_run(run_name=f"cmapss-{subset}-gru-ensemble") as run:
        mlflow.log_params({"subset": subset, "model": "GRU ensemble",
                           **{k: v for k, v in vars(params).items()},
                           "sensors": ",".join(sensors), "conditions": ",".join(known),
                           "rul_cap": rul.CAP, "validation_fraction": VALIDATION_FRACTION,
                           "validation_cuts": VALIDATION_CUTS, "split_seed": SEED})
        version_in = tracking.log_table_input(spark, cfg.lake_root, catalog.CMAPSS_FEATURES)
        model = rul.fit(fit_rows, columns, params, on_epoch=on_epoch,
                        validation_frame=validation_in)
        model.sensors, model.conditions = tuple(sensors), tuple(known)
        trained = round(time.monotonic() - began, 1)
        scored = predict_frame(model, validation)
        metrics = {"rmse": rul.rmse(scored["rul_pred"], scored["rul"]),
                   "phm08_score": rul.phm08_score(scored["rul_pred"], scored["rul"]),
                   "mean_spread": float(scored["rul_spread"].mean()),
                   "train_seconds": trained, "epochs_run": float(len(history))}
        mlflow.log_metrics(metrics)
        tracking.log_figure(tracking.learning_curves(
            [{k: v for k, v in h.items() if k.endswith("rmse")} for h in history],
            f"{subset} RMSE per epoch (cycles)"), "learning_curves")
        tracking.log_figure(tracking.predicted_vs_true(
            scored["rul"].to_numpy(), scored["rul_pred"].to_numpy(),
            f"{subset} validation engines at their last cycle"), "predicted_vs_true")
        importance = permutation_importance(model, validation)
        tracking.log_figure(tracking.importance(list(importance), list(importance.values()),
                                                f"{subset} permutation importance "
                                                "(RMSE increase)"), "feature_importance")
        example, _, _ = rul.windows(validation_in, columns, params.window, last_only=True)
        info = mlflow.pytorch.log_model(
            model, name="model", signature=signature(params.window, len(columns)),
            input_example=example[:2], registered_model_name=model_name,
            # The module itself (pickle), not a torch.export graph: it keeps the sensors,
            # conditions and window it was trained on, which prediction rebuilds inputs by.
            serialization_format="pickle",
            pip_requirements=[f"torch=={torch.__version__.split('+')[0]}",
                              f"mlflow=={mlflow.__version__}", f"numpy=={np.__version__}"])
    version = str(info.registered_model_version)
    registry.name_challenger(cfg, model_name, version)
    progress(f"registered {model_name} version {version} as @{registry.CHALLENGER} (run "
             f"{run.info.run_id}, {trained}s): validation {shown(metrics)}")
    baseline = _baseline(fit_rows, validation_in, columns, params, subset, version_in, progress)
    metrics.update({f"baseline_{k}": v for k, v in baseline.items()})
    return TrainResult(CMAPSS.name, model_name, version, run.info.run_id, metrics,
                       round(time.monotonic() - began, 1), model)


def _baseline(fit_rows: pd.DataFrame, validation: pd.DataFrame, columns: list[str],
              params: rul.RulParams, subset: str, input_version: int,
              progress: Progress) -> dict[str, float]:
    """The gradient-boosted baseline on the same engines, as its own run."""
    began = time.monotonic()
    with mlflow.start_run(run_name=f"cmapss-{subset}-gbt-baseline"):
        mlflow.log_params({"subset": subset, "model": "gradient-boosted trees on window "
                           "summaries", "window": params.window, **rul.BASELINE_HYPERPARAMETERS,
                           "input_table": catalog.CMAPSS_FEATURES.qualified_name,
                           "input_version": input_version})
        model = rul.fit_baseline(fit_rows, columns, params)
        scored = rul.predict_baseline(model, validation, columns, params.window)
        metrics = {"rmse": rul.rmse(scored["rul_pred"], scored["rul"]),
                   "phm08_score": rul.phm08_score(scored["rul_pred"], scored["rul"]),
                   "train_seconds": round(time.monotonic() - began, 1)}
        mlflow.log_metrics(metrics)
    progress(f"baseline (gradient-boosted trees): validation {shown(metrics)}")
    return metrics


def _test_engines(spark, cfg: Config, subset: str) -> pd.DataFrame:
    frame, _ = load(spark, cfg.lake_root, subset)
    test = frame[frame["split"] == "test"]
    if test.empty:
        raise RedlineError("ML_NO_TEST_ENGINES",
                           f"gold.cmapss_features has no {subset} test engines; replay "
                           f"test_{subset} (`redline replay cmapss`) and run the jobs")
    return test


def predictions(spark, cfg: Config, subset: str, alias: str = registry.CHAMPION,
                progress: Progress = print) -> tuple[pd.DataFrame, str, str]:
    """One predicted RUL per test engine of ``subset`` at its last cycle, by unit; with
    the model name and version used."""
    model_name = CMAPSS.model_name(cfg, subset)
    version = registry.require(cfg, model_name, alias)
    mlflow.set_tracking_uri(tracking_uri(cfg))
    test = _test_engines(spark, cfg, subset)
    progress(f"predicting {test['engine_id'].nunique()} {subset} test engines with "
             f"{model_name} v{version} (@{alias})")
    scored = predict_frame(load_model(registry.uri(model_name, version)), test)
    units = test.drop_duplicates("engine_id").set_index("engine_id")["unit_id"]
    scored = scored.assign(unit=scored["engine_id"].map(units)).sort_values("unit")
    return scored, model_name, version


def predict_file(spark, cfg: Config, subset: str, out: Path, alias: str = registry.CHAMPION,
                 progress: Progress = print) -> dict:
    """``out``: CSV ``unit,rul_pred``, one row per test engine."""
    scored, model_name, version = predictions(spark, cfg, CMAPSS.subset(subset), alias,
                                              progress)
    out.parent.mkdir(parents=True, exist_ok=True)
    scored[["unit", "rul_pred"]].to_csv(out, index=False, float_format="%.3f")
    return {"path": str(out), "rows": len(scored), "model_name": model_name,
            "model_version": version}


def read_labels(path: Path, engines: int) -> np.ndarray:
    """True RUL per test engine from a ``RUL_FD00x.txt`` file (one number per line)."""
    if not path.is_file():
        raise RedlineError("ML_LABELS_MISSING", f"no labels file {path}")
    values = []
    for n, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        try:
            values.append(float(line.split()[0]))
        except ValueError:
            raise RedlineError("ML_LABELS_INVALID", f"{path}:{n}: {line.strip()!r} is not a "
                                                    f"number of cycles") from None
    if len(values) != engines:
        raise RedlineError("ML_LABELS_INVALID",
                           f"{path} has {len(values)} values; the test set has {engines} "
                           f"engines (line i is the true RUL of unit i)")
    return np.asarray(values)


def evaluate_file(spark, cfg: Config, subset: str, labels: Path,
                  alias: str = registry.CHAMPION, progress: Progress = print) -> dict:
    """RMSE and PHM08 score of the test predictions against ``labels``."""
    subset = CMAPSS.subset(subset)
    scored, model_name, version = predictions(spark, cfg, subset, alias, progress)
    units = scored["unit"].to_numpy()
    if not np.array_equal(units, np.arange(1, len(units) + 1)):
        raise RedlineError("ML_LABELS_INVALID", f"{subset} test units are not 1..{len(units)}:"
                                                f" cannot pair them with the lines of {labels}")
    true = read_labels(labels, len(units))
    pred = scored["rul_pred"].to_numpy()
    return {"subset": subset, "engines": len(units), "rmse": rul.rmse(pred, true),
            "phm08_score": rul.phm08_score(pred, true), "model_name": model_name,
            "model_version": version}


def score(spark, cfg: Config, subsets: Sequence[str], progress: Progress = print) -> int:
    """Every engine of ``subsets`` at its last cycle, scored with each data set's champion
    through ``mlflow.pyfunc.spark_udf``, into gold.cmapss_rul_scores; rows written."""
    from pyspark.sql import functions as F
    from pyspark.sql.types import ArrayType, FloatType

    mlflow.set_tracking_uri(tracking_uri(cfg))
    parts = []
    for subset in subsets:
        model_name = CMAPSS.model_name(cfg, subset)
        version = registry.require(cfg, model_name, registry.CHAMPION)
        model_uri = registry.uri(model_name, version)
        model = load_model(model_uri)
        frame, _ = load(spark, cfg.lake_root, subset)
        data, columns = inputs(frame, model.sensors, model.conditions)
        X, _, keys = rul.windows(data, columns, model.window, last_only=True)
        engines = frame.drop_duplicates("engine_id").set_index("engine_id")
        rows = keys.assign(dataset=subset, split=keys["engine_id"].map(engines["split"]),
                           unit_id=keys["engine_id"].map(engines["unit_id"]).astype("int32"),
                           cycle=keys["cycle"].astype("int32"),
                           windows=list(X.reshape(len(X), -1)))
        predict = mlflow.pyfunc.spark_udf(spark, model_uri, result_type=ArrayType(FloatType()),
                                          env_manager="local")
        scored = spark.createDataFrame(rows).withColumn("_out", predict("windows"))
        parts.append(scored.select(
            "engine_id", "dataset", "split", "unit_id", "cycle",
            F.greatest(F.col("_out")[0], F.lit(0.0)).cast("double").alias("rul_pred"),
            F.col("_out")[1].cast("double").alias("rul_spread"),
            F.lit(model_name).alias("model_name"), F.lit(version).alias("model_version"),
            F.current_timestamp().alias("scored_at")))
        progress(f"{subset}: {len(rows)} engines scored with {model_name} v{version}")
    table = catalog.CMAPSS_RUL_SCORES
    out = parts[0]
    for part in parts[1:]:
        out = out.unionByName(part)
    lake.overwrite(out, cfg.lake_root, table)
    written = catalog.read(spark, cfg.lake_root, table).count()
    progress(f"{table.qualified_name}: {written} engines")
    return written
