"""The review queue: which scored items a person should look at, and label, first.

Every item gets a ``risk`` and an ``uncertainty``, both in [0, 1], and a ``priority`` that
mixes them (:func:`priority`). The queue is for the hard examples: an item the model is
sure is fine teaches nothing and needs nothing, and an item the model is sure will fail
needs action more than a label. What deserves a person's time first is an item that
*might* fail and about which the model is unsure, since a label there both settles a
risky case and corrects the model where it is weakest.

* classifier scores (:func:`classifier_rows`): risk is the failure probability,
  uncertainty its binary predictive entropy in bits (:func:`entropy`).
* remaining-useful-life scores (:func:`rul_rows`): risk grows as the predicted RUL falls
  towards 0; uncertainty is the ensemble's spread against a documented scale.

Nothing here reads or writes a table; the job that fills gold.review_queue does the I/O
and adds the ``detail`` text.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from redline.errors import RedlineError
from redline.ml.cmapss import RUL_CAP as CMAPSS_RUL_CAP

RUL_CAP = float(CMAPSS_RUL_CAP)
"""Cycles at which remaining useful life is capped (the target's cap, ``ml/cmapss.py``);
at or beyond it, risk is 0."""

RUL_SPREAD_FRACTION = 0.2
"""The ensemble spread, as a fraction of the cap, that counts as fully uncertain (25
cycles at the default cap). Good C-MAPSS models miss the true RUL by roughly 12-20 cycles
(root-mean-square error on FD001), so members disagreeing by 25 cycles or more disagree
by more than such a model's typical error: nothing firmer can be read from its mean."""


def entropy(p):
    """Binary predictive entropy in bits: 0 at p = 0 or 1, 1 at p = 0.5.

    Vectorised over array-likes (returns an ndarray); a scalar gives a float. Raises for a
    probability outside [0, 1] or NaN rather than clipping a bug into a plausible value.
    """
    arr = np.asarray(p, dtype=float)
    bad = ~((arr >= 0.0) & (arr <= 1.0))
    if bad.any():
        raise RedlineError("REVIEW_INPUT_INVALID",
                           f"probabilities must lie in [0, 1]; got {arr[bad][:5].tolist()}")
    q = 1.0 - arr
    # 0 * log2(0) is taken as 0, its limit; np.where masks the nan that 0 * -inf gives.
    with np.errstate(divide="ignore", invalid="ignore"):
        h = -(np.where(arr > 0, arr * np.log2(arr), 0.0) + np.where(q > 0, q * np.log2(q), 0.0))
    h = h + 0.0  # -0.0 at the ends reads as 0.0
    return float(h) if h.ndim == 0 else h


def classifier_rows(frame: pd.DataFrame,
                    prob_col: str = "failure_probability") -> pd.DataFrame:
    """A copy of ``frame`` with ``risk`` = the probability in ``prob_col`` and
    ``uncertainty`` = its :func:`entropy`."""
    _require(frame, [prob_col])
    p = frame[prob_col].to_numpy(dtype=float)
    try:
        h = entropy(p)
    except RedlineError as exc:
        raise RedlineError(exc.code, f"column {prob_col!r}: {exc.message}") from None
    return frame.assign(risk=p, uncertainty=h)


def rul_rows(frame: pd.DataFrame, cap: float = RUL_CAP,
             spread_scale: float | None = None) -> pd.DataFrame:
    """A copy of ``frame`` with ``risk`` and ``uncertainty`` from ``rul_pred`` and
    ``rul_spread`` (cycles).

    risk = 1 - clip(rul_pred, 0, cap) / cap: 1 at a predicted RUL of 0, 0 at the cap.
    uncertainty = clip(rul_spread / spread_scale, 0, 1), with ``spread_scale`` defaulting
    to ``RUL_SPREAD_FRACTION * cap`` (25 cycles at the default cap). ``rul_spread`` is the
    ensemble members' standard deviation; a single model scores a spread of 0, so its
    engines get uncertainty 0 and priority 0: the queue ranks what a model says it doubts.
    """
    _require(frame, ["rul_pred", "rul_spread"])
    if not cap > 0:
        raise RedlineError("REVIEW_INPUT_INVALID", f"cap is {cap}; it must be > 0 cycles")
    scale = RUL_SPREAD_FRACTION * cap if spread_scale is None else spread_scale
    if not scale > 0:
        raise RedlineError("REVIEW_INPUT_INVALID",
                           f"spread_scale is {spread_scale}; it must be > 0 cycles")
    pred = frame["rul_pred"].to_numpy(dtype=float)
    spread = frame["rul_spread"].to_numpy(dtype=float)
    if np.isnan(pred).any():
        raise RedlineError("REVIEW_INPUT_INVALID",
                           f"column 'rul_pred' has {int(np.isnan(pred).sum())} NaN values")
    if (~(spread >= 0)).any():
        raise RedlineError("REVIEW_INPUT_INVALID",
                           f"column 'rul_spread' must be >= 0 cycles (a spread); got "
                           f"{spread[~(spread >= 0)][:5].tolist()}")
    return frame.assign(risk=1.0 - np.clip(pred, 0.0, cap) / cap,
                        uncertainty=np.clip(spread / scale, 0.0, 1.0))


def priority(risk, uncertainty):
    """sqrt(risk * uncertainty), the geometric mean, in [0, 1].

    The geometric mean is 0 when either side is 0 and high only when both are, which is
    the queue's intent: a sure-healthy item (risk 0) and a perfectly sure prediction
    (uncertainty 0) are not labelling work. A sure but not certain high-risk item still
    scores above 0 (p = 0.99: entropy 0.081 bits, priority 0.28) so it is not hidden, but
    it ranks below an unsure one (p = 0.5: priority 0.71); acting on confident failures is
    the job of the score tables, not of this queue. A weighted sum would let risk alone
    fill the top of the queue. The square root does not change the order of the product;
    it keeps the scale readable (0.5 and 0.5 give 0.5).
    """
    r = np.asarray(risk, dtype=float)
    u = np.asarray(uncertainty, dtype=float)
    for name, arr in (("risk", r), ("uncertainty", u)):
        bad = ~((arr >= 0.0) & (arr <= 1.0))
        if bad.any():
            raise RedlineError("REVIEW_INPUT_INVALID",
                               f"{name} must lie in [0, 1]; got {arr[bad][:5].tolist()}")
    out = np.sqrt(r * u)
    return float(out) if out.ndim == 0 else out


def rank(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` (columns task, entity, risk, uncertainty) with ``priority`` and ``rank``
    (1 = look first), sorted by rank.

    Equal priorities are ordered by task, then entity, so the same scores always give the
    same queue. ``(task, entity)`` must be unique: it is the queue's key.
    """
    _require(frame, ["task", "entity", "risk", "uncertainty"])
    dupes = frame.duplicated(["task", "entity"], keep=False)
    if dupes.any():
        pairs = frame.loc[dupes, ["task", "entity"]].drop_duplicates().head(5)
        raise RedlineError("REVIEW_INPUT_INVALID",
                           f"(task, entity) must be unique; repeated: "
                           f"{list(pairs.itertuples(index=False, name=None))}")
    ranked = frame.assign(priority=priority(frame["risk"].to_numpy(dtype=float),
                                            frame["uncertainty"].to_numpy(dtype=float)))
    ranked = ranked.sort_values(["priority", "task", "entity"], ascending=[False, True, True],
                                kind="mergesort").reset_index(drop=True)
    return ranked.assign(rank=np.arange(1, len(ranked) + 1, dtype=np.int32))


def top(frame: pd.DataFrame, n: int) -> pd.DataFrame:
    """The first ``n`` rows of :func:`rank` (fewer when the frame is shorter)."""
    if n < 0:
        raise RedlineError("REVIEW_INPUT_INVALID", f"n is {n}; ask for 0 or more rows")
    return rank(frame).head(n)


def _require(frame: pd.DataFrame, columns: list[str]) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise RedlineError("REVIEW_INPUT_INVALID",
                           f"frame lacks columns {missing}; it has {list(frame.columns)}")
