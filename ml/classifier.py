"""AI4I 2020 machine-failure classifier (pure pandas / scikit-learn: no I/O, no Spark).

Inputs are rows of ``gold.ai4i_features`` as a pandas frame: the model reads
``ai4i.FEATURES`` only, so the failure-mode flags could not reach it even in a frame that
carried them.

- **Split.** A fixed, stratified 80/20 split: rows ordered by ``udi``, then scikit-learn's
  ``train_test_split(test_size=0.2, stratify=label, random_state=0)``. There is no
  official split; this one keeps the 3.4 % failure rate in both parts and is the same on
  every run.
- **Model.** ``type`` one-hot, the numeric columns as they are, into gradient-boosted
  trees (scikit-learn's ``GradientBoostingClassifier``). The failures of this data set are
  sharp thresholds on single quantities (power, temperature difference with speed, tool
  wear x torque per variant); exact tree splits find them where histogram binning
  (``HistGradientBoostingClassifier``, 255 quantile bins, about 30 training rows a bin in
  the tails where the thresholds lie) blurred them: out-of-fold F1 0.84 against 0.89.
- **Threshold.** Failures are 3.4 % of the rows, so 0.5 is not the F1-best cut. The
  decision threshold maximises F1 on out-of-fold probabilities of the *training* part
  (stratified 5-fold, seed 0); the test part never chooses anything.
  ``ThresholdedClassifier`` holds the refitted pipeline and the threshold; it is a
  scikit-learn estimator, so it pickles and logs with ``mlflow.sklearn``.

``evaluate``, ``pr_curve``, ``calibration`` and ``importance`` give held-out figures and
the data behind the plots; ``entropy`` is the predictive entropy a score is reported with.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from sklearn.calibration import calibration_curve
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import GradientBoostingClassifier
from sklearn.inspection import permutation_importance
from sklearn.metrics import (
    average_precision_score,
    f1_score,
    precision_recall_curve,
    precision_score,
    recall_score,
    roc_auc_score,
)
from sklearn.model_selection import StratifiedKFold, cross_val_predict, train_test_split
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder
from sklearn.utils.validation import check_is_fitted

from redline.errors import RedlineError
from redline.ml.ai4i import CATEGORICAL, FEATURES, LABEL, NUMERIC
from redline.ml.review import entropy

__all__ = ["CV_FOLDS", "PARAMS", "SEED", "TEST_FRACTION", "ThresholdedClassifier",
           "best_threshold", "calibration", "entropy", "evaluate", "fit", "importance",
           "pipeline", "pr_curve", "split"]

TEST_FRACTION = 0.2
SEED = 0
"""Seed of the split, of the cross-validation folds and of the trees."""
CV_FOLDS = 5
"""Folds of the out-of-fold predictions the threshold is chosen on."""
PARAMS: dict[str, object] = {
    "n_estimators": 100, "learning_rate": 0.05, "max_depth": 3, "min_samples_leaf": 1,
}
"""GradientBoostingClassifier settings, chosen by out-of-fold F1 on the training part (5
folds, three fold seeds): more rounds, a higher rate or deeper trees start fitting the
failures no measurement explains (random and tool-wear failures) and score lower."""


def _require(frame: pd.DataFrame, columns: Iterable[str], what: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise RedlineError("AI4I_COLUMNS_MISSING",
                           f"the {what} frame lacks column(s) {missing}; pass rows of "
                           f"gold.ai4i_features")


def _two_classes(y: pd.Series, what: str) -> None:
    counts = y.value_counts()
    if set(counts.index) != {0, 1}:
        raise RedlineError("AI4I_ONE_CLASS",
                           f"the {what} frame has {LABEL} values {sorted(counts.index)}; "
                           f"it needs failures (1) and non-failures (0)")


def split(frame: pd.DataFrame, test_fraction: float = TEST_FRACTION,
          seed: int = SEED) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(train, test): the fixed split stratified by the label (see the module docstring).

    Rows are ordered by ``udi`` first, so the split depends on the rows only, not on the
    order they were read in. Both parts keep the frame's columns and index.
    """
    _require(frame, ["udi", LABEL], "split")
    if not 0 < test_fraction < 1:
        raise RedlineError("AI4I_SPLIT_INVALID",
                           f"test_fraction={test_fraction}; it must lie strictly between 0 "
                           f"and 1")
    _two_classes(frame[LABEL], "split")
    ordered = frame.sort_values("udi", kind="stable")
    train, test = train_test_split(ordered, test_size=test_fraction,
                                   stratify=ordered[LABEL], random_state=seed)
    return train, test


def pipeline(params: Mapping[str, object] | None = None) -> Pipeline:
    """One-hot ``type`` and the numeric features into gradient-boosted trees.

    ``params`` override ``PARAMS``; an unknown name is refused.
    """
    settings = {**PARAMS, **(params or {})}
    known = GradientBoostingClassifier().get_params()
    unknown = sorted(k for k in settings if k not in known)
    if unknown:
        raise RedlineError("AI4I_PARAMS_INVALID",
                           f"unknown GradientBoostingClassifier parameter(s) {unknown}; "
                           f"known: {', '.join(sorted(known))}")
    encode = ColumnTransformer(
        [("categorical", OneHotEncoder(handle_unknown="ignore", sparse_output=False),
          list(CATEGORICAL)),
         ("numeric", "passthrough", list(NUMERIC))],
        verbose_feature_names_out=False)
    return Pipeline([("encode", encode),
                     ("model", GradientBoostingClassifier(random_state=SEED, **settings))])


def best_threshold(y: np.ndarray, probability: np.ndarray) -> tuple[float, float]:
    """(threshold, F1) of the cut ``probability >= threshold`` with the highest F1.

    The threshold is the midpoint between the lowest probability predicted a failure and
    the highest one below it: the same cut on these probabilities, with the most room on
    both sides for a refitted model's.
    """
    precision, recall, cuts = precision_recall_curve(y, probability)
    # The last point (precision 1, recall 0) has no threshold.
    with np.errstate(invalid="ignore"):
        f1 = np.nan_to_num(2 * precision[:-1] * recall[:-1] / (precision[:-1] + recall[:-1]))
    i = int(np.argmax(f1))
    threshold = cuts[i] if i == 0 else (cuts[i - 1] + cuts[i]) / 2
    return float(threshold), float(f1[i])


class ThresholdedClassifier(ClassifierMixin, BaseEstimator):
    """A binary classifier and the decision threshold chosen on its out-of-fold
    probabilities.

    ``fit`` cross-validates ``estimator`` on the data it is given (stratified
    ``cv``-fold, shuffled with ``random_state``), picks the F1-best threshold on the
    pooled out-of-fold probabilities (``best_threshold``), then refits ``estimator`` on
    all of it. ``predict_proba`` is the refitted estimator's; ``predict`` is 1 where the
    failure probability reaches ``threshold_``.

    Fitted attributes: ``estimator_``, ``threshold_``, ``cv_f1_`` (out-of-fold F1 at the
    threshold), ``classes_``.
    """

    def __init__(self, estimator=None, cv: int = CV_FOLDS, random_state: int = SEED):
        self.estimator = estimator
        self.cv = cv
        self.random_state = random_state

    def fit(self, X, y):
        y = np.asarray(y)
        base = pipeline() if self.estimator is None else self.estimator
        folds = StratifiedKFold(self.cv, shuffle=True, random_state=self.random_state)
        oof = cross_val_predict(clone(base), X, y, cv=folds, method="predict_proba")[:, 1]
        self.threshold_, self.cv_f1_ = best_threshold(y, oof)
        self.estimator_ = clone(base).fit(X, y)
        self.classes_ = self.estimator_.classes_
        return self

    def predict_proba(self, X) -> np.ndarray:
        check_is_fitted(self, "estimator_")
        return self.estimator_.predict_proba(X)

    def predict(self, X) -> np.ndarray:
        return self.classes_[(self.predict_proba(X)[:, 1] >= self.threshold_).astype(int)]


def fit(train: pd.DataFrame, params: Mapping[str, object] | None = None) -> ThresholdedClassifier:
    """The pipeline with ``params`` fitted on ``train``, its threshold chosen by
    out-of-fold F1 on ``train`` alone."""
    _require(train, [*FEATURES, LABEL], "training")
    _two_classes(train[LABEL], "training")
    positives = int(train[LABEL].sum())
    if positives < CV_FOLDS:
        raise RedlineError("AI4I_TOO_FEW_FAILURES",
                           f"the training frame has {positives} failure(s); choosing the "
                           f"threshold by {CV_FOLDS}-fold cross-validation needs at least "
                           f"{CV_FOLDS}")
    model = ThresholdedClassifier(pipeline(params))
    return model.fit(train[list(FEATURES)], train[LABEL].to_numpy())


def _scored(model: ThresholdedClassifier, frame: pd.DataFrame,
            what: str) -> tuple[np.ndarray, np.ndarray]:
    _require(frame, [*FEATURES, LABEL], what)
    _two_classes(frame[LABEL], what)
    return (frame[LABEL].to_numpy(),
            model.predict_proba(frame[list(FEATURES)])[:, 1])


def evaluate(model: ThresholdedClassifier, test: pd.DataFrame) -> dict[str, float]:
    """Held-out figures of the failure class: F1, precision and recall at the model's
    threshold, PR-AUC (average precision), ROC-AUC, and the threshold, rows and failures.
    """
    y, p = _scored(model, test, "test")
    predicted = (p >= model.threshold_).astype(int)
    return {
        "f1": float(f1_score(y, predicted)),
        "precision": float(precision_score(y, predicted, zero_division=0)),
        "recall": float(recall_score(y, predicted)),
        "pr_auc": float(average_precision_score(y, p)),
        "roc_auc": float(roc_auc_score(y, p)),
        "threshold": float(model.threshold_),
        "n": float(len(y)),
        "positives": float(y.sum()),
    }


def pr_curve(model: ThresholdedClassifier, test: pd.DataFrame) -> pd.DataFrame:
    """Precision and recall of the failure class at every threshold (``threshold``, one
    row per distinct probability, ascending), for a PR plot."""
    y, p = _scored(model, test, "test")
    precision, recall, cuts = precision_recall_curve(y, p)
    # Drop the closing (precision 1, recall 0) point: it has no threshold.
    return pd.DataFrame({"threshold": cuts, "precision": precision[:-1],
                         "recall": recall[:-1]})


def calibration(model: ThresholdedClassifier, test: pd.DataFrame, bins: int = 10,
                strategy: str = "quantile") -> pd.DataFrame:
    """Mean predicted probability (``predicted``) against the observed failure rate
    (``observed``) per probability bin (``sklearn.calibration.calibration_curve``; empty
    bins are left out). Quantile bins by default: nearly every probability is close to 0.
    """
    y, p = _scored(model, test, "test")
    observed, predicted = calibration_curve(y, p, n_bins=bins, strategy=strategy)
    return pd.DataFrame({"predicted": predicted, "observed": observed})


def importance(model: ThresholdedClassifier, frame: pd.DataFrame, repeats: int = 5,
               seed: int = SEED) -> pd.DataFrame:
    """Permutation importance of each input column (``type`` as one column): the mean drop
    in average precision on ``frame`` when the column is shuffled, ``repeats`` times.
    Sorted from the most important."""
    y, _ = _scored(model, frame, "importance")
    result = permutation_importance(model, frame[list(FEATURES)], y,
                                    scoring="average_precision", n_repeats=repeats,
                                    random_state=seed)
    return (pd.DataFrame({"feature": list(FEATURES), "importance": result.importances_mean})
            .sort_values("importance", ascending=False, kind="stable")
            .reset_index(drop=True))
