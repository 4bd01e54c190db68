"""The C-MAPSS task against a real MLflow server, on a slice of the real FD001.

Thirty training engines of train_FD001 (units 1-30) go through the real gold job; six more
(units 31-36) are cut the way the test set is made and stand in for test engines, so
their true RUL is known here and `ml evaluate` can be checked against numpy. Trainings
are tiny (seconds): a near-untrained network (one epoch at a learning rate of 1e-7) is the
model every real one must beat.
"""

from __future__ import annotations

import dataclasses
import uuid
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from mlflow import MlflowClient
from simulated import silver_table

from redline import catalog
from redline import lake as lakeio
from redline.jobs import runner
from redline.ml import cmapss_task, rul, run
from redline.ml.registry import CHALLENGER, CHAMPION
from redline.services.mlflow_server import tracking_uri
from redline.streaming.replay import dataset, locate, read_cmapss

pytestmark = pytest.mark.integration

DATASETS = Path(__file__).resolve().parents[2] / "datasets"
TRAIN_UNITS = 30
TEST_UNITS = 6
GOOD = rul.RulParams.small(window=15, hidden=16, epochs=12, learning_rate=3e-3)
UNTRAINED = rul.RulParams.small(window=15, epochs=1, learning_rate=1e-7)


def _payloads() -> tuple[list[dict], dict[int, int]]:
    """Training engines 1-30, and engines 31-36 cut short as test units 1-6 with the true
    RUL at their cut (cycles to their real failure)."""
    rows = [e.payload for e in read_cmapss(locate(DATASETS, dataset("cmapss"), "train_FD001"))]
    for r in rows:
        r.pop("event_time"), r.pop("event_id"), r.pop("schema_version")
    train = [r for r in rows if r["unit_id"] <= TRAIN_UNITS]
    truth, test = {}, []
    for k in range(1, TEST_UNITS + 1):
        engine = [r for r in rows if r["unit_id"] == TRAIN_UNITS + k]
        keep = 40 + 15 * k                       # 55, 70, ... 130 cycles kept
        truth[k] = len(engine) - keep            # cycles left to the real failure
        test += [{**r, "split": "test", "unit_id": k, "engine_id": f"FD001-test-{k:03d}"}
                 for r in engine[:keep]]
    return train + test, truth


@pytest.fixture
def ml_cfg(cfg, lake):
    return dataclasses.replace(
        cfg, lake=dataclasses.replace(cfg.lake, root=lake),
        mlflow=dataclasses.replace(cfg.mlflow, experiment=f"t{uuid.uuid4().hex[:8]}"))


def test_train_promote_predict_evaluate_score(spark, ml_cfg, lake, mlflow_server, tmp_path):
    cfg = ml_cfg
    payloads, truth = _payloads()
    lakeio.overwrite(silver_table(spark, "cmapss_cycles", payloads), lake,
                     catalog.silver("cmapss_cycles"))
    runner.run(spark, lake, runner.get("gold_cmapss_features"), "b1", record=False)
    quiet = {"progress": lambda _: None}

    # Validation is by engine: no engine both trains and validates.
    frame, sensors = cmapss_task.load(spark, lake, "FD001")
    fit_rows, validation = cmapss_task.split(frame)
    validation_engines = set(validation["engine_id"].str.split("#").str[0])
    assert not set(fit_rows["engine_id"]) & validation_engines
    assert set(fit_rows["engine_id"]) | validation_engines == {
        f"FD001-train-{u:03d}" for u in range(1, TRAIN_UNITS + 1)}
    assert sensors == [f"sensor_{i}" for i in (2, 3, 4, 7, 8, 9, 11, 12, 13, 14, 15, 17, 20, 21)]

    client = MlflowClient(tracking_uri(cfg))
    name = f"{cfg.mlflow.experiment}-cmapss-fd001-rul"
    untrained = run.train(spark, cfg, "cmapss", "FD001", params=UNTRAINED, **quiet)
    first = run.promote(spark, cfg, "cmapss", "FD001", **quiet)
    assert first.promoted and first.reason.startswith("no champion yet")

    good = run.train(spark, cfg, "cmapss", "FD001", params=GOOD, **quiet)
    assert client.get_model_version_by_alias(name, CHALLENGER).version == good.version
    better = run.promote(spark, cfg, "cmapss", "FD001", **quiet)
    assert better.promoted, better.reason
    assert better.challenger_value < better.champion_value
    assert client.get_model_version_by_alias(name, CHAMPION).version == good.version

    worse = run.train(spark, cfg, "cmapss", "FD001", params=UNTRAINED, **quiet)
    refused = run.promote(spark, cfg, "cmapss", "FD001", **quiet)
    assert not refused.promoted and "does not beat" in refused.reason
    assert client.get_model_version_by_alias(name, CHAMPION).version == good.version
    assert client.get_model_version_by_alias(name, CHALLENGER).version == worse.version
    assert untrained.version != good.version != worse.version

    # What MLflow tells: per-epoch curves, plots, lineage, the baseline's own run.
    logged = client.get_run(good.run_id)
    assert len(client.get_metric_history(good.run_id, "train_rmse")) == good.metrics["epochs_run"]
    assert {a.path for a in client.list_artifacts(good.run_id, "plots")} == {
        "plots/learning_curves.png", "plots/predicted_vs_true.png",
        "plots/feature_importance.png"}
    assert [i.dataset.name for i in logged.inputs.dataset_inputs] == ["gold.cmapss_features"]
    assert good.metrics["baseline_rmse"] > 0

    # The champion loaded back by alias predicts what the in-memory model predicted.
    loaded = cmapss_task.load_model(f"models:/{name}@{CHAMPION}")
    test = frame[frame["split"] == "test"]
    expected = cmapss_task.predict_frame(good.model, test)
    np.testing.assert_allclose(cmapss_task.predict_frame(loaded, test)["rul_pred"],
                               expected["rul_pred"], rtol=1e-6)

    # One row per test engine, unit by unit; evaluation against a labels file.
    out = tmp_path / "predictions.csv"
    cmapss_task.predict_file(spark, cfg, "FD001", out, **quiet)
    csv = pd.read_csv(out)
    assert list(csv.columns) == ["unit", "rul_pred"]
    assert csv["unit"].tolist() == list(range(1, TEST_UNITS + 1))
    labels = tmp_path / "RUL_FD001.txt"
    labels.write_text("".join(f"{truth[k]}\n" for k in range(1, TEST_UNITS + 1)))
    result = cmapss_task.evaluate_file(spark, cfg, "FD001", labels, **quiet)
    d = csv["rul_pred"].to_numpy() - np.array([truth[k] for k in range(1, TEST_UNITS + 1)])
    assert result["rmse"] == pytest.approx(np.sqrt(np.mean(d ** 2)), abs=1e-2)
    phm = np.sum(np.where(d < 0, np.exp(-d / 13) - 1, np.exp(d / 10) - 1))
    assert result["phm08_score"] == pytest.approx(phm, rel=1e-3)

    # Batch scoring through spark_udf gives the pyfunc's numbers, for every engine.
    run.score(spark, cfg, ["cmapss"], **quiet)
    scores = catalog.read(spark, lake, catalog.CMAPSS_RUL_SCORES).toPandas()
    assert len(scores) == TRAIN_UNITS + TEST_UNITS
    assert set(scores["model_version"]) == {good.version}
    by_unit = scores[scores["split"] == "test"].sort_values("unit_id")
    np.testing.assert_allclose(by_unit["rul_pred"], csv["rul_pred"], atol=1e-3)
    queue = catalog.read(spark, lake, catalog.REVIEW_QUEUE).toPandas()
    assert sorted(queue["entity"]) == [f"FD001-test-{k:03d}" for k in range(1, TEST_UNITS + 1)]


def test_replayed_fd001_gives_one_prediction_per_test_engine(spark, kafka_only, mlflow_server,
                                                             lake, monkeypatch, tmp_path):
    """The acceptance path: replay -> Kafka -> bronze -> silver -> gold -> train -> CSV."""
    from redline.config import load
    from redline.pipeline import run_jobs
    from redline.streaming import ingest
    from redline.streaming.replay import replay

    monkeypatch.setenv("REDLINE_KAFKA_TOPIC_PREFIX", "ml-replay.")
    monkeypatch.setenv("REDLINE_LAKE_ROOT", lake)
    cfg = load()
    cfg = dataclasses.replace(cfg, mlflow=dataclasses.replace(
        cfg.mlflow, experiment=f"t{uuid.uuid4().hex[:8]}"))
    replay(cfg, "cmapss", ["train_FD001", "test_FD001"], rate=0)
    ingest.run(spark, cfg, cfg.lake_root, ["cmapss_cycles"], available_now=True,
               progress=lambda _: None)
    run_jobs(spark, cfg.lake_root, ["gold_cmapss_features"], progress=lambda _: None)
    trained = run.train(spark, cfg, "cmapss", "FD001", params=GOOD, progress=lambda _: None)
    assert trained.version == "1"

    out = tmp_path / "predictions.csv"
    cmapss_task.predict_file(spark, cfg, "FD001", out, alias=CHALLENGER,
                             progress=lambda _: None)
    csv = pd.read_csv(out)
    # test_FD001 holds 100 engines: one prediction each, at its last cycle.
    assert csv["unit"].tolist() == list(range(1, 101))
    assert csv["rul_pred"].between(0, 200).all()
