"""Population stability index (PSI) of model features against the training window.

A :class:`Reference` is a feature's training distribution cut into bins; :func:`psi`
compares the proportions a later batch puts in those same bins with the training ones:

    PSI = sum over bins of (a - e) * ln(a / e)

with ``a`` the batch's proportion and ``e`` the training proportion. It is the symmetric
Kullback-Leibler divergence (Jeffreys' J) of the two binned distributions, so it is 0 for
identical proportions and grows with any shift, up or down.

Bins:

* numeric features: cut at the training deciles (``bins=10``), edges de-duplicated so a
  discrete feature gets one bin per distinct value instead of empty slivers; the outer
  bins are open (-inf and +inf), so a value beyond the training range falls into an end
  bin and moves its proportion rather than being dropped. Bins are right-closed:
  ``(edge[i-1], edge[i]]``.
* categorical features (string, object, category or bool dtype): one bin per training
  category and one "other" bin for categories never seen in training.
* every feature has a last bin for missing values, so a feature that starts arriving null
  shows up as drift instead of silently shrinking the sample.

Small batches read high: with no drift at all, the expected PSI of ``B`` bins is about
``(B - 1) * (1/n + 1/N)`` for a batch of ``n`` rows against ``N`` training rows (each
half of the J divergence is a G statistic over ``2n``), e.g. 0.09 for 100 rows a day and
ten deciles. :func:`drift_by_day` reports ``rows`` beside every PSI for that reason.

Nothing here reads or writes a table; the job that fills gold.model_drift does the I/O.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from redline.errors import RedlineError

WARN_PSI = 0.2
"""PSI at or above which a feature is flagged as drifted.

The usual reading (Siddiqi, *Credit Risk Scorecards*, Wiley 2006, ch. 8; also Yurdakul,
*Statistical properties of population stability index*, 2018): below 0.1 no significant
shift, 0.1 to 0.25 a moderate shift worth watching, above 0.25 a major shift. We warn at
0.2, inside the moderate band rather than at its top: a warning costs a person a look at
one row of gold.model_drift, while a missed shift costs a model scoring a population it
never saw. It stays well above the no-drift noise of a day's batch (about 0.09 for 100
rows over ten deciles, see the module docstring)."""

EPSILON = 1e-4
"""Floor for a bin's proportion, so an empty bin on either side gives a large but finite
term instead of ln(0). At 1e-4 a bin holding 1% of a batch but nothing in training adds
(0.01 - 1e-4) * ln(0.01 / 1e-4) = 0.046; a bin empty on both sides adds exactly 0."""

NUMERIC = "numeric"
CATEGORICAL = "categorical"
_KINDS = (NUMERIC, CATEGORICAL)
_FIELDS = ("kind", "edges", "categories", "expected", "rows")


@dataclass(frozen=True)
class Reference:
    """A feature's training distribution over fixed bins.

    The bins, in the order of ``expected``: for ``kind == "numeric"``,
    ``len(edges) + 1`` value bins (-inf, edges[0]], (edges[0], edges[1]], ...,
    (edges[-1], +inf); for ``kind == "categorical"``, one bin per entry of
    ``categories`` and then the "other" bin. The last bin is always "missing".
    """

    kind: str
    """``"numeric"`` or ``"categorical"``."""
    edges: tuple[float, ...]
    """Interior cut points, strictly increasing (numeric); empty for categorical."""
    categories: tuple[str, ...]
    """Training categories as strings, sorted (categorical); empty for numeric."""
    expected: tuple[float, ...]
    """Training proportion per bin, missing bin last; sums to 1."""
    rows: int
    """Training rows the proportions come from (missing values included)."""

    def __post_init__(self):
        if self.kind not in _KINDS:
            raise RedlineError("DRIFT_REFERENCE_INVALID",
                               f"kind is {self.kind!r}; expected one of {_KINDS}")
        if self.kind == NUMERIC and self.categories:
            raise RedlineError("DRIFT_REFERENCE_INVALID",
                               "a numeric reference has no categories; "
                               f"got {len(self.categories)}")
        if self.kind == CATEGORICAL and self.edges:
            raise RedlineError("DRIFT_REFERENCE_INVALID",
                               f"a categorical reference has no edges; got {len(self.edges)}")
        if any(not b > a for a, b in zip(self.edges, self.edges[1:])):
            raise RedlineError("DRIFT_REFERENCE_INVALID",
                               f"edges must be strictly increasing; got {list(self.edges)}")
        if len(self.expected) != self.bins:
            raise RedlineError("DRIFT_REFERENCE_INVALID",
                               f"expected has {len(self.expected)} proportions but the "
                               f"{self.kind} reference has {self.bins} bins")
        if any(p < 0 for p in self.expected) or not math.isclose(sum(self.expected), 1.0,
                                                                  abs_tol=1e-9):
            raise RedlineError("DRIFT_REFERENCE_INVALID",
                               "expected must be proportions >= 0 summing to 1; "
                               f"got {list(self.expected)}")
        if self.rows < 1:
            raise RedlineError("DRIFT_REFERENCE_INVALID",
                               f"rows is {self.rows}; a reference needs at least one row")

    @property
    def bins(self) -> int:
        """Number of bins, the missing bin included."""
        if self.kind == NUMERIC:
            return len(self.edges) + 2
        return len(self.categories) + 2

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready dict (lists, floats, strings)."""
        return {"kind": self.kind, "edges": list(self.edges),
                "categories": list(self.categories), "expected": list(self.expected),
                "rows": self.rows}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Reference:
        """Inverse of :meth:`to_dict`; rejects unknown or missing keys."""
        unknown = sorted(set(data) - set(_FIELDS))
        missing = [k for k in _FIELDS if k not in data]
        if unknown or missing:
            raise RedlineError("DRIFT_REFERENCE_INVALID",
                               f"reference dict has unknown keys {unknown} and misses "
                               f"{missing}; expected exactly {list(_FIELDS)}")
        return cls(kind=data["kind"], edges=tuple(float(x) for x in data["edges"]),
                   categories=tuple(str(c) for c in data["categories"]),
                   expected=tuple(float(p) for p in data["expected"]),
                   rows=int(data["rows"]))


def _series(values, what: str) -> pd.Series:
    s = values if isinstance(values, pd.Series) else pd.Series(values)
    if s.empty:
        raise RedlineError("DRIFT_INPUT_INVALID",
                           f"{what}: no values; PSI needs at least one row")
    return s


def _name(values) -> str:
    name = getattr(values, "name", None)
    return f"column {name!r}" if name is not None else "values"


def _is_numeric(s: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(s) and not pd.api.types.is_bool_dtype(s)


def reference(values, bins: int = 10) -> Reference:
    """The training distribution of one feature: quantile bins (numeric) or one bin per
    category (categorical, chosen by dtype), each with a missing bin."""
    what = _name(values)
    if bins < 2:
        raise RedlineError("DRIFT_INPUT_INVALID",
                           f"bins is {bins}; use at least 2 (10 gives deciles)")
    s = _series(values, what)
    present = s[s.notna()]
    if present.empty:
        # Missing in every training row (a rolling statistic on a short history): all
        # the mass is in the missing bin, so values arriving later read as drift.
        kind = NUMERIC if _is_numeric(s) else CATEGORICAL
        return Reference(kind, (), (), (0.0, 1.0), len(s))
    if _is_numeric(s):
        x = present.to_numpy(dtype=float)
        # inverted_cdf returns training values themselves, so with right-closed bins each
        # value of a discrete feature sits wholly in one bin, never split by an
        # interpolated edge.
        cuts = np.quantile(x, np.arange(1, bins) / bins, method="inverted_cdf")
        kind, edges, categories = NUMERIC, tuple(float(e) for e in np.unique(cuts)), ()
    else:
        kind, edges, categories = CATEGORICAL, (), tuple(sorted(present.astype(str).unique()))
    counts = _counts(kind, edges, categories, s, what)
    return Reference(kind, edges, categories, tuple(float(c) for c in counts / len(s)),
                     len(s))


def psi(ref: Reference, values) -> float:
    """Population stability index of ``values`` against ``ref`` (0 = same proportions).

    Proportions below :data:`EPSILON` are raised to it on both sides before the sum.
    """
    what = _name(values)
    s = _series(values, what)
    actual = _counts(ref.kind, ref.edges, ref.categories, s, what) / len(s)
    a = np.maximum(actual, EPSILON)
    e = np.maximum(np.asarray(ref.expected, dtype=float), EPSILON)
    return float(np.sum((a - e) * np.log(a / e)))


def references(frame: pd.DataFrame, columns: Iterable[str],
               bins: int = 10) -> dict[str, Reference]:
    """One :func:`reference` per column of ``frame`` (the training window)."""
    columns = list(columns)
    _require(frame, columns, "training frame")
    return {c: reference(frame[c], bins) for c in columns}


def drift_by_day(frame: pd.DataFrame, day_column: str, references: Mapping[str, Reference],
                 warn: float = WARN_PSI) -> pd.DataFrame:
    """PSI of every referenced feature per day of ``frame``.

    Columns ``day, feature, rows, psi, drifted`` (``psi >= warn``), one row per day and
    feature, sorted by day then feature. ``rows`` counts the day's rows, missing values
    included.
    """
    features = sorted(references)
    _require(frame, [day_column, *features], "scored frame")
    if frame[day_column].isna().any():
        raise RedlineError("DRIFT_INPUT_INVALID",
                           f"column {day_column!r} has {int(frame[day_column].isna().sum())} "
                           f"missing days; every row needs the day it was scored")
    out = []
    for day, rows in frame.groupby(day_column, sort=True):
        for feature in features:
            value = psi(references[feature], rows[feature])
            out.append({"day": day, "feature": feature, "rows": len(rows), "psi": value,
                        "drifted": value >= warn})
    return pd.DataFrame(out, columns=["day", "feature", "rows", "psi", "drifted"]).astype(
        {"rows": "int64", "psi": "float64", "drifted": "bool"})


def _require(frame: pd.DataFrame, columns: list[str], what: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise RedlineError("DRIFT_INPUT_INVALID",
                           f"{what} lacks columns {missing}; it has {list(frame.columns)}")


def _counts(kind: str, edges: tuple[float, ...], categories: tuple[str, ...], s: pd.Series,
            what: str) -> np.ndarray:
    """Rows of ``s`` per bin, missing bin last (the bin layout of :class:`Reference`)."""
    missing = s.isna().to_numpy()
    present = s[~missing]
    if kind == NUMERIC:
        try:
            x = pd.to_numeric(present, errors="raise").to_numpy(dtype=float)
        except (TypeError, ValueError) as exc:
            raise RedlineError("DRIFT_INPUT_INVALID",
                               f"{what}: the reference is numeric but a value is not a "
                               f"number ({exc}); cast the column before comparing") from None
        codes = np.searchsorted(np.asarray(edges, dtype=float), x, side="left")
        value_bins = len(edges) + 1
    else:
        index = {c: i for i, c in enumerate(categories)}
        value_bins = len(categories) + 1
        codes = np.array([index.get(v, value_bins - 1) for v in present.astype(str)],
                         dtype=np.int64)
    counts = np.bincount(codes, minlength=value_bins).astype(float)
    return np.append(counts, float(missing.sum()))
