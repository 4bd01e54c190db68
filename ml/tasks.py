"""The model tasks: what each predicts, its registered model and how it is judged.

- ``vehicle``: 30-day failure of a vehicle in the simulated fleet (gold.vehicle_features).
- ``cmapss``: remaining useful life of a C-MAPSS turbofan (gold.cmapss_features), one
  registered model per data set (FD001-FD004).
- ``ai4i``: machine failure of an AI4I 2020 process run (gold.ai4i_features).

Each task logs to its own experiment (``<mlflow.experiment>-<task>``) and is promoted by
its primary metric on held-out data (``ml/registry.py``). The training, scoring and
held-out data of a task live in its module (``ml/<task>_task.py``).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field, fields

import mlflow
import pandas as pd

from redline.config import Config
from redline.errors import RedlineError
from redline.ml import drift

DRIFT_REFERENCE = "drift_reference.json"
"""Run artifact: the training window's distribution of every feature and of the score."""
SCORE = "score"
"""Name of the model's score in the drift reference and gold.model_drift."""


@dataclass(frozen=True)
class Task:
    name: str
    description: str
    metric: str
    """Primary metric: promotion compares champion and challenger by it."""
    higher_is_better: bool
    model: str
    """Registered model name after the experiment prefix; ``{subset}`` is filled in."""
    subsets: tuple[str, ...] = ()

    def model_name(self, cfg: Config, subset: str | None = None) -> str:
        return f"{cfg.mlflow.experiment}-" + self.model.format(
            subset=(self.subset(subset) or "").lower())

    def subset(self, subset: str | None) -> str | None:
        """``subset`` checked against the task's (None for a task without subsets)."""
        if not self.subsets:
            if subset:
                raise RedlineError("ML_SUBSET", f"task {self.name} has no subsets "
                                                f"(--subset {subset})")
            return None
        if subset is None:
            raise RedlineError("ML_SUBSET", f"task {self.name} needs --subset, one of "
                                            f"{', '.join(self.subsets)}")
        upper = subset.upper()
        if upper not in self.subsets:
            raise RedlineError("ML_SUBSET", f"no subset {subset!r} for {self.name}; "
                                            f"one of {', '.join(self.subsets)}")
        return upper


VEHICLE = Task("vehicle", "30-day failure of a vehicle (simulated fleet)",
               "log_loss", False, "vehicle-failure-30d")
CMAPSS = Task("cmapss", "remaining useful life of a C-MAPSS turbofan engine",
              "rmse", False, "cmapss-{subset}-rul", ("FD001", "FD002", "FD003", "FD004"))
AI4I = Task("ai4i", "machine failure of an AI4I 2020 process run", "f1", True,
            "ai4i-failure")
TASKS: dict[str, Task] = {t.name: t for t in (VEHICLE, CMAPSS, AI4I)}


def get(name: str) -> Task:
    try:
        return TASKS[name]
    except KeyError:
        raise RedlineError("ML_TASK_UNKNOWN",
                           f"no task {name!r}; tasks: {', '.join(TASKS)}") from None


@dataclass(frozen=True)
class TrainResult:
    task: str
    model_name: str
    version: str
    run_id: str
    metrics: dict[str, float] = field(default_factory=dict)
    seconds: float = 0.0
    model: object = field(default=None, repr=False, compare=False)
    """The fitted model in memory (what was logged), for callers that go on using it."""

    def as_dict(self) -> dict:
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name != "model"}


def log_drift_reference(frame: pd.DataFrame, columns: Iterable[str]) -> None:
    """Log the training distribution of ``columns`` (features and ``SCORE``)."""
    refs = drift.references(frame, list(columns))
    mlflow.log_dict({name: ref.to_dict() for name, ref in refs.items()}, DRIFT_REFERENCE)


def drift_reference(run_id: str) -> dict[str, drift.Reference]:
    data = mlflow.artifacts.load_dict(f"runs:/{run_id}/{DRIFT_REFERENCE}")
    return {name: drift.Reference.from_dict(d) for name, d in data.items()}


def shown(metrics: dict[str, float]) -> str:
    return ", ".join(f"{k}={v:.4g}" for k, v in metrics.items())


def to_json(value) -> str:
    return json.dumps(value, default=str, sort_keys=True)
