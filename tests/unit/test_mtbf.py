"""MTBF and failure rates per component on a hand-made fleet; bounds from scipy.stats.chi2."""

from datetime import date, datetime

import pytest
from pyspark.testing import assertSchemaEqual
from scipy.stats import chi2

from redline.errors import RedlineError
from redline.jobs.mtbf import CI_METHOD, mtbf
from redline.schemas.payloads import latest
from redline.schemas.tables import MTBF

END = date(2026, 3, 10)
MONTH = 365.25 / 12


def _build(vin, built, components):
    return {"event_id": f"b-{vin}", "event_time": datetime(built.year, built.month, built.day, 20),
            "schema_version": 1, "vin": vin, "model": "Volta S", "plant": "PLT-A",
            "line": "L1", "build_date": built, "firmware_version": "FW-A",
            "components": [{"component": c, "supplier": "S", "lot": "L"} for c in components]}


def _claim(vin, component, failed_on):
    return {"event_id": f"c-{vin}-{component}-{failed_on}", "schema_version": 1,
            "event_time": datetime(failed_on.year, failed_on.month, failed_on.day, 12),
            "claim_id": f"WC-{vin}-{failed_on}", "vin": vin, "component": component,
            "failure_date": failed_on, "mileage_km": 100.0, "cost_eur": 500.0,
            "description": None}


@pytest.fixture(scope="module")
def fleet(spark):
    builds = [
        _build("V1", date(2026, 1, 9), ["pump", "motor"]),    # 22 + 28 + 10 = 60 days
        _build("V2", date(2026, 1, 29), ["pump", "motor"]),   # 2 + 28 + 10 = 40 days
        _build("V3", date(2026, 2, 28), ["pump"]),            # 10 days, no motor
        _build("V4", date(2026, 3, 12), ["pump", "motor"]),   # built after the end
    ]
    claims = [
        _claim("V1", "pump", date(2026, 1, 20)),
        _claim("V1", "pump", date(2026, 2, 25)),   # a repeat failure counts
        _claim("V2", "pump", date(2026, 3, 1)),
        _claim("V3", "pump", date(2026, 3, 11)),   # after the observation end
        _claim("V1", "motor", date(2026, 1, 5)),   # before the build: not in service
        _claim("V3", "motor", date(2026, 3, 1)),   # V3 has no motor on record
        _claim("V4", "pump", date(2026, 3, 15)),   # vehicle built after the end
    ]
    return (spark.createDataFrame(builds, latest("vehicle_builds").struct),
            spark.createDataFrame(claims, latest("warranty_claims").struct))


@pytest.mark.parametrize("confidence", [0.90, 0.95])
def test_mtbf_by_hand(fleet, confidence):
    builds, claims = fleet
    df = mtbf(builds, claims, END, confidence)
    assertSchemaEqual(df.schema, MTBF)
    rows = {r.component: r for r in df.collect()}
    assert set(rows) == {"pump", "motor"}
    a = 1 - confidence

    pump = rows["pump"]
    # pump: 3 vehicles, T = 60 + 40 + 10 = 110 vehicle-days, 3 failures
    assert (pump.vehicles, pump.failures, pump.vehicle_days, pump.observation_end) == (
        3, 3, 110, END)
    assert pump.vehicle_months == pytest.approx(110 / 30.4375)
    assert pump.mtbf_days == pytest.approx(110 / 3)
    assert pump.mtbf_months == pytest.approx(110 / 3 / 30.4375)
    assert pump.failures_per_1000_vehicle_months == pytest.approx(3000 / (110 / 30.4375))
    assert pump.failures_per_1000_vehicle_months == pytest.approx(830.11, abs=0.01)
    low, high = 220 / chi2.ppf(1 - a / 2, 8), 220 / chi2.ppf(a / 2, 6)
    assert (pump.mtbf_ci_low_days, pump.mtbf_ci_high_days) == pytest.approx((low, high))
    assert (pump.rate_ci_low, pump.rate_ci_high) == pytest.approx(
        (1000 * MONTH / high, 1000 * MONTH / low))
    assert low < pump.mtbf_days < high
    assert (pump.confidence, pump.ci_method) == (confidence, CI_METHOD)

    motor = rows["motor"]
    # motor: V1 and V2, T = 100 vehicle-days, no failure in service
    assert (motor.vehicles, motor.failures, motor.vehicle_days) == (2, 0, 100)
    assert (motor.mtbf_days, motor.mtbf_months, motor.mtbf_ci_high_days,
            motor.rate_ci_low) == (None, None, None, None)
    assert motor.failures_per_1000_vehicle_months == 0.0
    assert motor.mtbf_ci_low_days == pytest.approx(200 / chi2.ppf(1 - a / 2, 2))
    assert motor.rate_ci_high == pytest.approx(1000 * MONTH / motor.mtbf_ci_low_days)


def test_the_90_percent_bounds_by_table_values(fleet):
    # chi2(0.95; 8) = 15.507, chi2(0.05; 6) = 1.635 (printed tables)
    [pump] = mtbf(*fleet, END).where("component = 'pump'").collect()
    assert pump.mtbf_ci_low_days == pytest.approx(220 / 15.507, rel=1e-4)
    assert pump.mtbf_ci_high_days == pytest.approx(220 / 1.635, rel=1e-3)


@pytest.mark.parametrize("bad", [0.0, 1.0, 90, "0.9"])
def test_bad_confidence_is_a_clear_error(fleet, bad):
    with pytest.raises(RedlineError, match="confidence must be a float between 0 and 1"):
        mtbf(*fleet, END, bad)
