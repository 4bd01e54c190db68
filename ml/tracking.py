"""MLflow as data scientists use it: one experiment per task, lineage, plots.

Every training run logs to the experiment of its task (``<mlflow.experiment>-<task>``),
records the Delta table and version it trained on (``mlflow.log_input``: the run page
links the model to the exact data) and logs its plots as figures. The figures are built
here from plain arrays; the training modules hand over numbers only.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import matplotlib

matplotlib.use("Agg")  # no display: figures are rendered to files for MLflow

import matplotlib.pyplot as plt  # noqa: E402
import mlflow  # noqa: E402
import numpy as np  # noqa: E402

from redline import catalog  # noqa: E402
from redline.catalog import Table  # noqa: E402
from redline.config import Config  # noqa: E402
from redline.services.mlflow_server import tracking_uri  # noqa: E402

if TYPE_CHECKING:
    from matplotlib.figure import Figure
    from pyspark.sql import SparkSession


def experiment_name(cfg: Config, task: str) -> str:
    return f"{cfg.mlflow.experiment}-{task}"


def use_experiment(cfg: Config, task: str) -> str:
    """Point the MLflow client at the server and the task's experiment; its name."""
    mlflow.set_tracking_uri(tracking_uri(cfg))
    name = experiment_name(cfg, task)
    mlflow.set_experiment(name)
    return name


def delta_version(spark: SparkSession, lake_root: str, table: Table) -> int:
    from delta.tables import DeltaTable

    path = catalog.location(lake_root, table)
    return int(DeltaTable.forPath(spark, path).history(1).first()["version"])


def log_table_input(spark: SparkSession, lake_root: str, table: Table,
                    context: str = "training") -> int:
    """Log ``table`` at its current Delta version as the active run's input; the version."""
    version = delta_version(spark, lake_root, table)
    with warnings.catch_warnings():
        # MLflow hints that integer columns cannot hold missing values: the catalog's
        # schema already says which columns are nullable.
        warnings.filterwarnings("ignore", message=".*integer column", category=UserWarning)
        dataset = mlflow.data.load_delta(path=catalog.location(lake_root, table),
                                         version=str(version), name=table.qualified_name)
        mlflow.log_input(dataset, context=context)
    mlflow.log_params({"input_table": table.qualified_name, "input_version": version})
    return version


def log_epochs(history: Sequence[Mapping[str, float]]) -> None:
    """Per-epoch metrics, each at its epoch as the step."""
    for epoch, metrics in enumerate(history, 1):
        mlflow.log_metrics({f"epoch_{k}": float(v) for k, v in metrics.items()}, step=epoch)


def log_figure(figure: Figure, name: str) -> None:
    mlflow.log_figure(figure, f"plots/{name}.png")
    plt.close(figure)


def learning_curves(history: Sequence[Mapping[str, float]], title: str) -> Figure:
    figure, ax = plt.subplots(figsize=(6, 4))
    epochs = np.arange(1, len(history) + 1)
    for key in sorted({k for h in history for k in h}):
        ax.plot(epochs, [h.get(key, np.nan) for h in history], label=key)
    ax.set(xlabel="epoch", ylabel="value", title=title)
    ax.legend()
    figure.tight_layout()
    return figure


def predicted_vs_true(true: np.ndarray, predicted: np.ndarray, title: str,
                      unit: str = "cycles") -> Figure:
    figure, ax = plt.subplots(figsize=(5, 5))
    ax.scatter(true, predicted, s=10, alpha=0.6)
    top = float(max(np.max(true), np.max(predicted), 1.0))
    ax.plot([0, top], [0, top], color="grey", linestyle="--", label="perfect")
    ax.set(xlabel=f"true RUL ({unit})", ylabel=f"predicted RUL ({unit})", title=title)
    ax.legend()
    figure.tight_layout()
    return figure


def pr_curve(precision: np.ndarray, recall: np.ndarray, average_precision: float,
             title: str) -> Figure:
    figure, ax = plt.subplots(figsize=(5, 4))
    ax.step(recall, precision, where="post")
    ax.set(xlabel="recall", ylabel="precision", xlim=(0, 1), ylim=(0, 1.02),
           title=f"{title} (AP {average_precision:.3f})")
    figure.tight_layout()
    return figure


def calibration(prob_true: np.ndarray, prob_pred: np.ndarray, title: str) -> Figure:
    figure, ax = plt.subplots(figsize=(5, 5))
    ax.plot([0, 1], [0, 1], color="grey", linestyle="--", label="perfectly calibrated")
    ax.plot(prob_pred, prob_true, marker="o", label="model")
    ax.set(xlabel="mean predicted probability", ylabel="observed failure rate",
           title=title)
    ax.legend()
    figure.tight_layout()
    return figure


def importance(features: Sequence[str], values: Sequence[float], title: str) -> Figure:
    order = np.argsort(values)
    figure, ax = plt.subplots(figsize=(6, max(3, 0.3 * len(features))))
    ax.barh(np.asarray(features)[order], np.asarray(values)[order])
    ax.set(xlabel="importance", title=title)
    figure.tight_layout()
    return figure


def log_classifier_plots(y_true: np.ndarray, probability: np.ndarray,
                         importances: Mapping[str, float], title: str) -> None:
    """PR curve, calibration plot and feature importance of a binary classifier."""
    from sklearn.calibration import calibration_curve
    from sklearn.metrics import average_precision_score, precision_recall_curve

    if len(np.unique(y_true)) == 2:
        precision, recall, _ = precision_recall_curve(y_true, probability)
        log_figure(pr_curve(precision, recall, average_precision_score(y_true, probability),
                            f"{title}: precision-recall"), "pr_curve")
        prob_true, prob_pred = calibration_curve(y_true, probability, n_bins=10,
                                                 strategy="quantile")
        log_figure(calibration(prob_true, prob_pred, f"{title}: calibration"), "calibration")
    log_figure(importance(list(importances), list(importances.values()),
                          f"{title}: permutation importance"), "feature_importance")


def log_sklearn(model, signature, input_example, registered_model_name: str,
                pip_requirements: Sequence[str]):
    """Log a scikit-learn model (skops format, predict_proba as pyfunc) and register it."""
    import skops.io

    return mlflow.sklearn.log_model(
        model, name="model",
        serialization_format=mlflow.sklearn.SERIALIZATION_FORMAT_SKOPS,
        skops_trusted_types=skops.io.get_untrusted_types(data=skops.io.dumps(model)),
        pip_requirements=list(pip_requirements), signature=signature,
        input_example=input_example, pyfunc_predict_fn="predict_proba",
        registered_model_name=registered_model_name)
