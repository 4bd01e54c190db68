"""KPI change attribution: a hand-worked example per KPI, and the planted drift on the
simulated factory."""

import math
from datetime import date, datetime, timedelta

import pytest
from pyspark.sql import functions as F

from redline.errors import RedlineError
from redline.jobs.attribution import Period, default_periods, kpi_attribution
from redline.quality.suites import ATTRIBUTION_KPIS
from redline.schemas.payloads import latest
from redline.streaming.simulator import PLANTED, SimulationSpec, Simulator

B = Period(date(2026, 1, 5), date(2026, 1, 11))
C = Period(date(2026, 1, 12), date(2026, 1, 18))


def _test(i, unit, day, result, defects=(), *, attempt=1, shift="A", line="L1",
          station="S010", chars=()):
    return {"event_id": f"e{i}", "event_time": datetime.combine(day, datetime.min.time())
            + timedelta(hours=attempt), "schema_version": 1, "unit_serial": unit,
            "plant": "PLT-A", "line": line, "station": station, "operation": "op",
            "shift": shift, "attempt": attempt, "result": result,
            "measurements": [{"characteristic": c, "value": 1.0, "unit": "u", "lsl": 0.0,
                              "usl": 2.0, "target": 1.0} for c in chars],
            "defect_codes": list(defects), "cycle_time_s": 60.0}


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
    out = kpi_attribution(
        spark.createDataFrame(tests, latest("station_results").struct),
        spark.createDataFrame([_build(u, lot) for u, lot in lots.items()],
                              latest("vehicle_builds").struct), B, C)
    rows = {(r.dimension, r.value): r for r in out.where(
        "kpi = 'fpy' AND scope = 'PLT-A/L1/S010'").collect()}
    y = rows[("lot:pack", "Y")]
    # FPY 3/4 -> 2/4. Lot Y: share 2/4 -> 3/4, failure rate 1/2 -> 2/3.
    assert (y.kpi_baseline, y.kpi_current) == (0.75, 0.5)
    assert y.kpi_change == pytest.approx(-0.25)
    assert y.mix_effect == pytest.approx(-(0.75 - 0.5) * (0.5 + 2 / 3) / 2)   # -0.1458
    assert y.rate_effect == pytest.approx(-(2 / 3 - 0.5) * (0.5 + 0.75) / 2)  # -0.1042
    assert y.contribution == pytest.approx(-0.25)
    assert y.contribution_share == pytest.approx(1.0)
    assert (y.units_baseline, y.units_current, y.events_baseline, y.events_current) == \
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


def _attribution(spark, tests):
    return kpi_attribution(spark.createDataFrame(tests, latest("station_results").struct),
                           spark.createDataFrame([], latest("vehicle_builds").struct), B, C)


def _rows(out, kpi, scope="PLT-A/L1/S010"):
    return {(r.dimension, r.value): r for r in out.where(
        (F.col("kpi") == kpi) & (F.col("scope") == scope)).collect()}


def _sums_to_change(rows, dimension, change):
    """The contributions of ``dimension`` add up to the KPI's change, given by hand."""
    parts = [r for (d, _), r in rows.items() if d == dimension]
    assert parts and all(r.kpi_change == pytest.approx(change) for r in parts)
    assert sum(r.contribution for r in parts) == pytest.approx(change)


# Scrap and rework at S010, by shift (attempt 2 on the same day):
#   baseline  U1 A FAIL(D-A), FAIL      scrapped, reworked
#             U2 A PASS; U3 B PASS; U4 B PASS
#   current   U5 A FAIL(D-A), FAIL      scrapped, reworked
#             U9 A PASS
#             U6 B FAIL(D-B), FAIL      scrapped, reworked
#             U7 B PASS
#             U8 B FAIL(D-B), PASS      reworked
_d5, _d12 = date(2026, 1, 5), date(2026, 1, 12)
SCRAP_REWORK = [
    _test(1, "U1", _d5, "FAIL", ["D-A"]), _test(2, "U1", _d5, "FAIL", attempt=2),
    _test(3, "U2", _d5, "PASS"), _test(4, "U3", _d5, "PASS", shift="B"),
    _test(5, "U4", _d5, "PASS", shift="B"),
    _test(6, "U5", _d12, "FAIL", ["D-A"]), _test(7, "U5", _d12, "FAIL", attempt=2),
    _test(8, "U9", _d12, "PASS"),
    _test(9, "U6", _d12, "FAIL", ["D-B"], shift="B"),
    _test(10, "U6", _d12, "FAIL", attempt=2, shift="B"),
    _test(11, "U7", _d12, "PASS", shift="B"),
    _test(12, "U8", _d12, "FAIL", ["D-B"], shift="B"),
    _test(13, "U8", _d12, "PASS", attempt=2, shift="B")]


def test_scrap_rate_by_hand(spark):
    rows = _rows(_attribution(spark, SCRAP_REWORK), "scrap_rate")
    # Scrap rate 1/4 -> 2/5, change 3/20.
    # Shift A: share 2/4 -> 2/5, rate 1/2 -> 1/2:
    #   mix = (2/5 - 1/2) * (1/2 + 1/2) / 2 = -1/20, rate = 0.
    # Shift B: share 2/4 -> 3/5, rate 0 -> 1/3:
    #   mix = (3/5 - 1/2) * (0 + 1/3) / 2 = 1/60, rate = (1/3 - 0) * (1/2 + 3/5) / 2 = 11/60.
    a, b = rows[("shift", "A")], rows[("shift", "B")]
    assert (a.kpi_baseline, a.kpi_current) == (0.25, 0.4)
    assert (a.units_baseline, a.units_current, a.events_baseline, a.events_current) == \
        (2, 2, 1, 1)
    assert (a.scope_units_baseline, a.scope_units_current) == (4, 5)
    assert a.mix_effect == pytest.approx(-1 / 20) and a.rate_effect == pytest.approx(0.0)
    assert b.mix_effect == pytest.approx(1 / 60) and b.rate_effect == pytest.approx(11 / 60)
    assert b.contribution == pytest.approx(1 / 5) and b.rank == 1
    assert b.contribution_share == pytest.approx((1 / 5) / (3 / 20))
    _sums_to_change(rows, "shift", 3 / 20)
    # Failure modes: scrapped units whose attempt 1 carried the code. D-A 1/4 -> 1/5;
    # D-B 0 -> 1/5 (U8 was reworked, not scrapped).
    assert rows[("defect_code", "D-A")].contribution == pytest.approx(-1 / 20)
    assert rows[("defect_code", "D-B")].events_current == 1
    assert rows[("defect_code", "D-B")].contribution == pytest.approx(1 / 5)
    _sums_to_change(rows, "defect_code", 3 / 20)


def test_rework_rate_by_hand(spark):
    rows = _rows(_attribution(spark, SCRAP_REWORK), "rework_rate")
    # Rework rate 1/4 -> 3/5, change 7/20.
    # Shift A: share 2/4 -> 2/5, rate 1/2 -> 1/2: mix = -1/20, rate = 0.
    # Shift B: share 2/4 -> 3/5, rate 0 -> 2/3:
    #   mix = (3/5 - 1/2) * (0 + 2/3) / 2 = 1/30, rate = (2/3) * (1/2 + 3/5) / 2 = 11/30.
    a, b = rows[("shift", "A")], rows[("shift", "B")]
    assert (a.kpi_baseline, a.kpi_current) == (0.25, 0.6)
    assert a.mix_effect == pytest.approx(-1 / 20) and a.rate_effect == pytest.approx(0.0)
    assert b.mix_effect == pytest.approx(1 / 30) and b.rate_effect == pytest.approx(11 / 30)
    assert (b.events_baseline, b.events_current) == (0, 2)
    assert b.contribution == pytest.approx(2 / 5) and b.rank == 1
    _sums_to_change(rows, "shift", 7 / 20)
    # D-B: U6 and U8 reworked, 0 -> 2/5.
    assert rows[("defect_code", "D-B")].contribution == pytest.approx(2 / 5)
    _sums_to_change(rows, "defect_code", 7 / 20)


def test_dpmo_by_hand(spark):
    two = ("torque", "angle")
    tests = [
        _test(1, "U1", _d5, "FAIL", ["D-X"], chars=two),               # 1 defect, 2 opp.
        _test(2, "U2", _d5, "PASS", shift="B", chars=two),             # 0, 2
        _test(3, "U3", _d12, "FAIL", ["D-X", "D-Y"], chars=two),       # 2, 2
        _test(4, "U4", _d12, "PASS", shift="B", chars=two),            # 0, 2
        _test(5, "U5", _d12, "FAIL", ["D-Y"], shift="B")]              # 1, 1 (none measured)
    rows = _rows(_attribution(spark, tests), "dpmo")
    # DPMO 1/4 * 1e6 = 250,000 -> 3/5 * 1e6 = 600,000, change 350,000. Shares are of
    # opportunities.
    # Shift A: share 2/4 -> 2/5, rate 1/2 -> 2/2:
    #   mix = 1e6 (2/5 - 1/2) (1/2 + 1) / 2 = -75,000
    #   rate = 1e6 (1 - 1/2) (1/2 + 2/5) / 2 = 225,000
    # Shift B: share 2/4 -> 3/5, rate 0 -> 1/3:
    #   mix = 1e6 (3/5 - 1/2) (0 + 1/3) / 2 = 1e6 / 60 = 16,666.67
    #   rate = 1e6 (1/3) (1/2 + 3/5) / 2 = 1e6 * 11/60 = 183,333.33
    a, b = rows[("shift", "A")], rows[("shift", "B")]
    assert a.kpi_baseline == pytest.approx(250_000) and a.kpi_current == pytest.approx(600_000)
    assert (a.scope_units_baseline, a.scope_units_current) == (4, 5)
    assert (b.units_baseline, b.units_current, b.events_baseline, b.events_current) == \
        (2, 3, 0, 1)
    assert a.mix_effect == pytest.approx(-75_000) and a.rate_effect == pytest.approx(225_000)
    assert b.mix_effect == pytest.approx(1e6 / 60)
    assert b.rate_effect == pytest.approx(1e6 * 11 / 60)
    assert (a.contribution, b.contribution) == (pytest.approx(150_000), pytest.approx(200_000))
    # Firmware and model "(unknown)" (no build records) hold every unit and explain all
    # 350,000, so they rank first.
    assert b.rank == 3 and rows[("firmware_version", "(unknown)")].rank == 1
    _sums_to_change(rows, "shift", 350_000)
    # Defects by code: D-X 1/4 -> 1/5 of opportunities, D-Y 0 -> 2/5.
    assert rows[("defect_code", "D-X")].contribution == pytest.approx(-50_000)
    assert rows[("defect_code", "D-Y")].contribution == pytest.approx(400_000)
    _sums_to_change(rows, "defect_code", 350_000)


def test_rty_by_hand(spark):
    def station(first, day, line, name, fails, n):
        return [_test(first + k, f"{line}-{first + k}", day, "FAIL" if k < fails else "PASS",
                      line=line, station=name) for k in range(n)]

    tests = [*station(0, _d5, "L1", "S010", 1, 4), *station(10, _d5, "L1", "S020", 0, 4),
             *station(20, _d12, "L1", "S010", 2, 4), *station(30, _d12, "L1", "S020", 1, 4),
             *station(40, _d5, "L2", "S010", 0, 2), *station(50, _d5, "L2", "S020", 1, 2),
             *station(60, _d12, "L2", "S010", 2, 2), *station(70, _d12, "L2", "S020", 1, 2)]
    out = _attribution(spark, tests)
    assert {r.kpi for r in out.select("kpi").distinct().collect()} == {
        "fpy", "dpmo", "scrap_rate", "rework_rate", "rty"} == set(ATTRIBUTION_KPIS)
    assert {r.scope for r in out.where("kpi = 'rty'").collect()} == {"PLT-A/L1", "PLT-A/L2"}
    rows = _rows(out, "rty", "PLT-A/L1")
    assert set(rows) == {("station", "PLT-A/L1/S010"), ("station", "PLT-A/L1/S020")}
    # L1: S010 FPY 3/4 -> 1/2, S020 1 -> 3/4; RTY 3/4 -> 3/8, change -3/8.
    # ln RTY_C - ln RTY_B = ln(1/2), so L = (-3/8) / ln(1/2) = 3 / (8 ln 2):
    #   S010: L * ln((1/2) / (3/4)) = 3/8 * log2(2/3) = -0.2194
    #   S020: L * ln((3/4) / 1)     = 3/8 * log2(3/4) = -0.1556
    s010, s020 = rows[("station", "PLT-A/L1/S010")], rows[("station", "PLT-A/L1/S020")]
    assert s010.kpi_baseline == pytest.approx(3 / 4)
    assert s010.kpi_current == pytest.approx(3 / 8)
    assert (s010.units_baseline, s010.units_current, s010.events_baseline,
            s010.events_current) == (4, 4, 1, 2)
    assert s010.contribution == pytest.approx(3 / 8 * math.log2(2 / 3))
    assert s020.contribution == pytest.approx(3 / 8 * math.log2(3 / 4))
    assert (s010.mix_effect, s010.rate_effect) == (0.0, pytest.approx(s010.contribution))
    assert (s010.rank, s020.rank, s010.dimension_kind) == (1, 2, "population")
    _sums_to_change(rows, "station", -3 / 8)
    # L2: S010 FPY 1 -> 0, S020 1/2 -> 1/2; RTY 1/2 -> 0. ln 0 is undefined: the change
    # goes to the station at FPY 0 in the current period.
    rows = _rows(out, "rty", "PLT-A/L2")
    assert rows[("station", "PLT-A/L2/S010")].contribution == pytest.approx(-1 / 2)
    assert rows[("station", "PLT-A/L2/S020")].contribution == 0.0
    _sums_to_change(rows, "station", -1 / 2)


def test_periods_are_validated():
    with pytest.raises(RedlineError, match="ATTRIBUTION_PERIOD_INVALID"):
        Period(date(2026, 1, 9), date(2026, 1, 8))
    assert default_periods(date(2026, 1, 18)) == (B, C)


def test_overlapping_periods_are_refused(spark):
    empty = spark.createDataFrame([], latest("station_results").struct)
    builds = spark.createDataFrame([], latest("vehicle_builds").struct)
    with pytest.raises(RedlineError, match="overlap"):
        kpi_attribution(empty, builds, B, Period(date(2026, 1, 10), date(2026, 1, 20)))
    assert kpi_attribution(empty, builds, B, C).count() == 0


def test_the_drifting_station_loses_fpy_to_its_torque_defect(spark):
    """On the simulated factory (60 units a line a day) bolt torque at the drifting
    station (PLANTED["drift"]) reaches its upper spec limit in the last two weeks of the
    build window: its FPY falls between days 31-37 and 38-44, and D-TORQUE, the drift's
    defect, is the failure mode that explains most of the fall."""
    from simulated import typed

    spec = SimulationSpec(vehicles=100, days=90, seed=7, units_per_line_day=60)
    day = lambda k: spec.start + timedelta(days=k)  # noqa: E731
    first = datetime.combine(day(31), datetime.min.time())
    rows = [r for r in (typed(e.payload) for e in Simulator(spec).events()
                        if e.topic == "station_results")
            if r["event_time"].replace(tzinfo=None) >= first]
    results = spark.createDataFrame(rows, latest("station_results").struct)
    builds = spark.createDataFrame([], latest("vehicle_builds").struct)
    out = kpi_attribution(results, builds, Period(day(31), day(37)), Period(day(38), day(44)))
    drift = PLANTED["drift"]
    scope = "/".join((drift["plant"], drift["line"], drift["station"]))
    rows = _rows(out.where("dimension_kind = 'failure_mode'"), "fpy", scope)
    torque = rows[("defect_code", "D-TORQUE")]
    assert torque.kpi_change < -0.01, torque  # more than a point of FPY lost
    assert torque.rank == 1 and torque.contribution_share > 0.6, torque
