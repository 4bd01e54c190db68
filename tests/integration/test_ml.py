"""Features, training, registry and batch scoring against a real MLflow server.

A small synthetic fleet stands in for the simulator: pumps of one lot fail 40-70 days
into service and their coolant heats up over the two weeks before; a few other vehicles
fail at random. Silver tables are written to a temp lake, then the real jobs run. The
MLflow server is the session fixture `mlflow_server` of tests/conftest.py (started once,
stopped at the end of the run).
"""

from __future__ import annotations

import dataclasses
import random
import uuid
from datetime import date, datetime, timedelta

import pytest
from mlflow import MlflowClient
from pyspark.sql import functions as F

from redline import catalog
from redline import lake as lakeio
from redline.errors import RedlineError
from redline.jobs import runner
from redline.ml import run
from redline.ml.registry import CHALLENGER, CHAMPION
from redline.schemas import tables
from redline.schemas.payloads import latest
from redline.services.mlflow_server import tracking_uri

pytestmark = pytest.mark.integration

START = date(2024, 1, 1)
DAYS = 182              # telemetry on days 0..181
N_VEHICLES = 120
BAD_LOT = "LOT-CP-BAD"


def _fleet(seed: int = 7) -> dict[str, list[dict]]:
    """Payload rows of the silver vehicle tables, plus the failure day of each VIN."""
    rng = random.Random(seed)
    builds, telemetry, dtc, claims, failure_day = [], [], [], [], {}
    for i in range(N_VEHICLES):
        vin = f"VIN{i:05d}"
        built = rng.randrange(0, 100)
        bad = i % 10 < 3                       # 30% of the fleet has the bad lot
        lot = BAD_LOT if bad else rng.choice(["LOT-CP-1", "LOT-CP-2"])
        fails = (built + rng.randrange(40, 71) if bad
                 else built + rng.randrange(1, 200) if rng.random() < 0.08 else None)
        builds.append({
            "vin": vin, "model": rng.choice(["M1", "M2"]), "plant": "PLT-A", "line": "L1",
            "build_date": START + timedelta(days=built), "firmware_version": "FW-1",
            "components": [{"component": "coolant_pump", "supplier": "ThermaFlow",
                            "lot": lot}]})
        if fails is not None and fails < DAYS:
            failure_day[vin] = fails
            claims.append({"claim_id": f"WC-{i}", "vin": vin, "component": "coolant_pump",
                           "failure_date": START + timedelta(days=fails)})
        odo = 0.0
        for day in range(built + 1, DAYS):
            odo += rng.uniform(20, 80)
            to_failure = fails - day if fails is not None else 999
            heat = 1.2 * (14 - to_failure) if bad and 0 <= to_failure < 14 else 0.0
            t = datetime.combine(START + timedelta(days=day), datetime.min.time()) \
                + timedelta(hours=rng.randrange(6, 22))
            telemetry.append({"vin": vin, "event_time": t, "odometer_km": round(odo, 1),
                              "coolant_temp_c": rng.gauss(68, 2) + heat,
                              "motor_temp_c": rng.gauss(70, 5),
                              "battery_temp_c": rng.gauss(28, 3)})
            if rng.random() < 0.03:
                dtc.append({"vin": vin, "event_time": t, "dtc_code": "P0A1F",
                            "severity": "warning", "firmware_version": "FW-1"})
    return {"vehicle_builds": builds, "vehicle_telemetry": telemetry, "vehicle_dtc": dtc,
            "warranty_claims": claims, "_failure_day": failure_day}


def _write_silver(spark, lake: str, topic: str, rows: list[dict]) -> None:
    schema = tables.silver(latest(topic))
    full = [{"event_id": f"{topic}-{n}", "event_time": row.get("event_time", datetime(2024, 1, 1)),
             "schema_version": 1, "kafka_topic": topic, "kafka_partition": 0,
             "kafka_offset": n, **row} for n, row in enumerate(rows)]
    df = spark.createDataFrame([tuple(r.get(f.name) for f in schema.fields) for r in full],
                               schema)
    lakeio.overwrite(df, lake, catalog.silver(topic))


@pytest.fixture
def ml_cfg(cfg, lake):
    """The session configuration on this test's lake, with its own experiment prefix so
    registered model names do not meet another test's on the shared MLflow server."""
    return dataclasses.replace(
        cfg, lake=dataclasses.replace(cfg.lake, root=lake),
        mlflow=dataclasses.replace(cfg.mlflow, experiment=f"t{uuid.uuid4().hex[:8]}"))


def test_features_train_register_score(spark, ml_cfg, lake, mlflow_server):
    cfg = ml_cfg
    fleet = _fleet()
    for topic in ("vehicle_builds", "vehicle_telemetry", "vehicle_dtc", "warranty_claims"):
        _write_silver(spark, lake, topic, fleet[topic])

    assert runner.run(spark, lake, runner.get("gold_vehicle_features"), "b1",
                      record=False)["rows"] > 0
    result = run.train(spark, cfg, "vehicle")

    client = MlflowClient(tracking_uri(cfg))
    name = f"{cfg.mlflow.experiment}-vehicle-failure-30d"
    challenger = client.get_model_version_by_alias(name, CHALLENGER)
    assert (challenger.version, challenger.run_id) == (result.version, result.run_id)
    logged = client.get_run(result.run_id)
    for metric in ("roc_auc", "pr_auc", "base_rate", "n_train", "n_test"):
        assert logged.data.metrics[metric] == pytest.approx(result.metrics[metric])
    assert logged.data.metrics["n_train"] > 0 and logged.data.metrics["n_test"] > 0
    # Positives are almost all bad-lot pumps (a feature) near their failure, whose
    # coolant visibly heats up; the few random failures are the only unpredictable ones.
    # A ranking no better than chance scores 0.5; 0.8 leaves room for the random ones.
    assert logged.data.metrics["roc_auc"] > 0.8
    # Average precision of a random ranking equals the base rate.
    assert logged.data.metrics["pr_auc"] > 2 * logged.data.metrics["base_rate"]
    # Lineage: the Delta table and version the model was trained on.
    inputs = logged.inputs.dataset_inputs
    assert [i.dataset.name for i in inputs] == ["gold.vehicle_features"]
    assert logged.data.params["input_version"] == "0"
    artifacts = {a.path for a in client.list_artifacts(result.run_id, "plots")}
    assert {"plots/pr_curve.png", "plots/calibration.png",
            "plots/feature_importance.png"} <= artifacts

    decision = run.promote(spark, cfg, "vehicle", progress=lambda _: None)
    assert decision.promoted and decision.reason.startswith("no champion yet")
    assert client.get_model_version_by_alias(name, CHAMPION).version == result.version

    rows = run.score(spark, cfg, ["vehicle"], progress=lambda _: None)["vehicle"]

    # Every vehicle at every as-of date: the rows of the feature table.
    features = catalog.read(spark, lake, catalog.VEHICLE_FEATURES)
    assert rows == features.count()
    scores = catalog.read(spark, lake, catalog.VEHICLE_RISK_SCORES)
    summary = scores.agg(F.count("*").alias("n"), F.min("failure_probability").alias("lo"),
                         F.max("failure_probability").alias("hi"),
                         F.min("uncertainty").alias("u_lo"), F.max("uncertainty").alias("u_hi"),
                         F.collect_set("model_version").alias("versions")).first()
    assert summary.n == rows
    assert 0.0 <= summary.lo <= summary.hi <= 1.0
    assert 0.0 <= summary.u_lo <= summary.u_hi <= 1.0
    assert summary.versions == [result.version]
    # The queue holds each vehicle once, at its latest as-of date, ranked 1..n.
    queue = catalog.read(spark, lake, catalog.REVIEW_QUEUE).toPandas()
    assert sorted(queue["rank"]) == list(range(1, len(queue) + 1))
    assert set(queue["entity"]) == {r.vin for r in features.select("vin").distinct().collect()}
    drift = catalog.read(spark, lake, catalog.MODEL_DRIFT).toPandas()
    assert set(drift["feature"]) == {*run.module(run.get("vehicle")).FEATURES, "score"}


def test_training_set_with_one_class_fails_clearly(spark, ml_cfg, lake):
    dates = [date(2024, 1, 1) + timedelta(days=7 * k) for k in range(20)]
    rows = [(f"V{v}", d, "M1", "PLT-A", "FW-1", "ThermaFlow", "LOT-CP-1", 10 + 7 * k,
             100.0, 68.0, 0.0, 70.0, 28.0, 0, 0)
            for v in range(3) for k, d in enumerate(dates)]
    df = spark.createDataFrame(rows, tables.VEHICLE_FEATURES)
    lakeio.overwrite(df, lake, catalog.get("gold.vehicle_features"))
    with pytest.raises(RedlineError, match=r"ML_ONE_CLASS.*only failure_within_30d=0"):
        run.train(spark, ml_cfg, "vehicle", progress=lambda _: None)
