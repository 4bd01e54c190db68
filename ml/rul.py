"""Remaining useful life (RUL) of C-MAPSS turbofan engines (pure modelling, no I/O).

Inputs are rows of the lake's C-MAPSS feature table (one row per engine and cycle, the
sensors z-scored per dataset and operating condition); the caller chooses the feature
columns. Targets are the piece-wise linear ``rul_target = min(rul, CAP)``. A model sees a
window of the last ``RulParams.window`` cycles of an engine and predicts the RUL at the
window's last cycle; as in the C-MAPSS protocol an engine is scored at its last recorded
cycle.

The model is an ensemble of small GRU networks, trained together, each member on its own
shuffle of the windows and from its own initialisation. Why a GRU: on FD001 validation
engines (cut at random cycles, scored at the last one; ``age`` among the inputs) a
3-member GRU ensemble reached an RMSE of 14.9 where 5-member 1D-CNN ensembles (flattened convolutions over 30- or 50-cycle
windows, also a Li et al. 2018 style narrow head) stayed at 17.0-19.9 and overfitted
sooner; the GRU's state is a learned smoothing of the noisy sensor trends, which is what
the remaining life is read from. It steps through the window one cycle at a time, so it
is kept small (32 units, three members) to train in about three minutes on two CPU cores.
The ensemble's mean is the prediction; the members' standard deviation (the *spread*) is
the model's uncertainty: it grows where the members disagree, e.g. for engines unlike
those seen in training.

The gradient-boosted baseline (``fit_baseline``) sees the same windows reduced to summary
features: each sensor's last value, mean and least-squares slope over the window.

Nothing here reads a table, logs to MLflow or builds a session: the training job does.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd
import torch
from sklearn.ensemble import HistGradientBoostingRegressor
from torch import nn

from redline.errors import RedlineError
from redline.ml.cmapss import RUL_CAP

CAP = RUL_CAP
"""Training targets are ``min(rul, CAP)``, the table's ``rul_target`` (``ml/cmapss.py``)."""

KEYS = ("engine_id", "cycle")
TARGET = "rul_target"
TRUE_RUL = "rul"

BASELINE_HYPERPARAMETERS = {
    "learning_rate": 0.05,
    "max_iter": 300,
    "max_leaf_nodes": 31,
    "min_samples_leaf": 40,
    "l2_regularization": 1.0,
}
"""HistGradientBoostingRegressor settings of the baseline (its seed is ``RulParams.seed``)."""


@dataclass(frozen=True)
class RulParams:
    """Hyperparameters of the GRU ensemble. The defaults are the values tuned on FD001
    validation engines; ``RulParams.small()`` trains in about a second, for tests."""

    window: int = 50
    """Cycles per input window (engines with fewer cycles are left-padded)."""
    hidden: int = 32
    """Units of each member's GRU."""
    dropout: float = 0.2
    """Dropout on the GRU's last state (training only)."""
    members: int = 3
    """Networks in the ensemble; their standard deviation is the spread."""
    epochs: int = 20
    """Passes over the training windows (fewer if early stopping ends training)."""
    batch_size: int = 256
    """Windows per gradient step."""
    learning_rate: float = 1e-3
    """Adam's initial learning rate."""
    lr_decay: float = 0.95
    """The learning rate is multiplied by this after every epoch."""
    weight_decay: float = 1e-5
    """Adam's L2 penalty."""
    early_stopping_fraction: float = 0.0
    """Share of the training engines held out (by engine) to pick the best epoch; 0 trains
    all epochs on all engines and keeps the last one."""
    patience: int = 10
    """Epochs without improvement on the early-stopping engines before training stops."""
    seed: int = 0
    """Seeds torch and numpy: the same data and params give the same model."""

    def __post_init__(self) -> None:
        for name in ("window", "hidden", "members", "epochs", "batch_size", "patience"):
            if getattr(self, name) < 1:
                raise RedlineError("ML_RUL_PARAMS_INVALID",
                                   f"RulParams.{name}={getattr(self, name)} must be at least 1")
        if not 0.0 <= self.dropout < 1.0:
            raise RedlineError("ML_RUL_PARAMS_INVALID",
                               f"RulParams.dropout={self.dropout} must be in [0, 1)")
        if not 0.0 <= self.early_stopping_fraction < 1.0:
            raise RedlineError("ML_RUL_PARAMS_INVALID",
                               f"RulParams.early_stopping_fraction={self.early_stopping_fraction} "
                               f"must be in [0, 1); use 0 to turn early stopping off")
        if self.learning_rate <= 0 or not 0.0 < self.lr_decay <= 1.0:
            raise RedlineError("ML_RUL_PARAMS_INVALID",
                               f"RulParams.learning_rate={self.learning_rate} must be positive "
                               f"and lr_decay={self.lr_decay} in (0, 1]")

    @classmethod
    def small(cls, **overrides) -> RulParams:
        """A cheap setting for tests: tiny networks, few epochs, no early stopping."""
        base = cls(window=5, hidden=8, members=3, epochs=3, batch_size=64,
                   early_stopping_fraction=0.0)
        return replace(base, **overrides)


# -- metrics ---------------------------------------------------------------------------


def rmse(pred: Sequence[float] | np.ndarray, true: Sequence[float] | np.ndarray) -> float:
    """Root mean squared error of ``pred - true``."""
    d = _difference(pred, true)
    return float(np.sqrt(np.mean(d ** 2)))


def phm08_score(pred: Sequence[float] | np.ndarray,
                true: Sequence[float] | np.ndarray) -> float:
    """The PHM08 challenge score (Saxena et al. 2008), lower is better: with
    ``d = pred - true``, the sum of ``exp(-d/13) - 1`` over early predictions (d < 0) and
    ``exp(d/10) - 1`` over late ones (d >= 0), so a late prediction costs more."""
    d = _difference(pred, true)
    return float(np.sum(np.where(d < 0, np.exp(-d / 13.0), np.exp(d / 10.0)) - 1.0))


def _difference(pred, true) -> np.ndarray:
    p, t = np.asarray(pred, dtype=float), np.asarray(true, dtype=float)
    if p.shape != t.shape or p.size == 0:
        raise RedlineError("ML_RUL_INPUT_INVALID",
                           f"pred has shape {p.shape} and true {t.shape}: pass two non-empty "
                           f"sequences of the same length")
    return p - t


# -- data preparation --------------------------------------------------------------------


def split_engines(engine_ids: Sequence[str] | pd.Series, validation_fraction: float = 0.2,
                  seed: int = 0) -> tuple[list[str], list[str]]:
    """Split engines (never rows) into training and validation: ``round(fraction * n)``
    engines drawn without replacement (at least one, and at least one left to train on).

    The draw depends only on the set of ids and the seed, not on their order or
    repetitions, so ``split_engines(frame["engine_id"])`` works on a whole feature table.
    Both lists are sorted.
    """
    if not 0.0 < validation_fraction < 1.0:
        raise RedlineError("ML_RUL_INPUT_INVALID",
                           f"validation_fraction={validation_fraction} must be in (0, 1)")
    ids = sorted(set(engine_ids))
    if len(ids) < 2:
        raise RedlineError("ML_RUL_INPUT_INVALID",
                           f"{len(ids)} engine(s) cannot be split; pass at least two")
    n_val = min(max(1, round(validation_fraction * len(ids))), len(ids) - 1)
    chosen = set(np.random.default_rng(seed).choice(len(ids), size=n_val, replace=False))
    train = [e for i, e in enumerate(ids) if i not in chosen]
    validation = [e for i, e in enumerate(ids) if i in chosen]
    return train, validation


def truncate(frame: pd.DataFrame, seed: int = 0, max_rul: int = 150,
             min_kept: int = 20) -> pd.DataFrame:
    """Cut every engine's run-to-failure trajectory the way the test sets are made: the
    trajectory stops some cycles before failure, and the model is scored at its last
    remaining cycle.

    Distribution: for an engine of ``n`` cycles, the true RUL at the cut ``r`` is drawn
    uniformly from the integers ``1 .. min(max_rul, n - min_kept)``, and the first
    ``n - r`` cycles are kept (engines of ``min_kept`` cycles or fewer keep all but their
    last). ``max_rul`` defaults to 150, a little above the CAP: a capped model predicts
    about CAP for any engine further from failure, so deeper cuts would measure the cap,
    not the model. ``min_kept`` = 20 is about the shortest test trajectory in FD002/FD004.

    Rows are dropped, no column changes: ``rul`` stays the true remaining life (counted to
    the real failure), which is what a prediction at the cut is compared with.
    """
    _require(frame, ["engine_id", "cycle"])
    if max_rul < 1 or min_kept < 1:
        raise RedlineError("ML_RUL_INPUT_INVALID",
                           f"max_rul={max_rul} and min_kept={min_kept} must be at least 1")
    rng = np.random.default_rng(seed)
    frame = frame.sort_values(list(KEYS), kind="stable")
    lengths = frame.groupby("engine_id", sort=True).size()
    # One draw per engine in sorted id order: the cuts depend on the seed and the set of
    # engines, not on the order of the rows.
    high = np.maximum(1, np.minimum(max_rul, lengths.to_numpy() - min_kept))
    cut = rng.integers(1, high + 1)
    keep = pd.Series(lengths.to_numpy() - np.minimum(cut, lengths.to_numpy() - 1),
                     index=lengths.index)
    position = frame.groupby("engine_id", sort=False).cumcount() + 1
    return frame[position.to_numpy() <= frame["engine_id"].map(keep).to_numpy()] \
        .reset_index(drop=True)


def add_condition_columns(frame: pd.DataFrame,
                          conditions: Sequence[str]) -> tuple[pd.DataFrame, list[str]]:
    """One-hot columns ``condition_<value>`` (float 0/1) for the operating ``condition``,
    for FD002/FD004 whose six conditions change from cycle to cycle.

    ``conditions`` is the fixed list of values (take it from the training rows and reuse
    it for validation and test, so every frame gets the same columns). Returns the frame
    with the columns added and their names, to append to the feature list.
    """
    _require(frame, ["condition"])
    unknown = sorted(set(frame["condition"]) - set(conditions))
    if unknown:
        raise RedlineError("ML_RUL_INPUT_INVALID",
                           f"condition values {unknown} are not in conditions={list(conditions)}; "
                           f"pass every condition of the training rows")
    names = [f"condition_{c}" for c in conditions]
    onehot = pd.DataFrame({n: (frame["condition"] == c).astype("float32")
                           for n, c in zip(names, conditions)}, index=frame.index)
    return pd.concat([frame, onehot], axis=1), names


def add_age_column(frame: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
    """Column ``age`` = ``cycle / CAP`` (float32), to append to the feature list.

    A window shows only its last cycles, so without it a network cannot tell an engine
    cut short early in life (whose sensors still look new) from one that has flown long;
    on FD001 validation engines it lowered the ensemble's RMSE by about one cycle.
    """
    _require(frame, ["cycle"])
    return frame.assign(age=(frame["cycle"] / CAP).astype("float32")), ["age"]


def windows(frame: pd.DataFrame, features: Sequence[str], window: int,
            last_only: bool = False) -> tuple[np.ndarray, np.ndarray | None, pd.DataFrame]:
    """Sliding windows of ``features`` per engine, ordered by engine then cycle.

    Window ``i`` ends at row ``i`` of its engine and holds that row and the ``window - 1``
    before it; where an engine has fewer rows so far (its first cycles, or a test engine
    shorter than the window) the window is left-padded by repeating the engine's first
    row. With ``last_only`` only the window ending at each engine's last cycle is built
    (what a prediction uses).

    Returns ``X`` float32 of shape (n, window, len(features)), ``y`` float32 (the
    ``rul_target`` at each window's last cycle; None when the frame has no such column)
    and ``keys`` (``engine_id``, ``cycle`` of each window's last row).
    """
    if window < 1:
        raise RedlineError("ML_RUL_INPUT_INVALID", f"window={window} must be at least 1")
    _require(frame, [*KEYS, *features])
    if frame.empty:
        raise RedlineError("ML_RUL_INPUT_INVALID", "the frame has no rows")
    frame = frame.sort_values(list(KEYS), kind="stable")
    values = frame[list(features)].to_numpy(dtype=np.float32)
    if not np.isfinite(values).all():
        bad = [f for f in features if not np.isfinite(frame[f].to_numpy(dtype=float)).all()]
        raise RedlineError("ML_RUL_INPUT_INVALID",
                           f"features {bad} have null or infinite values; the feature table "
                           f"fills a constant sensor with 0.0, so check the upstream rows")
    has_y = TARGET in frame.columns
    target = frame[TARGET].to_numpy(dtype=np.float32) if has_y else None
    engine = frame["engine_id"].to_numpy()
    # Row ranges of each engine in the sorted frame.
    starts = np.flatnonzero(np.r_[True, engine[1:] != engine[:-1]])
    ends = np.r_[starts[1:], len(engine)]
    ends_at = np.concatenate([np.arange(s, e) for s, e in zip(starts, ends)]) \
        if not last_only else ends - 1
    first = np.repeat(starts, (ends - starts)) if not last_only else starts
    # Row of the frame at each window position; positions before the engine's first row
    # are clipped to it, which is the left padding.
    rows = ends_at[:, None] - np.arange(window - 1, -1, -1)[None, :]
    rows = np.maximum(rows, first[:, None])
    X = values[rows]
    y = target[ends_at] if has_y else None
    keys = frame.iloc[ends_at][list(KEYS)].reset_index(drop=True)
    return X, y, keys


def _require(frame: pd.DataFrame, columns: Sequence[str]) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise RedlineError("ML_RUL_INPUT_INVALID",
                           f"the frame lacks columns {missing}; pass rows of the C-MAPSS "
                           f"feature table and feature names among its columns")


# -- the GRU ensemble -----------------------------------------------------------------------


class GruNet(nn.Module):
    """One ensemble member: a GRU over the window, then a small dense head on its last
    state. Takes (n, window, features), returns (n,) RUL in units of CAP."""

    def __init__(self, n_features: int, params: RulParams):
        super().__init__()
        self.gru = nn.GRU(n_features, params.hidden, batch_first=True)
        self.head = nn.Sequential(nn.Dropout(params.dropout), nn.Linear(params.hidden, 16),
                                  nn.ReLU(), nn.Linear(16, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        states, _ = self.gru(x)
        return self.head(states[:, -1]).squeeze(-1)


class RulEnsemble(nn.Module):
    """K networks over the same windows. ``forward(x)`` takes float32 (n, window,
    n_features) and returns (n, 2): the members' mean predicted RUL in cycles and their
    standard deviation (population, 0 for a single member), the spread.

    Picklable (plain modules and numbers only), so ``mlflow.pytorch.log_model`` and
    ``torch.save`` work; call ``eval()`` before predicting (dropout is off in eval mode,
    which makes ``forward`` deterministic).
    """

    def __init__(self, members: Sequence[nn.Module], window: int, n_features: int,
                 scale: float = CAP):
        super().__init__()
        self.members = nn.ModuleList(members)
        self.window = window
        self.n_features = n_features
        self.scale = scale

    def member_outputs(self, x: torch.Tensor) -> torch.Tensor:
        """(n, K) predictions of each member, in units of ``scale``."""
        if x.ndim != 3 or x.shape[1:] != (self.window, self.n_features):
            raise RedlineError(
                "ML_RUL_INPUT_INVALID",
                f"input has shape {tuple(x.shape)}; the model takes (n, {self.window}, "
                f"{self.n_features}): windows of {self.window} cycles of the features it "
                f"was trained on")
        return torch.stack([m(x) for m in self.members], dim=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.member_outputs(x) * self.scale
        return torch.stack([out.mean(dim=1), out.std(dim=1, correction=0)], dim=1)


def fit(train_frame: pd.DataFrame, features: Sequence[str], params: RulParams = RulParams(),
        on_epoch: Callable[[int, dict[str, float]], None] | None = None,
        validation_frame: pd.DataFrame | None = None) -> RulEnsemble:
    """Train the GRU ensemble on every window of ``train_frame`` (rows with ``rul_target``)
    on the CPU, seeded by ``params.seed``.

    With ``params.early_stopping_fraction`` > 0 that share of the training engines is held
    out (``split_engines``), its windows scored after every epoch, and the epoch with the
    lowest RMSE kept. ``validation_frame`` (e.g. truncated held-out engines, with ``rul``)
    is only reported, never used for choosing: it is scored at each engine's last cycle.

    ``on_epoch(epoch, metrics)`` is called after every epoch (from 1) with
    ``train_rmse`` (cycles, mean over members and batches, dropout on), ``lr``, and when
    available ``early_stopping_rmse`` and ``validation_rmse`` / ``validation_phm08``.
    """
    _require(train_frame, [TARGET])
    torch.manual_seed(params.seed)
    rng = np.random.default_rng(params.seed)
    fit_frame, stop_frame = train_frame, None
    if params.early_stopping_fraction > 0:
        fit_ids, stop_ids = split_engines(train_frame["engine_id"],
                                          params.early_stopping_fraction, params.seed)
        fit_frame = train_frame[train_frame["engine_id"].isin(fit_ids)]
        stop_frame = train_frame[train_frame["engine_id"].isin(stop_ids)]
    X, y, _ = windows(fit_frame, features, params.window)
    X_t, y_t = torch.from_numpy(X), torch.from_numpy(y / CAP)
    stop = None
    if stop_frame is not None:
        Xs, ys, _ = windows(stop_frame, features, params.window)
        stop = (torch.from_numpy(Xs), ys)
    model = RulEnsemble([GruNet(len(features), params) for _ in range(params.members)],
                        params.window, len(features))
    optimiser = torch.optim.Adam(model.parameters(), lr=params.learning_rate,
                                 weight_decay=params.weight_decay)
    schedule = torch.optim.lr_scheduler.ExponentialLR(optimiser, gamma=params.lr_decay)
    best, best_rmse, since_best = None, np.inf, 0
    for epoch in range(1, params.epochs + 1):
        model.train()
        # Each member walks the windows in its own order: with its own initialisation
        # this is what makes the members differ.
        orders = [torch.from_numpy(rng.permutation(len(y_t))) for _ in model.members]
        squared, seen = 0.0, 0
        for start in range(0, len(y_t), params.batch_size):
            optimiser.zero_grad()
            loss = torch.zeros(())
            for member, order in zip(model.members, orders):
                batch = order[start:start + params.batch_size]
                loss = loss + nn.functional.mse_loss(member(X_t[batch]), y_t[batch])
            loss.backward()
            optimiser.step()
            n = min(params.batch_size, len(y_t) - start)
            squared += loss.item() / len(model.members) * n
            seen += n
        metrics = {"train_rmse": float(np.sqrt(squared / seen)) * CAP,
                   "lr": schedule.get_last_lr()[0]}
        schedule.step()
        if stop is not None:
            stop_rmse = rmse(_forward(model, stop[0])[:, 0], stop[1])
            metrics["early_stopping_rmse"] = stop_rmse
            if stop_rmse < best_rmse:
                best, best_rmse, since_best = copy.deepcopy(model.state_dict()), stop_rmse, 0
            else:
                since_best += 1
        if validation_frame is not None:
            scored = predict(model, validation_frame, features)
            metrics["validation_rmse"] = rmse(scored["rul_pred"], scored[TRUE_RUL])
            metrics["validation_phm08"] = phm08_score(scored["rul_pred"], scored[TRUE_RUL])
        if on_epoch is not None:
            on_epoch(epoch, metrics)
        if since_best >= params.patience:
            break
    if best is not None:
        model.load_state_dict(best)
    return model.eval()


def _forward(model: RulEnsemble, X: torch.Tensor | np.ndarray,
             batch_size: int = 4096) -> np.ndarray:
    model.eval()
    X = torch.as_tensor(X)
    with torch.no_grad():
        out = [model(X[i:i + batch_size]) for i in range(0, len(X), batch_size)]
    return torch.cat(out).numpy()


def predict(model: RulEnsemble, frame: pd.DataFrame, features: Sequence[str],
            window: int | None = None) -> pd.DataFrame:
    """Predict each engine's RUL at its last cycle in ``frame``: columns ``engine_id``,
    ``cycle``, ``rul_pred`` (ensemble mean, floored at 0), ``rul_spread`` (members' standard
    deviation), plus ``rul`` when the frame has it (the truth, for scoring). ``window``
    defaults to the one the model was trained with."""
    window = model.window if window is None else window
    X, _, keys = windows(frame, features, window, last_only=True)
    out = _forward(model, X)
    return _scored(frame, keys, np.maximum(out[:, 0], 0.0), out[:, 1])


def _scored(frame: pd.DataFrame, keys: pd.DataFrame, pred: np.ndarray,
            spread: np.ndarray) -> pd.DataFrame:
    scored = keys.assign(rul_pred=pred.astype(float), rul_spread=spread.astype(float))
    if TRUE_RUL in frame.columns:
        scored = scored.merge(frame[[*KEYS, TRUE_RUL]], on=list(KEYS), how="left")
    return scored


# -- gradient-boosted baseline ---------------------------------------------------------------


def summary_features(X: np.ndarray) -> np.ndarray:
    """Per window and feature: last value, mean and least-squares slope per cycle, as
    (n, 3 * n_features) in that order (all last values, then means, then slopes)."""
    t = np.arange(X.shape[1], dtype=np.float32)
    t -= t.mean()
    denominator = float((t ** 2).sum()) or 1.0
    slope = np.einsum("w,nwf->nf", t, X) / denominator
    return np.concatenate([X[:, -1, :], X.mean(axis=1), slope], axis=1)


def fit_baseline(train_frame: pd.DataFrame, features: Sequence[str],
                 params: RulParams = RulParams()) -> HistGradientBoostingRegressor:
    """Gradient-boosted trees (``BASELINE_HYPERPARAMETERS``) on ``summary_features`` of
    every training window of ``params.window`` cycles, target ``rul_target``."""
    _require(train_frame, [TARGET])
    X, y, _ = windows(train_frame, features, params.window)
    model = HistGradientBoostingRegressor(**BASELINE_HYPERPARAMETERS, early_stopping=False,
                                          random_state=params.seed)
    return model.fit(summary_features(X), y)


def predict_baseline(model: HistGradientBoostingRegressor, frame: pd.DataFrame,
                     features: Sequence[str], window: int) -> pd.DataFrame:
    """The baseline's prediction at each engine's last cycle, shaped like ``predict``'s;
    ``rul_spread`` is 0 (a single model has no spread)."""
    X, _, keys = windows(frame, features, window, last_only=True)
    pred = np.maximum(model.predict(summary_features(X)), 0.0)
    return _scored(frame, keys, pred, np.zeros(len(pred)))
