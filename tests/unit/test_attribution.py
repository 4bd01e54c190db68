"""FPY change attribution: a hand-worked example, and the planted bad lot on simulator data."""

from datetime import date, datetime, timedelta

import pytest
from pyspark.sql import functions as F
from simulated import silver_frames

from redline.errors import RedlineError
from redline.jobs.attribution import Period, default_periods, fpy_attribution
from redline.schemas.payloads import latest
from redline.streaming.simulator import PLANTED, SimulationSpec

B = Period(date(2026, 1, 5), date(2026, 1, 11))
C = Period(date(2026, 1, 12), date(2026, 1, 18))


def _test(i, unit, day, result, defects=()):
    return {"event_id": f"e{i}", "event_time": datetime.combine(day, datetime.min.time()),
            "schema_version": 1, "unit_serial": unit, "plant": "PLT-A", "line": "L1",
            "station": "S010", "operation": "op", "shift": "A", "attempt": 1,
            "result": result, "measurements": [], "defect_codes": list(defects),
            "cycle_time_s": 60.0}


def _build(unit, lot):
    return {"event_id": f"b{unit}", "event_time": datetime(2026, 1, 4), "schema_version": 1,
            "vin": unit, "model": "M", "plant": "PLT-A", "line": "L1",
            "build_date": date(2026, 1, 4), "firmware_version": "F",
            "components": [{"component": "pack", "supplier": "S", "lot": lot}]}


def test_mix_and_rate_effects_by_hand(spark):
    d5, d12 = date(2026, 1, 5), date(2026, 1, 12)
    tests = [_test(1, "U1", d5, "PASS"), _test(2, "U2", d5, "PASS"),
             _test(3, "U3", d5, "PASS"), _test(4, "U4", d5, "FAIL", ["D-T"]),
             _test(5, "U5", d12, "PASS"), _test(6, "U6", d12, "FAIL", ["D-T"]),
             _test(7, "U7", d12, "FAIL", ["D-T"]), _test(8, "U8", d12, "PASS"),
             _test(9, "U9", date(2026, 1, 30), "FAIL")]  # outside both periods
    lots = {"U1": "X", "U2": "X", "U3": "Y", "U4": "Y", "U5": "X", "U6": "Y", "U7": "Y",
            "U8": "Y"}
    out = fpy_attribution(
        spark.createDataFrame(tests, latest("station_results").struct),
        spark.createDataFrame([_build(u, lot) for u, lot in lots.items()],
                              latest("vehicle_builds").struct), B, C)
    rows = {(r.dimension, r.value): r for r in out.where("scope = 'PLT-A/L1/S010'").collect()}
    y = rows[("lot:pack", "Y")]
    # FPY 3/4 -> 2/4. Lot Y: share 2/4 -> 3/4, failure rate 1/2 -> 2/3.
    assert (y.fpy_baseline, y.fpy_current) == (0.75, 0.5)
    assert y.fpy_change == pytest.approx(-0.25)
    assert y.mix_effect == pytest.approx(-(0.75 - 0.5) * (0.5 + 2 / 3) / 2)   # -0.1458
    assert y.rate_effect == pytest.approx(-(2 / 3 - 0.5) * (0.5 + 0.75) / 2)  # -0.1042
    assert y.contribution == pytest.approx(-0.25)
    assert y.contribution_share == pytest.approx(1.0)
    assert (y.tests_baseline, y.tests_current, y.failures_baseline, y.failures_current) == \
        (2, 3, 1, 2)
    x = rows[("lot:pack", "X")]
    assert x.contribution == pytest.approx(0.0) and x.mix_effect == pytest.approx(0.0)
    code = rows[("defect_code", "D-T")]
    assert code.dimension_kind == "failure_mode" and code.contribution == pytest.approx(-0.25)
    assert code.rank == 1
    # Lot Y, model M, firmware F and shift A all explain -0.25; lot Y does so with the
    # fewest tests (5 against 8), so it ranks first.
    assert y.rank == 1 and rows[("model", "M")].rank > 1
    assert rows[("model", "M")].contribution == pytest.approx(-0.25)
    assert {r.scope for r in out.collect()} == {"all", "PLT-A/L1", "PLT-A/L1/S010"}
    assert ("station", "PLT-A/L1/S010") not in rows  # a scope is not split by itself


def test_periods_are_validated():
    with pytest.raises(RedlineError, match="ATTRIBUTION_PERIOD_INVALID"):
        Period(date(2026, 1, 9), date(2026, 1, 8))
    assert default_periods(date(2026, 1, 18)) == (B, C)


def test_overlapping_periods_are_refused(spark):
    empty = spark.createDataFrame([], latest("station_results").struct)
    builds = spark.createDataFrame([], latest("vehicle_builds").struct)
    with pytest.raises(RedlineError, match="overlap"):
        fpy_attribution(empty, builds, B, Period(date(2026, 1, 10), date(2026, 1, 20)))
    assert fpy_attribution(empty, builds, B, C).count() == 0


def test_the_worst_fpy_drop_is_attributed_to_the_planted_bad_lot(spark):
    """On simulator data the drifting torque at S010 stays inside its spec limits during
    the build window (vehicles are built on days 0-29 only; at +0.12 Nm a day it never
    reaches USL), so FPY moves only through the bad battery lot at S030. Between days
    14-21 and 22-29 the bad lot's share of builds rises: the worst station drop must
    name LOT-BM-0413 as its first cause and D-BM-CELL-IMBALANCE as its failure mode."""
    spec = SimulationSpec(vehicles=200, days=60, seed=7)
    silver = silver_frames(spark, spec, ("station_results", "vehicle_builds"))
    day = lambda k: spec.start + timedelta(days=k)  # noqa: E731
    out = fpy_attribution(silver["station_results"], silver["vehicle_builds"],
                          Period(day(14), day(21)), Period(day(22), day(29))).cache()
    worst = (out.where(F.col("scope_station").isNotNull())
             .orderBy("fpy_change", "scope").first())
    lot = PLANTED["bad_lot"]
    assert worst.scope_station == lot["station"] and worst.fpy_change < -0.1, worst
    top = {r.dimension_kind: r for r in out.where(
        (F.col("scope") == worst.scope) & (F.col("rank") == 1)).collect()}
    assert (top["population"].dimension, top["population"].value) == \
        (f"lot:{lot['component']}", lot["lot"]), top
    assert top["failure_mode"].value == lot["defect_code"]
    # Over the whole factory the bad lot explains the drop as well (over 100%: other
    # values improved a little).
    [factory] = out.where("scope = 'all' AND dimension_kind = 'population' AND rank = 1"
                          ).collect()
    assert factory.value == lot["lot"] and factory.contribution_share > 0.9, factory
