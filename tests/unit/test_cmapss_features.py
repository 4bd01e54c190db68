"""C-MAPSS features on hand-made cycles: conditions, training-only z-scores, the
near-zero-variance rule and the capped RUL target. Every expected value is worked out by
hand in the comment beside it."""

from __future__ import annotations

import math

import pytest
from simulated import silver_table

from redline import catalog
from redline.errors import RedlineError
from redline.jobs.cmapss_features import JOB
from redline.jobs.declare import Inputs
from redline.ml.cmapss import kept_sensors

SENSORS = [f"sensor_{i}" for i in range(1, 22)]


def _cycle(dataset: str, split: str, unit: int, cycle: int, op=(0.0003, -0.0002, 100.0),
           **sensors: float) -> dict:
    values = {s: 7.0 for s in SENSORS}       # constant unless given: no variance
    values.update(sensors)
    return {"engine_id": f"{dataset}-{split}-{unit:03d}", "dataset": dataset, "split": split,
            "unit_id": unit, "cycle": cycle, "op_setting_1": op[0], "op_setting_2": op[1],
            "op_setting_3": op[2], **values}


def _rows() -> list[dict]:
    rows = []
    # FDX train engine 1: 3 cycles, sensor_2 = 1, 2, 3; engine 2: 2 cycles, sensor_2 = 3, 5.
    for c, v in enumerate([1.0, 2.0, 3.0], 1):
        rows.append(_cycle("FDX", "train", 1, c, sensor_2=v, sensor_3=float(c)))
    for c, v in enumerate([3.0, 5.0], 1):
        rows.append(_cycle("FDX", "train", 2, c, sensor_2=v, sensor_3=10.0 + c))
    # A long training engine of its own data set: 130 cycles. sensor_4 is 1.0 except once
    # (129 to 1: a dominant value, 2 distinct of 130 = 1.5 %: near-zero variance);
    # sensor_5 alternates in 13 values (10 % distinct, ratio 1: kept).
    for c in range(1, 131):
        rows.append(_cycle("FDY", "train", 1, c, sensor_4=2.0 if c == 60 else 1.0,
                           sensor_5=float(c % 13)))
    # FDX test engine: its sensors are scaled with the training statistics.
    rows.append(_cycle("FDX", "test", 1, 1, sensor_2=4.0, sensor_3=6.0))
    # FDZ: two operating conditions, each normalised on its own.
    for c, (op, v) in enumerate([((42.0, 0.8401, 100.0), 10.0), ((41.998, 0.84, 100.0), 12.0),
                                 ((0.0, 0.0, 100.0), 1.0), ((0.001, -0.0001, 100.0), 3.0)], 1):
        rows.append(_cycle("FDZ", "train", 1, c, op=op, sensor_2=v))
    return rows


@pytest.fixture(scope="module")
def outputs(spark):
    silver = silver_table(spark, "cmapss_cycles", _rows())
    out = JOB.transform(Inputs({catalog.silver("cmapss_cycles"): silver}))
    stats = out[catalog.CMAPSS_SENSOR_STATS].collect()
    features = {(r.engine_id, r.cycle): r for r in out[catalog.CMAPSS_FEATURES].collect()}
    return stats, features


def test_sensors_are_z_scored_with_the_training_engines_statistics(outputs):
    stats, features = outputs
    # Training sensor_2 of FDX: 1, 2, 3, 3, 5: mean 2.8; squared deviations 3.24, 0.64,
    # 0.04, 0.04, 4.84 sum to 8.8, sample variance 8.8 / 4 = 2.2, std 1.48324.
    row = next(r for r in stats if (r.dataset, r.sensor) == ("FDX", "sensor_2"))
    assert row.condition == "0_0_100" and row.rows == 5
    assert row.mean == pytest.approx(2.8) and row.std == pytest.approx(math.sqrt(2.2))
    assert features[("FDX-train-001", 1)].sensor_2 == pytest.approx((1 - 2.8) / math.sqrt(2.2))
    # The test engine's 4.0: (4 - 2.8) / 1.48324 = 0.80904, training statistics only.
    assert features[("FDX-test-001", 1)].sensor_2 == pytest.approx(0.80904, abs=1e-5)
    # A constant sensor has std 0 and scores 0, in training and test alike.
    assert features[("FDX-test-001", 1)].sensor_1 == 0.0


def test_each_operating_condition_is_normalised_on_its_own(outputs):
    stats, features = outputs
    by_condition = {r.condition: r for r in stats
                    if (r.dataset, r.sensor) == ("FDZ", "sensor_2")}
    # (42, 0.84, 100) -> "42_84_100" with values 10 and 12; near 0 -> "0_0_100": 1 and 3.
    assert set(by_condition) == {"42_84_100", "0_0_100"}
    assert by_condition["42_84_100"].mean == pytest.approx(11.0)
    assert by_condition["0_0_100"].mean == pytest.approx(2.0)
    # Each pair is mean -/+ 1 with sample std sqrt(2): z = -/+ 0.70711.
    assert features[("FDZ-train-001", 1)].sensor_2 == pytest.approx(-1 / math.sqrt(2))
    assert features[("FDZ-train-001", 4)].sensor_2 == pytest.approx(1 / math.sqrt(2))
    assert features[("FDZ-train-001", 1)].condition == "42_84_100"


def test_near_zero_variance_sensors_are_not_kept(outputs):
    stats, _ = outputs
    fdy = {r.sensor: r for r in stats if r.dataset == "FDY"}
    assert (fdy["sensor_4"].top_count, fdy["sensor_4"].second_count) == (129, 1)
    assert fdy["sensor_4"].near_zero_variance and not fdy["sensor_4"].kept
    assert fdy["sensor_5"].distinct_values == 13 and fdy["sensor_5"].kept
    assert fdy["sensor_1"].second_count == 0 and not fdy["sensor_1"].kept
    assert kept_sensors(stats, "FDY") == ["sensor_5"]
    assert kept_sensors(stats, "FDX") == ["sensor_2", "sensor_3"]


def test_the_target_is_the_remaining_life_capped_at_125(outputs):
    _, features = outputs
    first, last = features[("FDY-train-001", 1)], features[("FDY-train-001", 130)]
    assert (first.last_cycle, first.rul, first.rul_target) == (130, 129, 125)
    assert (last.rul, last.rul_target) == (0, 0)
    assert features[("FDY-train-001", 10)].rul_target == 120
    # A test engine stops before failure: its remaining life is what is predicted.
    test = features[("FDX-test-001", 1)]
    assert (test.rul, test.rul_target, test.last_cycle) == (None, None, 1)


def test_a_condition_without_training_engines_is_an_error(spark):
    rows = [_cycle("FDX", "train", 1, 1, sensor_2=1.0),
            _cycle("FDX", "test", 1, 1, op=(20.0, 0.7, 100.0), sensor_2=1.0)]
    silver = silver_table(spark, "cmapss_cycles", rows)
    with pytest.raises(RedlineError, match="CMAPSS_NO_TRAINING_STATS.*FDX condition "
                                           "20_70_100 \\(1 cycles\\)"):
        JOB.transform(Inputs({catalog.silver("cmapss_cycles"): silver}))
