"""The quality analytics find the problems the simulator plants (``PLANTED``).

The simulator's payloads become silver-shaped DataFrames in memory (no Kafka, no lake),
and the gold transforms run on them as the jobs would.
"""

import math
from datetime import datetime, timedelta

import pytest
from pyspark.sql import functions as F
from simulated import silver_frames

from redline.jobs.defect_pareto import defect_pareto
from redline.jobs.reliability import dtc_rates, weibull_fits
from redline.jobs.spc import (
    control_limits,
    measurements,
    nelson_violations,
    xbar_r,
    xbar_violations,
)
from redline.streaming.simulator import PLANTED, SimulationSpec

# A factory of 40 units per line a day: enough points for the drift to stand out of the
# other lines' noise, as it does at the demo's 100.
SPEC = SimulationSpec(vehicles=200, days=60, seed=7, units_per_line_day=40)
TOPICS = ("station_results", "vehicle_builds", "vehicle_dtc", "warranty_claims")


@pytest.fixture(scope="module")
def silver(spark):
    return silver_frames(spark, SPEC, TOPICS)


@pytest.fixture(scope="module")
def observation_end():
    return SPEC.start + timedelta(days=SPEC.days - 1)


def test_the_drifting_characteristic_trips_spc_rules_after_the_drift_starts(silver):
    drift = PLANTED["drift"]
    key = (drift["plant"], drift["line"], drift["station"], drift["characteristic"])
    drift_start = datetime.combine(SPEC.start + timedelta(days=drift["start_day"]),
                                   datetime.min.time())
    violations = nelson_violations(control_limits(measurements(silver["station_results"])))
    # Points flagged after the drift began, per characteristic of the drifting kind.
    flagged = {
        (r.plant, r.line, r.station, r.characteristic): r.points
        for r in violations.where(F.col("characteristic") == drift["characteristic"])
        .where(F.col("end_time") >= F.lit(drift_start))
        .groupBy("plant", "line", "station", "characteristic")
        .agg(F.sum("points").alias("points")).collect()}
    rules = {r.rule for r in violations.where(
        (F.col("plant") == key[0]) & (F.col("line") == key[1]) & (F.col("station") == key[2])
        & (F.col("end_time") >= F.lit(drift_start))).collect()}
    assert rules & {2, 5, 6}, f"no shift rule on the drifting key; rules {rules}"
    assert max(flagged, key=flagged.get) == key, flagged


def test_the_drift_trips_the_xbar_chart_of_its_key(silver):
    drift = PLANTED["drift"]
    key = (drift["plant"], drift["line"], drift["station"], drift["characteristic"])
    drift_start = datetime.combine(SPEC.start + timedelta(days=drift["start_day"]),
                                   datetime.min.time())
    violations = (xbar_violations(xbar_r(measurements(silver["station_results"])))
                  .where(F.col("end_time") >= F.lit(drift_start)))
    flagged = {(r.plant, r.line, r.station, r.characteristic): r.points
               for r in violations.groupBy("plant", "line", "station", "characteristic")
               .agg(F.sum("points").alias("points")).collect()}
    rules = {r.rule for r in violations.collect()
             if (r.plant, r.line, r.station, r.characteristic) == key}
    assert rules & {1, 2, 5, 6}, f"no shift rule on the drifting key's X-bar chart: {rules}"
    assert max(flagged, key=flagged.get) == key, flagged


def test_the_bad_lot_tops_the_pareto_of_its_part_at_its_station(silver):
    lot = PLANTED["bad_lot"]
    pareto = defect_pareto(silver["station_results"], silver["vehicle_builds"])
    top = pareto.where((F.col("pareto") == "supplier_lot") & (F.col("station") == lot["station"])
                       & (F.col("component") == lot["component"]) & (F.col("rank") == 1)
                       ).collect()
    assert [(r.supplier, r.category) for r in top] == [(lot["supplier"], lot["lot"])]
    [code] = pareto.where((F.col("pareto") == "defect_code") & (F.col("rank") == 1)).collect()
    assert code.category == lot["defect_code"]


def test_the_planted_firmware_has_the_highest_dtc_rate(silver, observation_end):
    fw = PLANTED["firmware"]
    rates = dtc_rates(silver["vehicle_builds"], silver["vehicle_dtc"], observation_end)
    for code in (None, fw["dtc_code"]):  # all codes, and the planted code alone
        ranked = (rates.where(F.col("dtc_code").isNull() if code is None
                              else F.col("dtc_code") == code)
                  .orderBy(F.col("dtc_per_1000_vehicles").desc()).collect())
        assert ranked[0].firmware_version == fw["firmware_version"], ranked


def test_the_hazardous_component_and_lot_have_the_shortest_b10(silver, observation_end):
    hz = PLANTED["hazard"]
    fits = weibull_fits(silver["vehicle_builds"], silver["warranty_claims"], observation_end)
    for level, name in (("component", hz["component"]), ("lot", hz["lot"])):
        ranked = (fits.where((F.col("level") == level) & (F.col("status") == "OK"))
                  .orderBy("b10_days").collect())
        top = ranked[0]
        assert (top.lot if level == "lot" else top.component) == name, ranked
    [bad] = fits.where((F.col("level") == "lot") & (F.col("lot") == hz["lot"])).collect()
    # The planted life (shape 2.5, scale 45 days) lies inside the fit's 95% intervals.
    assert bad.shape_ci_low < hz["weibull_shape"] < bad.shape_ci_high, bad
    assert bad.scale_ci_low < hz["weibull_scale_days"] < bad.scale_ci_high, bad
    b10 = hz["weibull_scale_days"] * (-math.log(0.9)) ** (1 / hz["weibull_shape"])
    assert bad.b10_ci_low_days < b10 < bad.b10_ci_high_days, bad
