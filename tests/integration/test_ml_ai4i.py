"""The AI4I task against a real MLflow server, on the real AI4I 2020 data.

The 10,000 process runs go through the real gold job; the model is trained with few
trees so that the test takes seconds (the full model's figures are the benchmark's).
Drift: after a first scoring, torque is raised by 15 Nm on one day of runs in the
feature table and the runs are scored again: that day's torque must be flagged, the
other days' torque not.
"""

from __future__ import annotations

import dataclasses
import uuid
from pathlib import Path

import mlflow
import pytest
from mlflow import MlflowClient
from pyspark.sql import functions as F

from redline import catalog
from redline import lake as lakeio
from redline.jobs import runner
from redline.ml import ai4i_task, run
from redline.ml.ai4i import FAILURE_MODES
from redline.ml.registry import CHAMPION
from redline.services.mlflow_server import tracking_uri
from redline.streaming.replay import silver_offline

pytestmark = pytest.mark.integration

DATASETS = Path(__file__).resolve().parents[2] / "datasets"
FAST = {"n_estimators": 40}
SHIFTED_DAY = "2020-01-04"


@pytest.fixture
def ml_cfg(cfg, lake):
    return dataclasses.replace(
        cfg, lake=dataclasses.replace(cfg.lake, root=lake),
        mlflow=dataclasses.replace(cfg.mlflow, experiment=f"t{uuid.uuid4().hex[:8]}"))


def test_train_promote_score_and_drift(spark, ml_cfg, lake, mlflow_server):
    cfg = ml_cfg
    quiet = {"progress": lambda _: None}
    lakeio.overwrite(silver_offline(spark, DATASETS, "ai4i"), lake,
                     catalog.silver("ai4i_process"))
    runner.run(spark, lake, runner.get("gold_ai4i_features"), "b1", record=False)

    result = run.train(spark, cfg, "ai4i", params=FAST, **quiet)
    # The failure-mode flags reach neither the gold table nor the model's inputs.
    gold_columns = set(catalog.read(spark, lake, catalog.AI4I_FEATURES).columns)
    assert not gold_columns & set(FAILURE_MODES)
    client = MlflowClient(tracking_uri(cfg))
    name = f"{cfg.mlflow.experiment}-ai4i-failure"
    info = mlflow.models.get_model_info(f"models:/{name}/{result.version}")
    inputs = [c.name for c in info.signature.inputs.inputs]
    assert not set(inputs) & set(FAILURE_MODES) and "type" in inputs
    # 2,000 held-out runs with 68 failures (3.39 % of 10,000, stratified).
    assert (result.metrics["n"], result.metrics["positives"]) == (2000, 68)
    assert result.metrics["f1"] > 0.5          # a 40-tree model; chance is about 0.07
    artifacts = {a.path for a in client.list_artifacts(result.run_id, "plots")}
    assert {"plots/pr_curve.png", "plots/calibration.png",
            "plots/feature_importance.png"} <= artifacts

    assert run.promote(spark, cfg, "ai4i", **quiet).promoted
    assert client.get_model_version_by_alias(name, CHAMPION).version == result.version
    # The champion as loaded from the registry decides like the model in memory.
    held_out = ai4i_task.held_out(spark, cfg)
    loaded = ai4i_task.load_model(f"models:/{name}@{CHAMPION}")
    assert (loaded.predict(held_out[list(ai4i_task.FEATURES)]) ==
            result.model.predict(held_out[list(ai4i_task.FEATURES)])).all()

    run.score(spark, cfg, ["ai4i"], **quiet)
    scores = catalog.read(spark, lake, catalog.AI4I_FAILURE_SCORES)
    assert scores.count() == 10_000
    before = catalog.read(spark, lake, catalog.MODEL_DRIFT).where("task = 'ai4i'").toPandas()
    # 7 days of runs (one a minute) x 9 features and the score.
    assert len(before) == 7 * 10
    # AI4I's air and process temperatures are random walks (its documentation says so):
    # a day's temperatures really do differ from the whole training part, and are flagged
    # (and the score with them on some days: heat-dissipation failures follow them).
    flagged = set(before.loc[before["drifted"], "feature"])
    assert flagged <= {"air_temperature_k", "process_temperature_k",
                       "temperature_difference_k", "score"}
    assert {"air_temperature_k", "process_temperature_k"} <= flagged

    features = catalog.read(spark, lake, catalog.AI4I_FEATURES)
    shifted = features.withColumn("torque_nm", F.when(
        F.to_date("event_time") == F.lit(SHIFTED_DAY), F.col("torque_nm") + 15.0)
        .otherwise(F.col("torque_nm")))
    lakeio.overwrite(shifted.localCheckpoint(), lake, catalog.AI4I_FEATURES)
    run.score(spark, cfg, ["ai4i"], **quiet)
    drift = catalog.read(spark, lake, catalog.MODEL_DRIFT).where("task = 'ai4i'").toPandas()
    torque = drift[drift["feature"] == "torque_nm"]
    torque = torque.set_index(torque["day"].astype(str))
    assert torque.loc[SHIFTED_DAY, "drifted"]
    assert torque.loc[SHIFTED_DAY, "psi"] > 1.0
    assert not torque.drop(SHIFTED_DAY)["drifted"].any()
    # Nothing else changed: every other feature keeps its PSI of the first scoring.
    key = ["day", "feature"]
    unchanged = drift[~drift["feature"].isin(["torque_nm", "score"])]
    pairs = unchanged.merge(before, on=key, suffixes=("", "_before"))
    assert len(pairs) == 7 * 8
    assert (pairs["psi"] - pairs["psi_before"]).abs().max() < 1e-12
