"""Population stability index on hand-made bins; every expected PSI is worked out by hand
in the comment beside it (ln is the natural log; EPSILON = 1e-4 stands in for an empty
bin's proportion)."""

from __future__ import annotations

import json
import math
from datetime import date
from statistics import NormalDist

import numpy as np
import pandas as pd
import pytest

from redline.errors import RedlineError
from redline.ml.drift import (
    EPSILON,
    WARN_PSI,
    Reference,
    drift_by_day,
    psi,
    reference,
    references,
)


def _psi(actual, expected):
    """PSI written out independently of the module: sum((a - e) * ln(a / e))."""
    a = np.maximum(np.asarray(actual, dtype=float), EPSILON)
    e = np.maximum(np.asarray(expected, dtype=float), EPSILON)
    return float(np.sum((a - e) * np.log(a / e)))


def test_two_bins_fifty_fifty_against_eighty_twenty():
    # bins=2 cuts at the median, 0: bins (-inf, 0], (0, +inf) and missing.
    ref = reference([0.0] * 50 + [1.0] * 50, bins=2)
    assert ref.edges == (0.0,)
    assert ref.expected == (0.5, 0.5, 0.0)
    # (0.8 - 0.5) ln(0.8/0.5) + (0.2 - 0.5) ln(0.2/0.5) + 0 (missing empty on both sides)
    # = 0.3 * 0.470004 + (-0.3) * (-0.916291) = 0.141001 + 0.274887 = 0.415888
    value = psi(ref, [0.0] * 80 + [1.0] * 20)
    assert value == pytest.approx(0.415888, abs=1e-6)
    assert value == pytest.approx(_psi([0.8, 0.2, 0.0], [0.5, 0.5, 0.0]), rel=1e-12)
    assert value >= WARN_PSI


def test_identical_distribution_is_zero():
    x = np.random.default_rng(1).normal(size=1000)
    assert psi(reference(x), x) == pytest.approx(0.0, abs=1e-12)
    assert psi(reference(x), np.random.default_rng(1).permutation(x)) == pytest.approx(0.0,
                                                                                       abs=1e-12)


def test_deciles_and_new_extremes_land_in_the_end_bin():
    ref = reference(np.arange(1, 101, dtype=float))
    # inverted_cdf deciles of 1..100 are training values: 10, 20, ..., 90.
    assert ref.edges == tuple(float(v) for v in range(10, 100, 10))
    assert ref.expected == pytest.approx((0.1,) * 10 + (0.0,))
    # Every value is beyond the training maximum, so all of it lands in (90, +inf):
    # top bin (1 - 0.1) ln(1/0.1) = 0.9 * 2.302585 = 2.072327;
    # nine emptied bins 9 * (1e-4 - 0.1) ln(1e-4/0.1) = 9 * 0.0999 * 6.907755 = 6.210763;
    # total 8.283089.
    assert psi(ref, [1000.0] * 40) == pytest.approx(8.283089, abs=1e-5)
    # Below the minimum: the bottom bin (-inf, 10] takes it all, the same sum by symmetry.
    assert psi(ref, [-1000.0] * 40) == pytest.approx(8.283089, abs=1e-5)


def test_discrete_feature_edges_are_deduplicated():
    # Deciles of 70 zeros, 20 ones, 10 twos: 0.1..0.7 -> 0, 0.8 and 0.9 -> 1.
    ref = reference([0] * 70 + [1] * 20 + [2] * 10)
    assert ref.kind == "numeric"
    assert ref.edges == (0.0, 1.0)
    assert ref.expected == pytest.approx((0.7, 0.2, 0.1, 0.0))
    # Each value in its own bin: 0.5, 0.3, 0.2 against 0.7, 0.2, 0.1
    # (-0.2) ln(0.5/0.7) + 0.1 ln(0.3/0.2) + 0.1 ln(0.2/0.1)
    # = 0.067294 + 0.040547 + 0.069315 = 0.177156
    assert psi(ref, [0] * 5 + [1] * 3 + [2] * 2) == pytest.approx(0.177156, abs=1e-6)


def test_normal_shifted_by_one_sd_is_flagged_and_unshifted_is_not():
    rng = np.random.default_rng(20240301)
    ref = reference(rng.normal(0.0, 1.0, size=5000))
    same = psi(ref, rng.normal(0.0, 1.0, size=2000))
    shifted = psi(ref, rng.normal(1.0, 1.0, size=2000))
    # No drift: about (10 - 1) * (1/2000 + 1/5000) = 0.0063 from sampling alone.
    assert same < 0.05
    # Theory for exact deciles z_k of N(0, 1) and a batch from N(1, 1): the batch puts
    # Phi(z_k - 1) - Phi(z_{k-1} - 1) in bin k, against 0.1 in training.
    n = NormalDist()
    z = [-math.inf] + [n.inv_cdf(k / 10) for k in range(1, 10)] + [math.inf]
    a = [n.cdf(z[k + 1] - 1.0) - n.cdf(z[k] - 1.0) for k in range(10)]
    theory = _psi(a, [0.1] * 10)  # 0.90 (the continuous limit is 1.0, sd shift squared)
    assert shifted == pytest.approx(theory, abs=0.1)
    assert shifted >= WARN_PSI > same


def test_unseen_category_goes_to_other():
    ref = reference(pd.Series(["a"] * 50 + ["b"] * 50))
    assert ref.kind == "categorical"
    assert ref.categories == ("a", "b")
    assert ref.expected == (0.5, 0.5, 0.0, 0.0)  # a, b, other, missing
    # a: 0; b: (1e-4 - 0.5) ln(1e-4/0.5); other: (0.5 - 1e-4) ln(0.5/1e-4)
    # = 2 * 0.4999 * ln(5000) = 0.9998 * 8.517193 = 8.515490
    assert psi(ref, ["a"] * 50 + ["c"] * 50) == pytest.approx(8.515490, abs=1e-5)
    # Unseen categories share one bin: c and d together move the same 50%.
    assert psi(ref, ["a"] * 50 + ["c"] * 25 + ["d"] * 25) == pytest.approx(8.515490, abs=1e-5)


def test_bool_is_categorical():
    ref = reference(pd.Series([True] * 3 + [False]))
    assert ref.kind == "categorical"
    assert ref.categories == ("False", "True")
    assert ref.expected == (0.25, 0.75, 0.0, 0.0)


def test_missing_values_have_their_own_bin():
    ref = reference([1.0] * 90 + [math.nan] * 10, bins=2)
    assert ref.edges == (1.0,)
    assert ref.expected == pytest.approx((0.9, 0.0, 0.1))  # (-inf, 1], (1, inf), missing
    # Half the batch missing: (0.5 - 0.9) ln(0.5/0.9) + 0 + (0.5 - 0.1) ln(0.5/0.1)
    # = 0.235115 + 0.643775 = 0.878890
    assert psi(ref, [1.0] * 50 + [None] * 50) == pytest.approx(0.878890, abs=1e-6)
    # The same share missing as in training is no drift.
    assert psi(ref, [1.0] * 9 + [math.nan]) == pytest.approx(0.0, abs=1e-12)


def test_feature_that_starts_arriving_null_is_drift():
    ref = reference([1.0] * 100, bins=2)
    assert ref.expected == (1.0, 0.0, 0.0)
    # (1e-4 - 1) ln(1e-4/1) + (1 - 1e-4) ln(1/1e-4) = 2 * 0.9999 * 9.210340 = 18.418838
    assert psi(ref, pd.Series([None] * 20, dtype=float)) == pytest.approx(18.418838, abs=1e-5)


def test_missing_category():
    ref = reference(pd.Series(["a", "a", "a", None]))
    assert ref.expected == (0.75, 0.0, 0.25)  # a, other, missing
    # (0.25 - 0.75) ln(0.25/0.75) + (0.75 - 0.25) ln(0.75/0.25) = 2 * 0.5 * 1.098612
    assert psi(ref, ["a", None, None, None]) == pytest.approx(1.098612, abs=1e-6)


@pytest.mark.parametrize("values", [
    np.random.default_rng(3).normal(size=200),
    [0, 0, 1, 2, math.nan],
    pd.Series(["x", "y", None, "x"]),
], ids=["normal", "discrete-with-nan", "categorical"])
def test_reference_json_round_trip(values):
    ref = reference(values)
    back = Reference.from_dict(json.loads(json.dumps(ref.to_dict())))
    assert back == ref
    assert psi(back, values) == psi(ref, values)


def test_from_dict_rejects_unknown_and_missing_keys():
    good = reference([1.0, 2.0, 3.0]).to_dict()
    with pytest.raises(RedlineError, match=r"unknown keys \['colour'\]"):
        Reference.from_dict({**good, "colour": "red"})
    with pytest.raises(RedlineError, match=r"misses \['rows'\]"):
        Reference.from_dict({k: v for k, v in good.items() if k != "rows"})
    with pytest.raises(RedlineError, match="has 2 bins"):
        Reference.from_dict({**good, "edges": [], "expected": [0.5, 0.5, 0.0]})
    with pytest.raises(RedlineError, match="summing to 1"):
        Reference.from_dict({**good, "expected": [0.5] * len(good["expected"])})


@pytest.mark.parametrize(("call", "match"), [
    (lambda: reference([]), "no values"),
    (lambda: reference([1.0, 2.0], bins=1), "bins is 1"),
    (lambda: psi(reference([1.0, 2.0]), ["high"]), "reference is numeric but a value is not"),
    (lambda: psi(reference([1.0, 2.0]), []), "no values"),
], ids=["empty", "one-bin", "string-for-numeric", "empty-batch"])
def test_bad_input(call, match):
    with pytest.raises(RedlineError, match=match) as err:
        call()
    assert err.value.code == "DRIFT_INPUT_INVALID"


def test_a_feature_missing_in_every_training_row_drifts_when_values_arrive():
    ref = reference(pd.Series([math.nan] * 3, name="rise"))
    # Two bins: the one value bin (-inf, +inf), empty, and the missing bin with it all.
    assert ref.expected == (0.0, 1.0) and ref.rows == 3
    assert psi(ref, [math.nan, math.nan]) == pytest.approx(0.0)
    # Values now, none missing: a = (1, 1e-4), e = (1e-4, 1) after the floor, so
    # PSI = 2 * (1 - 1e-4) * ln(1e4) = 18.4188.
    assert psi(ref, [1.0, 2.0]) == pytest.approx(2 * 0.9999 * math.log(1e4), rel=1e-9)


def test_drift_by_day():
    rng = np.random.default_rng(11)
    train = pd.DataFrame({"torque": rng.normal(40.0, 10.0, size=3000),
                          "type": rng.choice(["L", "M", "H"], size=3000, p=[0.6, 0.3, 0.1])})
    refs = references(train, ["type", "torque"])
    assert sorted(refs) == ["torque", "type"]
    day1, day2 = date(2024, 3, 1), date(2024, 3, 2)
    batch = pd.concat([
        # Day 2 first, to show the output is sorted: torque up by one sd, type as trained.
        pd.DataFrame({"day": day2, "torque": rng.normal(50.0, 10.0, size=1500),
                      "type": rng.choice(["L", "M", "H"], size=1500, p=[0.6, 0.3, 0.1])}),
        # Day 1: torque as trained, but type H is replaced by a type never seen ("X").
        pd.DataFrame({"day": day1, "torque": rng.normal(40.0, 10.0, size=1000),
                      "type": rng.choice(["L", "M", "X"], size=1000, p=[0.6, 0.3, 0.1])}),
    ], ignore_index=True)
    out = drift_by_day(batch, "day", refs)
    assert list(out.columns) == ["day", "feature", "rows", "psi", "drifted"]
    assert list(out[["day", "feature"]].itertuples(index=False, name=None)) == [
        (day1, "torque"), (day1, "type"), (day2, "torque"), (day2, "type")]
    assert out["rows"].tolist() == [1000, 1000, 1500, 1500]
    assert out["drifted"].tolist() == [False, True, True, False]
    # Day 1 type, about: H 0.1 -> 0 and other 0 -> 0.1, each ~0.0999 * ln(1000) = 0.69.
    assert out["psi"].iloc[1] == pytest.approx(2 * 0.0999 * math.log(0.1 / EPSILON), abs=0.1)
    # A stricter threshold flags nothing more than the PSI says.
    strict = drift_by_day(batch, "day", refs, warn=100.0)
    assert not strict["drifted"].any()
    assert strict["psi"].tolist() == out["psi"].tolist()


def test_drift_by_day_names_missing_columns():
    refs = {"torque": reference([1.0, 2.0, 3.0])}
    with pytest.raises(RedlineError, match=r"lacks columns \['torque'\]"):
        drift_by_day(pd.DataFrame({"day": [date(2024, 3, 1)]}), "day", refs)
    with pytest.raises(RedlineError, match="missing days"):
        drift_by_day(pd.DataFrame({"day": [None], "torque": [1.0]}), "day", refs)
