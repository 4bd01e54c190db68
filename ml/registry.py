"""Champion and challenger: every training registers a challenger; promotion is earned.

A training run registers a new version of the task's model and points the
``challenger`` alias at it. ``promote`` scores the challenger and the current champion
on the same held-out data by the task's primary metric and moves ``champion`` to the
challenger only if it is strictly better (the first challenger of a model becomes
champion: there is nothing to beat). Either way the decision says why, and it is kept
on the challenger version as tags, so the registry tells the story of every promotion.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass

import mlflow
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from redline.config import Config
from redline.errors import RedlineError
from redline.services.mlflow_server import tracking_uri

CHAMPION = "champion"
CHALLENGER = "challenger"


@dataclass(frozen=True)
class Decision:
    model_name: str
    promoted: bool
    reason: str
    metric: str
    challenger_version: str
    challenger_value: float
    champion_version: str | None = None
    champion_value: float | None = None

    def as_dict(self) -> dict:
        return asdict(self)


def client(cfg: Config) -> MlflowClient:
    return MlflowClient(tracking_uri(cfg))


#: The registry's answers for a model or an alias that is not there. Any other failure
#: (the server down or restarting, a login refused) is no answer: scoring must not read it
#: as "no champion yet" and skip the task with success.
_ABSENT = ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE")


def version_by_alias(cfg: Config, model_name: str, alias: str) -> str | None:
    """The version ``alias`` points at, or None when the model or the alias is absent;
    ``MLFLOW_UNAVAILABLE`` when the registry could not be asked."""
    try:
        return str(client(cfg).get_model_version_by_alias(model_name, alias).version)
    except MlflowException as exc:
        if exc.error_code in _ABSENT:
            return None
        reason = (exc.message or str(exc)).splitlines()[0]
        raise RedlineError(
            "MLFLOW_UNAVAILABLE",
            f"could not ask the MLflow server at {cfg.mlflow.uri} for {model_name}@{alias} "
            f"({reason}); check that it runs (`redline status`, `redline up`) and run the "
            f"command again") from exc


def require(cfg: Config, model_name: str, alias: str) -> str:
    version = version_by_alias(cfg, model_name, alias)
    if version is None:
        raise RedlineError(
            "ML_NO_MODEL",
            f"registered model {model_name!r} has no @{alias} version at {cfg.mlflow.uri}; "
            f"train it first (`redline ml train ...`)"
            + (" and promote it (`redline ml promote ...`)" if alias == CHAMPION else ""))
    return version


def uri(model_name: str, version: str) -> str:
    return f"models:/{model_name}/{version}"


def name_challenger(cfg: Config, model_name: str, version: str) -> None:
    client(cfg).set_registered_model_alias(model_name, CHALLENGER, version)


def better(value: float, than: float, higher_is_better: bool) -> bool:
    return value > than if higher_is_better else value < than


def decide(model_name: str, metric: str, higher_is_better: bool, challenger: str,
           challenger_value: float, champion: str | None,
           champion_value: float | None) -> Decision:
    """The promotion verdict (pure): strictly better on the primary metric, or first."""
    direction = "higher" if higher_is_better else "lower"
    if champion is None or champion_value is None:
        return Decision(model_name, True, f"no champion yet: version {challenger} "
                        f"({metric}={challenger_value:.4f}) becomes the first", metric,
                        challenger, challenger_value)
    if champion == challenger:
        return Decision(model_name, False, f"version {challenger} is already the champion",
                        metric, challenger, challenger_value, champion, champion_value)
    wins = better(challenger_value, champion_value, higher_is_better)
    verdict = "beats" if wins else "does not beat"
    return Decision(
        model_name, wins,
        f"challenger version {challenger} {verdict} champion version {champion} on the "
        f"same held-out data: {metric} {challenger_value:.4f} against "
        f"{champion_value:.4f} ({direction} is better)"
        + ("" if wins else "; the champion stays"),
        metric, challenger, challenger_value, champion, champion_value)


def promote(cfg: Config, model_name: str, metric: str, higher_is_better: bool,
            evaluate: Callable[[str], float],
            progress: Callable[[str], None] = print) -> Decision:
    """Score challenger and champion with ``evaluate(model_uri)`` and move the aliases."""
    # ``evaluate`` loads models by URI through the client's global tracking server.
    mlflow.set_tracking_uri(tracking_uri(cfg))
    challenger = require(cfg, model_name, CHALLENGER)
    champion = version_by_alias(cfg, model_name, CHAMPION)
    progress(f"scoring challenger {model_name} v{challenger} on the held-out data")
    challenger_value = evaluate(uri(model_name, challenger))
    champion_value = None
    if champion is not None and champion != challenger:
        progress(f"scoring champion {model_name} v{champion} on the same data")
        champion_value = evaluate(uri(model_name, champion))
    decision = decide(model_name, metric, higher_is_better, challenger, challenger_value,
                      champion, champion_value)
    mlflow_client = client(cfg)
    if decision.promoted:
        mlflow_client.set_registered_model_alias(model_name, CHAMPION, challenger)
        mlflow_client.delete_registered_model_alias(model_name, CHALLENGER)
    for key, value in (("promotion", "promoted" if decision.promoted else "refused"),
                       ("promotion_reason", decision.reason)):
        mlflow_client.set_model_version_tag(model_name, challenger, key, value)
    return decision
