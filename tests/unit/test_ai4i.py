"""AI4I 2020 features on hand-made process runs, and the failure classifier on small
synthetic frames. Every expected value is worked out by hand in the comment beside it."""

from __future__ import annotations

import itertools
import pickle
from datetime import datetime

import numpy as np
import pandas as pd
import pytest
from pyspark.testing import assertDataFrameEqual, assertSchemaEqual

from redline.errors import RedlineError
from redline.ml import ai4i, classifier
from redline.schemas import tables
from redline.schemas.payloads import latest

_seq = itertools.count()


def _process(udi: int, kind: str, air: float, process: float, rpm: int, torque: float,
             wear: int, failed: bool = False, at: datetime = datetime(2020, 1, 1),
             **modes: bool) -> dict:
    return {"event_time": at, "udi": udi, "product_id": f"{kind}{47180 + udi}",
            "type": kind, "air_temperature_k": air, "process_temperature_k": process,
            "rotational_speed_rpm": rpm, "torque_nm": torque, "tool_wear_min": wear,
            "machine_failure": failed,
            **{m: modes.get(m, False) for m in ai4i.FAILURE_MODES}}


def _silver(spark, rows: list[dict]):
    """silver.ai4i_process from payload fields; envelope and lineage filled in."""
    schema = tables.silver(latest("ai4i_process"))
    full = []
    for row in rows:
        n = next(_seq)
        full.append({"event_id": f"e-{n:04d}", "schema_version": 1,
                     "kafka_topic": "ai4i_process", "kafka_partition": 0, "kafka_offset": n,
                     **row})
    return spark.createDataFrame([tuple(r.get(f.name) for f in schema.fields) for r in full],
                                 schema)


T0 = datetime(2020, 1, 1, 0, 1)


def test_features_by_hand(spark):
    silver = _silver(spark, [
        # temperature difference 308.6 - 298.1 = 10.5 K; power 40 Nm at 1500 rpm =
        # 40 * 1500 * 2 pi / 60 = 2000 pi = 6283.185 W; overstrain 0 min * 40 Nm = 0.
        _process(1, "M", 298.1, 308.6, 1500, 40.0, 0, at=T0),
        # 309.0 - 300.0 = 9.0 K; 60 * 1200 * 2 pi / 60 = 2400 pi = 7539.822 W;
        # 200 min * 60 Nm = 12000 min Nm; an overstrain failure: label 1.
        _process(2, "L", 300.0, 309.0, 1200, 60.0, 200, failed=True, osf=True, at=T0),
        # Published twice: the later event is the run (tool wear 10 -> 20 min).
        _process(3, "H", 301.0, 311.5, 2000, 10.0, 10, at=T0),
        _process(3, "H", 301.0, 311.5, 2000, 10.0, 20, at=datetime(2020, 1, 1, 0, 3)),
        # A random failure (RNF) without machine failure, as in 18 rows of the data: label
        # 0; 310.2 - 302.2 = 8.0 K; 50 * 1300 * 2 pi / 60 = 13000 pi / 6 = 6806.784 W.
        _process(4, "L", 302.2, 310.2, 1300, 50.0, 100, rnf=True, at=T0),
    ])
    out = ai4i.features(silver)

    assert out.schema == tables.AI4I_FEATURES
    assertSchemaEqual(out.schema, tables.AI4I_FEATURES)
    expected = spark.createDataFrame([
        (1, "M47181", "M", T0, 298.1, 308.6, 1500, 40.0, 0, 10.5, 6283.185307, 0.0, 0),
        (2, "L47182", "L", T0, 300.0, 309.0, 1200, 60.0, 200, 9.0, 7539.822369, 12000.0, 1),
        # 311.5 - 301.0 = 10.5 K; 10 * 2000 * 2 pi / 60 = 2000 pi / 3 = 2094.395 W;
        # 20 min * 10 Nm = 200 min Nm.
        (3, "H47183", "H", datetime(2020, 1, 1, 0, 3), 301.0, 311.5, 2000, 10.0, 20, 10.5,
         2094.395102, 200.0, 0),
        (4, "L47184", "L", T0, 302.2, 310.2, 1300, 50.0, 100, 8.0, 6806.784083, 5000.0, 0),
    ], tables.AI4I_FEATURES)
    assertDataFrameEqual(out, expected, rtol=1e-9)


def test_failure_modes_are_never_features(spark):
    modes = set(ai4i.FAILURE_MODES)
    assert modes == {"twf", "hdf", "pwf", "osf", "rnf"}
    assert not modes & set(tables.AI4I_FEATURES.fieldNames())
    assert not modes & set(ai4i.FEATURES)
    assert ai4i.LABEL not in ai4i.FEATURES
    assert ai4i.FEATURES == ai4i.CATEGORICAL + ai4i.NUMERIC
    assert set(ai4i.FEATURES) < set(tables.AI4I_FEATURES.fieldNames())
    silver = _silver(spark, [_process(1, "L", 300.0, 309.0, 1200, 60.0, 200, failed=True,
                                      twf=True, hdf=True, pwf=True, osf=True, rnf=True)])
    assert not modes & set(ai4i.features(silver).columns)


# --- the classifier ------------------------------------------------------------------------

def _frame(n: int, seed: int, failing_every: int | None = None) -> pd.DataFrame:
    """Synthetic gold rows. A run fails exactly when its torque is high: torques are
    drawn from 20-50 Nm or from 70-90 Nm (every ``failing_every``-th run), nothing in
    between, and every other column is noise."""
    rng = np.random.default_rng(seed)
    udi = np.arange(1, n + 1)
    failing = (udi % failing_every == 0) if failing_every else rng.random(n) < 0.2
    torque = np.where(failing, rng.uniform(70, 90, n), rng.uniform(20, 50, n))
    air = rng.normal(300, 2, n)
    process = air + 10 + rng.normal(0, 1, n)
    return pd.DataFrame({
        "udi": udi, "product_id": [f"P{u}" for u in udi],
        "type": rng.choice(["L", "M", "H"], n),
        "air_temperature_k": air, "process_temperature_k": process,
        "rotational_speed_rpm": rng.integers(1200, 2800, n),
        "torque_nm": torque, "tool_wear_min": rng.integers(0, 250, n),
        "temperature_difference_k": process - air,
        "power_w": rng.uniform(3000, 9000, n),
        "overstrain_nm_min": rng.uniform(0, 12000, n),
        "machine_failure": failing.astype(int),
    })


def test_the_split_is_stratified_disjoint_and_fixed():
    # 200 runs, every 5th failing: 40 failures, 160 not.
    frame = _frame(200, seed=1, failing_every=5)
    train, test = classifier.split(frame)
    # 20 % of 200 = 40 test rows; stratified: 20 % of 40 failures = 8 of them, and
    # 20 % of 160 = 32 non-failures; the training part keeps 32 failures of 160 rows.
    assert (len(train), len(test)) == (160, 40)
    assert (test["machine_failure"].sum(), train["machine_failure"].sum()) == (8, 32)
    assert not set(train["udi"]) & set(test["udi"])
    assert set(train["udi"]) | set(test["udi"]) == set(range(1, 201))
    # The same rows in another order, read again: the same split.
    again_train, again_test = classifier.split(frame.sample(frac=1.0, random_state=7))
    assert sorted(again_test["udi"]) == sorted(test["udi"])
    assert sorted(again_train["udi"]) == sorted(train["udi"])


@pytest.mark.parametrize("frame, match", [
    (pd.DataFrame({"udi": [1, 2, 3], "machine_failure": [0, 0, 0]}), r"machine_failure values \[0\]"),
    (pd.DataFrame({"udi": [1, 2]}), r"lacks column\(s\) \['machine_failure'\]"),
])
def test_a_frame_the_split_cannot_use_is_refused(frame, match):
    with pytest.raises(RedlineError, match=match):
        classifier.split(frame)


def test_the_threshold_is_the_f1_best_cut_by_hand():
    # Cuts at the distinct probabilities: >= 0.1: 2 of 4 predicted are failures,
    # precision 1/2, recall 1, F1 2/3; >= 0.35: precision 2/3, recall 1, F1 0.8;
    # >= 0.4: precision 1/2, recall 1/2, F1 1/2; >= 0.8: precision 1, recall 1/2, F1 2/3.
    # Best: >= 0.35, placed midway to the next lower probability: (0.1 + 0.35) / 2 = 0.225.
    threshold, f1 = classifier.best_threshold(np.array([0, 0, 1, 1]),
                                              np.array([0.1, 0.4, 0.35, 0.8]))
    assert threshold == pytest.approx(0.225)
    assert f1 == pytest.approx(0.8)


@pytest.mark.parametrize(("p", "bits"), [
    (0.0, 0.0), (1.0, 0.0), (0.5, 1.0),
    # -(0.25 log2 0.25 + 0.75 log2 0.75) = 0.5 + 0.75 * 0.415037 = 0.811278
    (0.25, 0.811278), (0.75, 0.811278),
    # -(0.1 log2 0.1 + 0.9 log2 0.9) = 0.332193 + 0.136803 = 0.468996
    (0.1, 0.468996),
])
def test_entropy_at_hand_points(p, bits):
    assert classifier.entropy(p) == pytest.approx(bits, abs=1e-6)
    h = classifier.entropy(np.array([p, 0.5]))
    assert h == pytest.approx([bits, 1.0], abs=1e-6)


@pytest.fixture(scope="module")
def fitted():
    """A small model fitted on 400 synthetic runs (about 80 failing), and 200 fresh runs."""
    train = _frame(400, seed=2)
    return classifier.fit(train, {"n_estimators": 20}), _frame(200, seed=3)


def test_a_fit_learns_the_obvious_rule(fitted):
    model, test = fitted
    assert 0 < model.threshold_ < 1
    assert model.cv_f1_ == 1.0
    figures = classifier.evaluate(model, test)
    assert figures["n"] == 200
    assert figures["positives"] == test["machine_failure"].sum()
    assert (figures["f1"], figures["precision"], figures["recall"]) == (1.0, 1.0, 1.0)
    assert figures["pr_auc"] == figures["roc_auc"] == 1.0
    assert figures["threshold"] == model.threshold_
    # The model reads FEATURES only: extra columns, a failure-mode flag among them, are
    # not looked at; the label at 30 Nm and at 80 Nm.
    runs = test.head(2).assign(torque_nm=[30.0, 80.0], osf=[1, 0])
    assert model.predict(runs).tolist() == [0, 1]
    assert model.predict_proba(runs).shape == (2, 2)

    ranked = classifier.importance(model, test, repeats=2)
    assert ranked.columns.tolist() == ["feature", "importance"]
    assert sorted(ranked["feature"]) == sorted(ai4i.FEATURES)
    assert ranked["feature"].iloc[0] == "torque_nm"

    curve = classifier.pr_curve(model, test)
    assert curve.columns.tolist() == ["threshold", "precision", "recall"]
    assert curve["threshold"].is_monotonic_increasing
    calibrated = classifier.calibration(model, test, bins=5)
    assert calibrated.columns.tolist() == ["predicted", "observed"]
    assert calibrated["observed"].between(0, 1).all()


def test_the_model_pickles_and_clones(fitted):
    import skops.io
    from sklearn.base import clone

    model, test = fitted
    x = test[list(ai4i.FEATURES)]
    blob = skops.io.dumps(model)
    loaded = skops.io.loads(blob, trusted=skops.io.get_untrusted_types(data=blob))
    assert loaded.threshold_ == model.threshold_
    assert np.array_equal(loaded.predict_proba(x), model.predict_proba(x))
    assert np.array_equal(pickle.loads(pickle.dumps(model)).predict(x), model.predict(x))
    assert clone(model).get_params()["cv"] == classifier.CV_FOLDS


@pytest.mark.parametrize("train, params, match", [
    (_frame(50, seed=4).drop(columns="power_w"), None, r"lacks column\(s\) \['power_w'\]"),
    (_frame(50, seed=4), {"n_trees": 5}, r"unknown GradientBoostingClassifier parameter\(s\) \['n_trees'\]"),
    (_frame(50, seed=4, failing_every=25), None, "has 2 failure"),
])
def test_a_fit_that_cannot_work_is_refused(train, params, match):
    with pytest.raises(RedlineError, match=match):
        classifier.fit(train, params)
