"""C-MAPSS RUL modelling on hand-made frames: metrics, engine split, truncation, windows,
and a tiny GRU ensemble trained in about a second.

Every expected value is worked out by hand (or with numpy on the literal inputs) in the
comment beside it.
"""

from __future__ import annotations

import io
import math
import pickle

import numpy as np
import pandas as pd
import pytest
import torch

from redline.errors import RedlineError
from redline.ml.rul import (
    CAP,
    RulEnsemble,
    RulParams,
    add_age_column,
    add_condition_columns,
    fit,
    fit_baseline,
    phm08_score,
    predict,
    predict_baseline,
    rmse,
    split_engines,
    summary_features,
    truncate,
    windows,
)


def _engine(engine_id: str, n: int, **columns) -> pd.DataFrame:
    return pd.DataFrame({"engine_id": engine_id, "cycle": np.arange(1, n + 1), **columns})


def _synthetic(n_engines: int = 12, seed: int = 0) -> pd.DataFrame:
    """Engines of 40-70 cycles whose two sensors drift with wear, plus noise; ``rul`` and
    ``rul_target`` as the feature table defines them."""
    rng = np.random.default_rng(seed)
    frames = []
    for i in range(n_engines):
        n = int(rng.integers(40, 71))
        rul = n - np.arange(1, n + 1)
        wear = np.clip(1 - rul / 50, 0, None)
        frames.append(_engine(f"E{i:02d}", n, sensor_a=wear + rng.normal(0, 0.05, n),
                              sensor_b=-wear + rng.normal(0, 0.05, n), rul=rul,
                              rul_target=np.minimum(rul, CAP), last_cycle=n))
    return pd.concat(frames, ignore_index=True)


FEATURES = ["sensor_a", "sensor_b"]


# -- metrics -------------------------------------------------------------------------------


def test_rmse_by_hand():
    # d = (3, -4): sqrt((9 + 16) / 2) = sqrt(12.5)
    assert rmse([13, 6], [10, 10]) == pytest.approx(math.sqrt(12.5))
    assert rmse([5.0], [5.0]) == 0.0


def test_phm08_score_by_hand():
    # d = -13 (early): e^1 - 1;  d = 10 (late): e^1 - 1;  d = 0: e^0 - 1 = 0
    assert phm08_score([87, 110, 50], [100, 100, 50]) == pytest.approx(2 * (math.e - 1))
    # late costs more than early by the same margin: d = +5 -> e^0.5 - 1 = 0.6487,
    # d = -5 -> e^(5/13) - 1 = e^0.384615 - 1 = 0.469049
    assert phm08_score([105], [100]) == pytest.approx(0.6487212707)
    assert phm08_score([95], [100]) == pytest.approx(0.4690492)


def test_metrics_reject_mismatched_lengths():
    with pytest.raises(RedlineError, match="same length"):
        rmse([1, 2], [1])
    with pytest.raises(RedlineError, match="same length"):
        phm08_score([], [])


# -- split and truncation ------------------------------------------------------------------


def test_split_engines_is_disjoint_complete_and_deterministic():
    ids = [f"E{i:02d}" for i in range(10)]
    train, validation = split_engines(ids, 0.2, seed=3)
    assert len(validation) == 2 and len(train) == 8
    assert set(train).isdisjoint(validation)
    assert set(train) | set(validation) == set(ids)
    # Order and repetition of the ids (one per row of a feature table) do not matter.
    rows = [e for e in reversed(ids) for _ in range(3)]
    assert split_engines(rows, 0.2, seed=3) == (train, validation)
    # Another seed draws another split (for these ten ids and seeds 3 and 4).
    assert split_engines(ids, 0.2, seed=4) != (train, validation)


@pytest.mark.parametrize("fraction", [0.0, 1.0, -0.1])
def test_split_engines_rejects_a_bad_fraction(fraction):
    with pytest.raises(RedlineError, match="validation_fraction"):
        split_engines(["A", "B"], fraction)


def test_truncate_keeps_a_prefix_of_each_engine_and_the_true_rul():
    frame = pd.concat([_engine("A", 60, rul=np.arange(59, -1, -1)),
                       _engine("B", 25, rul=np.arange(24, -1, -1))], ignore_index=True)
    cut = truncate(frame, seed=1, max_rul=10, min_kept=20)
    for engine, n in (("A", 60), ("B", 25)):
        kept = cut[cut.engine_id == engine]
        last = kept.cycle.max()
        # A prefix: cycles 1..last, none missing.
        assert kept.cycle.tolist() == list(range(1, last + 1))
        # rul is untouched: still the cycles to the real failure.
        assert kept.rul.iloc[-1] == n - last
    # A: the RUL at the cut is in 1..min(10, 60 - 20) = 1..10.
    assert 1 <= cut[cut.engine_id == "A"].rul.iloc[-1] <= 10
    # B: 1..min(10, 25 - 20) = 1..5, so at least 20 cycles are kept.
    assert 1 <= cut[cut.engine_id == "B"].rul.iloc[-1] <= 5
    pd.testing.assert_frame_equal(cut, truncate(frame.sample(frac=1, random_state=0),
                                                seed=1, max_rul=10, min_kept=20))


def test_truncate_draws_the_rul_uniformly():
    # 400 identical engines of 200 cycles, max_rul 50: RUL at the cut uniform on 1..50,
    # mean 25.5 and every value possible.
    frame = pd.concat([_engine(f"E{i:03d}", 200, rul=np.arange(199, -1, -1))
                       for i in range(400)], ignore_index=True)
    at_cut = truncate(frame, seed=0, max_rul=50).groupby("engine_id").rul.last()
    assert at_cut.between(1, 50).all()
    assert at_cut.mean() == pytest.approx(25.5, abs=2.0)
    assert at_cut.nunique() > 40


# -- windows -----------------------------------------------------------------------------


def test_windows_shape_order_and_left_padding():
    # Rows given out of order; engine B has 2 cycles, shorter than the window of 3.
    frame = pd.DataFrame({
        "engine_id": ["B", "A", "A", "B", "A", "A"],
        "cycle": [2, 3, 1, 1, 2, 4],
        "s1": [21.0, 3.0, 1.0, 11.0, 2.0, 4.0],
        "s2": [-21.0, -3.0, -1.0, -11.0, -2.0, -4.0],
        "rul_target": [0.0, 1.0, 3.0, 1.0, 2.0, 0.0],
    })
    X, y, keys = windows(frame, ["s1", "s2"], window=3)
    assert X.dtype == np.float32 and X.shape == (6, 3, 2)
    assert keys.engine_id.tolist() == ["A", "A", "A", "A", "B", "B"]
    assert keys.cycle.tolist() == [1, 2, 3, 4, 1, 2]
    # s1 of each window: A's first cycles padded with A's first row (1.0).
    np.testing.assert_array_equal(X[:, :, 0], [[1, 1, 1], [1, 1, 2], [1, 2, 3], [2, 3, 4],
                                               [11, 11, 11], [11, 11, 21]])
    np.testing.assert_array_equal(X[:, :, 1], -X[:, :, 0])
    np.testing.assert_array_equal(y, [3, 2, 1, 0, 1, 0])

    X_last, y_last, keys_last = windows(frame, ["s1", "s2"], window=3, last_only=True)
    assert keys_last.values.tolist() == [["A", 4], ["B", 2]]
    np.testing.assert_array_equal(X_last[:, :, 0], [[2, 3, 4], [11, 11, 21]])
    np.testing.assert_array_equal(y_last, [0, 0])


def test_windows_without_target_and_bad_input():
    frame = _engine("A", 3, s1=[1.0, 2.0, np.nan])
    with pytest.raises(RedlineError, match=r"\['s1'\] have null"):
        windows(frame, ["s1"], 2)
    with pytest.raises(RedlineError, match=r"lacks columns \['s9'\]"):
        windows(frame, ["s9"], 2)
    _, y, _ = windows(frame.fillna(0.0), ["s1"], 2)
    assert y is None


def test_summary_features_by_hand():
    # One window of 3 cycles, two features: (1, 2, 6) and (5, 5, 5).
    # last: 6, 5; mean: 3, 5; slope with t = (-1, 0, 1): (-1 + 6) / 2 = 2.5 and 0.
    X = np.array([[[1, 5], [2, 5], [6, 5]]], dtype=np.float32)
    np.testing.assert_allclose(summary_features(X), [[6, 5, 3, 5, 2.5, 0]])


def test_add_condition_columns():
    frame = pd.DataFrame({"condition": ["0_0_100", "42_84_100", "0_0_100"]})
    out, names = add_condition_columns(frame, ["0_0_100", "10_25_100", "42_84_100"])
    assert names == ["condition_0_0_100", "condition_10_25_100", "condition_42_84_100"]
    np.testing.assert_array_equal(out[names].to_numpy(), [[1, 0, 0], [0, 0, 1], [1, 0, 0]])
    with pytest.raises(RedlineError, match=r"\['42_84_100'\] are not in conditions"):
        add_condition_columns(frame, ["0_0_100"])


def test_add_age_column():
    # age = cycle / 125
    out, names = add_age_column(_engine("A", 3))
    assert names == ["age"]
    np.testing.assert_allclose(out["age"], [0.008, 0.016, 0.024])


# -- the ensemble ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def trained():
    torch.set_num_threads(1)
    frame = _synthetic()
    epochs = []
    model = fit(frame, FEATURES, RulParams.small(epochs=4),
                on_epoch=lambda e, m: epochs.append((e, m)),
                validation_frame=truncate(frame, seed=0, max_rul=30))
    return frame, model, epochs


def test_fit_reports_every_epoch(trained):
    _, _, epochs = trained
    assert [e for e, _ in epochs] == [1, 2, 3, 4]
    for _, metrics in epochs:
        assert {"train_rmse", "lr", "validation_rmse", "validation_phm08"} <= set(metrics)
        assert all(math.isfinite(v) for v in metrics.values())


def test_forward_is_deterministic_with_a_non_negative_spread(trained):
    frame, model, _ = trained
    X, _, _ = windows(frame, FEATURES, model.window)
    x = torch.from_numpy(X)
    with torch.no_grad():
        first, second = model(x), model(x)
    assert first.shape == (len(X), 2)
    torch.testing.assert_close(first, second, rtol=0, atol=0)
    assert (first[:, 1] >= 0).all() and (first[:, 1] > 0).any()
    # Column 0 and 1 are the mean and population std of the members' outputs.
    members = model.member_outputs(x).detach().numpy() * CAP
    np.testing.assert_allclose(first[:, 0].numpy(), members.mean(axis=1), rtol=1e-5, atol=1e-4)
    np.testing.assert_allclose(first[:, 1].numpy(), members.std(axis=1), rtol=1e-4, atol=1e-4)


def test_training_is_seeded():
    frame = _synthetic(n_engines=4)
    params = RulParams.small(epochs=1, members=2)
    a, b = fit(frame, FEATURES, params), fit(frame, FEATURES, params)
    for pa, pb in zip(a.parameters(), b.parameters()):
        torch.testing.assert_close(pa, pb, rtol=0, atol=0)


def test_predict_one_row_per_engine_at_its_last_cycle(trained):
    frame, model, _ = trained
    cut = truncate(frame, seed=0, max_rul=30)
    scored = predict(model, cut, FEATURES)
    expected = cut.groupby("engine_id", as_index=False).cycle.max()
    assert scored[["engine_id", "cycle"]].values.tolist() == expected.values.tolist()
    assert list(scored.columns) == ["engine_id", "cycle", "rul_pred", "rul_spread", "rul"]
    assert (scored.rul_pred >= 0).all() and (scored.rul_spread >= 0).all()


def test_a_wrong_input_shape_names_the_expected_one(trained):
    _, model, _ = trained
    with pytest.raises(RedlineError, match=r"takes \(n, 5, 2\)"):
        model(torch.zeros(1, 4, 2))


def test_ensemble_pickles_and_predicts_the_same(trained):
    frame, model, _ = trained
    buffer = io.BytesIO()
    torch.save(model, buffer)
    buffer.seek(0)
    loaded = torch.load(buffer, weights_only=False)
    assert isinstance(loaded, RulEnsemble)
    pd.testing.assert_frame_equal(predict(loaded, frame, FEATURES), predict(model, frame, FEATURES))
    again = pickle.loads(pickle.dumps(model))
    pd.testing.assert_frame_equal(predict(again, frame, FEATURES), predict(model, frame, FEATURES))


def test_early_stopping_keeps_the_best_epoch():
    frame = _synthetic()
    seen = []
    fit(frame, FEATURES, RulParams.small(epochs=6, early_stopping_fraction=0.25, patience=2),
        on_epoch=lambda e, m: seen.append(m["early_stopping_rmse"]))
    assert 1 <= len(seen) <= 6


def test_params_are_validated():
    with pytest.raises(RedlineError, match=r"RulParams.window=0"):
        RulParams(window=0)
    with pytest.raises(RedlineError, match=r"early_stopping_fraction=1.0"):
        RulParams(early_stopping_fraction=1.0)


# -- baseline ---------------------------------------------------------------------------------


def test_baseline_predicts_like_the_ensemble():
    frame = _synthetic()
    model = fit_baseline(frame, FEATURES, RulParams.small())
    scored = predict_baseline(model, frame, FEATURES, window=5)
    assert list(scored.columns) == ["engine_id", "cycle", "rul_pred", "rul_spread", "rul"]
    assert len(scored) == frame.engine_id.nunique()
    assert (scored.rul_spread == 0).all()
    # At the last cycle the true RUL is 0 and wear is obvious: the trees get close.
    assert scored.rul_pred.max() < 10
