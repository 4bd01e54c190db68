"""The review queue's scores and order on a hand-made queue; every expected value is
worked out by hand in the comment beside it (log2 is the base-2 log)."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pandas as pd
import pytest

from redline.errors import RedlineError
from redline.ml.review import classifier_rows, entropy, priority, rank, rul_rows, top


@pytest.mark.parametrize(("p", "bits"), [
    (0.0, 0.0),
    (1.0, 0.0),
    (0.5, 1.0),
    # -(0.25 log2 0.25 + 0.75 log2 0.75) = 0.5 + 0.75 * 0.415037 = 0.811278
    (0.25, 0.811278),
    (0.75, 0.811278),
    # -(0.1 log2 0.1 + 0.9 log2 0.9) = 0.332193 + 0.136803 = 0.468996
    (0.1, 0.468996),
    # -(0.99 log2 0.99 + 0.01 log2 0.01) = 0.014355 + 0.066439 = 0.080793
    (0.99, 0.080793),
])
def test_entropy_at_hand_points(p, bits):
    assert entropy(p) == pytest.approx(bits, abs=1e-6)
    assert isinstance(entropy(p), float)


def test_entropy_is_vectorised_and_exactly_zero_at_the_ends():
    h = entropy(np.array([0.0, 0.5, 1.0]))
    assert isinstance(h, np.ndarray)
    assert h.tolist() == [0.0, 1.0, 0.0]


@pytest.mark.parametrize("p", [-0.01, 1.2, math.nan])
def test_entropy_rejects_non_probabilities(p):
    with pytest.raises(RedlineError, match=r"must lie in \[0, 1\]") as err:
        entropy([0.5, p])
    assert err.value.code == "REVIEW_INPUT_INVALID"


def test_classifier_rows():
    frame = pd.DataFrame({"udi": [1, 2], "failure_probability": [0.5, 0.1]})
    out = classifier_rows(frame)
    assert out["risk"].tolist() == [0.5, 0.1]
    assert out["uncertainty"].tolist() == pytest.approx([1.0, 0.468996], abs=1e-6)
    assert "risk" not in frame.columns  # a copy, the input is left alone
    with pytest.raises(RedlineError, match=r"column 'p': probabilities must lie"):
        classifier_rows(pd.DataFrame({"p": [1.5]}), "p")
    with pytest.raises(RedlineError, match=r"lacks columns \['failure_probability'\]"):
        classifier_rows(pd.DataFrame({"p": [0.5]}))


def test_rul_rows():
    frame = pd.DataFrame({"rul_pred": [0.0, 25.0, 125.0, 200.0, -5.0],
                          "rul_spread": [0.0, 5.0, 25.0, 50.0, 12.5]})
    out = rul_rows(frame)
    # risk = 1 - clip(pred, 0, 125) / 125: 1, 1 - 25/125 = 0.8, 0, 0 (past the cap), 1.
    assert out["risk"].tolist() == pytest.approx([1.0, 0.8, 0.0, 0.0, 1.0])
    # uncertainty = clip(spread / 25, 0, 1): 0, 0.2, 1, 1 (clipped), 0.5.
    assert out["uncertainty"].tolist() == pytest.approx([0.0, 0.2, 1.0, 1.0, 0.5])
    # A cap of 100 cycles scales the spread to 20: 25 / 20 -> 1, 12.5 / 20 = 0.625.
    other = rul_rows(frame, cap=100.0)
    assert other["risk"].tolist() == pytest.approx([1.0, 0.75, 0.0, 0.0, 1.0])
    assert other["uncertainty"].tolist() == pytest.approx([0.0, 0.25, 1.0, 1.0, 0.625])
    assert rul_rows(frame, spread_scale=50.0)["uncertainty"].tolist() == pytest.approx(
        [0.0, 0.1, 0.5, 1.0, 0.25])


@pytest.mark.parametrize(("frame", "kwargs", "match"), [
    (pd.DataFrame({"rul_pred": [10.0], "rul_spread": [-1.0]}), {}, "'rul_spread' must be >= 0"),
    (pd.DataFrame({"rul_pred": [math.nan], "rul_spread": [1.0]}), {}, "'rul_pred' has 1 NaN"),
    (pd.DataFrame({"rul_pred": [10.0]}), {}, r"lacks columns \['rul_spread'\]"),
    (pd.DataFrame({"rul_pred": [10.0], "rul_spread": [1.0]}), {"cap": 0.0}, "cap is 0.0"),
    (pd.DataFrame({"rul_pred": [10.0], "rul_spread": [1.0]}), {"spread_scale": -2.0},
     "spread_scale is -2.0"),
], ids=["negative-spread", "nan-pred", "no-spread", "zero-cap", "negative-scale"])
def test_rul_rows_bad_input(frame, kwargs, match):
    with pytest.raises(RedlineError, match=match):
        rul_rows(frame, **kwargs)


def test_priority():
    assert priority(0.5, 0.5) == pytest.approx(0.5)
    assert priority(1.0, 0.0) == 0.0  # a certain failure is action, not labelling
    assert priority(0.0, 1.0) == 0.0  # an unsure but harmless item can wait
    # sqrt(0.99 * 0.080793) = sqrt(0.079985) = 0.282816: visible, but below p = 0.5's
    # sqrt(0.5 * 1) = 0.707107.
    assert priority(0.99, entropy(0.99)) == pytest.approx(0.282816, abs=1e-6)
    assert priority(0.5, entropy(0.5)) == pytest.approx(0.707107, abs=1e-6)
    assert priority(np.array([0.2, 0.8]), np.array([0.8, 0.2])).tolist() == pytest.approx(
        [0.4, 0.4])
    with pytest.raises(RedlineError, match=r"uncertainty must lie in \[0, 1\]; got \[1.5\]"):
        priority(0.5, 1.5)


def _queue() -> pd.DataFrame:
    """Three AI4I runs and two C-MAPSS engines, shuffled so the order is the code's."""
    ai4i = classifier_rows(pd.DataFrame({
        "task": "ai4i_failure", "entity": ["101", "102", "103"],
        "failure_probability": [0.5, 0.99, 0.02]}))
    cmapss = rul_rows(pd.DataFrame({
        "task": "cmapss_rul", "entity": ["FD001-3", "FD001-7"],
        "rul_pred": [100.0, 25.0], "rul_spread": [50.0, 20.0]}))
    cols = ["task", "entity", "risk", "uncertainty"]
    return pd.concat([ai4i[cols], cmapss[cols]], ignore_index=True).iloc[[2, 4, 0, 3, 1]]


def test_rank_hand_made_queue():
    # FD001-7: risk 1 - 25/125 = 0.8, uncertainty 20/25 = 0.8 -> sqrt(0.64) = 0.8
    # 101:     risk 0.5, entropy 1                              -> sqrt(0.5) = 0.707107
    # FD001-3: risk 1 - 100/125 = 0.2, uncertainty 50/25 -> 1    -> sqrt(0.2) = 0.447214
    # 102:     risk 0.99, entropy 0.080793                      -> 0.282816
    # 103:     risk 0.02, entropy 0.02*5.643856 + 0.98*0.029146 = 0.141441
    #                                                           -> sqrt(0.002829) = 0.053187
    out = rank(_queue())
    assert out["entity"].tolist() == ["FD001-7", "101", "FD001-3", "102", "103"]
    assert out["rank"].tolist() == [1, 2, 3, 4, 5]
    assert out["rank"].dtype == np.int32
    assert out["priority"].tolist() == pytest.approx(
        [0.8, 0.707107, 0.447214, 0.282816, 0.053187], abs=1e-6)
    assert list(out.index) == [0, 1, 2, 3, 4]
    assert top(_queue(), 2)["entity"].tolist() == ["FD001-7", "101"]
    assert len(top(_queue(), 10)) == 5
    assert top(_queue(), 0).empty


def test_ties_are_broken_by_task_then_entity_whatever_the_input_order():
    # All four have priority sqrt(0.5 * 0.5) = 0.5 except cmapss/a, sqrt(0.25 * 0.64) = 0.4.
    rows = [("cmapss_rul", "b", 0.5, 0.5), ("ai4i_failure", "z", 0.5, 0.5),
            ("ai4i_failure", "a", 0.5, 0.5), ("cmapss_rul", "a", 0.25, 0.64),
            ("cmapss_rul", "c", 0.5, 0.5)]
    expected = [("ai4i_failure", "a"), ("ai4i_failure", "z"), ("cmapss_rul", "b"),
                ("cmapss_rul", "c"), ("cmapss_rul", "a")]
    for order in itertools.permutations(rows):
        frame = pd.DataFrame(list(order), columns=["task", "entity", "risk", "uncertainty"])
        out = rank(frame)
        assert list(out[["task", "entity"]].itertuples(index=False, name=None)) == expected
        assert out["rank"].tolist() == [1, 2, 3, 4, 5]


def test_rank_bad_input():
    frame = pd.DataFrame({"task": ["t", "t"], "entity": ["e", "e"], "risk": [0.1, 0.2],
                          "uncertainty": [0.5, 0.5]})
    with pytest.raises(RedlineError, match=r"must be unique; repeated: \[\('t', 'e'\)\]"):
        rank(frame)
    with pytest.raises(RedlineError, match=r"lacks columns \['task'\]"):
        rank(frame.drop(columns="task"))
    with pytest.raises(RedlineError, match="n is -1"):
        top(frame, -1)
