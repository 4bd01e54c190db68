from datetime import datetime, timedelta

import numpy as np
import pytest
from pyspark.sql.types import (
    DoubleType,
    LongType,
    StringType,
    StructField,
    StructType,
    TimestampType,
)
from pyspark.testing import assertSchemaEqual

from redline.errors import RedlineError
from redline.jobs.spc import RULES, control_limits, measurements, nelson_violations
from redline.schemas.payloads import latest
from redline.schemas.tables import SPC_VIOLATIONS

T0 = datetime(2026, 1, 5, 6, 0)
KEY = ("PLT-A", "L1", "S010", "bolt_torque_nm")

# Points already on a chart with centre 0 and sigma 1, so that value = z.
CHARTED = StructType([
    StructField("plant", StringType()), StructField("line", StringType()),
    StructField("station", StringType()), StructField("characteristic", StringType()),
    StructField("seq", LongType()), StructField("event_id", StringType()),
    StructField("event_time", TimestampType()), StructField("value", DoubleType()),
    StructField("centre", DoubleType()), StructField("sigma", DoubleType()),
])

# No rule fires: never 9 on a side, at most 3 rises or falls in a row, no long
# alternation, only single points beyond 1 sigma and never 15 in a row within it.
CALM = [0.5, -0.4, 1.2, 0.3, -0.9, -1.3, 0.2, 0.8, -0.1, 0.6] * 3

# One series per rule that breaks that rule and no other; (series, first seq, last seq).
BREAKS = {
    1: ([0.5, -0.4, 3.5, 0.3, -0.9], 3, 3),
    2: ([-0.5, 0.3, 0.8, 0.2, 0.5, 0.1, 0.7, 0.4, 0.9, 0.6, -0.3], 2, 10),
    3: ([-0.5, 0.4, -0.8, -0.6, -0.3, 0.0, 0.2, 0.5, -0.2], 3, 8),
    4: ([0.5, -0.5, 0.6, -0.4, 0.3, -0.6, 0.7, -0.2, 0.4, -0.7, 0.2, -0.3, 0.6, -0.5], 1, 14),
    5: ([0.3, 2.5, -0.2, 2.3, 0.4], 2, 4),
    6: ([0.2, 1.5, 1.2, 0.4, 1.7, 1.3, -0.3], 2, 6),
    7: ([0.5, -0.4, 0.2, 0.3, -0.6, -0.2, 0.4, 0.7, -0.1, 0.6, -0.3, -0.5, 0.1, 0.8, -0.7],
        1, 15),
    8: ([1.5, -1.4, 1.2, -1.6, 1.3, -1.2, 1.8, -1.5], 1, 8),
}


def _charted(values, key=KEY, centre=0.0, sigma=1.0):
    return [(*key, i + 1, f"e{i + 1}", T0 + timedelta(minutes=i), float(v), centre, sigma)
            for i, v in enumerate(values)]


OVERLAP = [0.3, 0.8, 0.2, 0.5, 0.1, 0.7, 0.4, 0.9, 0.6, 0.2, 0.5, 0.3, -0.4]


@pytest.fixture(scope="module")
def charted(spark):
    """Every case below on its own key (the station names the case), in one DataFrame,
    so that the module runs one Spark job for all of them."""
    cases = {
        "calm": (CALM, 0.0, 1.0),
        **{f"rule{r}": (values, 0.0, 1.0) for r, (values, _, _) in BREAKS.items()},
        # rule 5's series on a chart with centre 50 and sigma 0.4
        "scaled": ([50.0 + 0.4 * v for v in BREAKS[5][0]], 50.0, 0.4),
        "overlap": (OVERLAP, 0.0, 1.0),
        # 3.2 and -3.4 are on opposite sides of the centre: rule 5 does not fire.
        "two_beyond": ([0.1, 3.2, -3.4, 0.2], 0.0, 1.0),
        "no_limits": ([5.0, 6.0, 7.0, 9.0, 12.0, 15.0, 19.0], 0.0, None),
    }
    rows = [row for case, (values, centre, sigma) in cases.items()
            for row in _charted(values, ("PLT-A", "L1", case, "c"), centre, sigma)]
    return spark.createDataFrame(rows, CHARTED)


@pytest.fixture(scope="module")
def found(charted):
    """case -> its violation rows, ordered by rule and start."""
    violations = nelson_violations(charted)
    rows = violations.orderBy("station", "rule", "start_seq").collect()
    out = {r.station: [] for r in charted.select("station").distinct().collect()}
    for row in rows:
        out[row.station].append(row)
    out["_schema"] = violations.schema
    return out


def _short(rows):
    return [(r.rule, r.start_seq, r.end_seq, r.points) for r in rows]


def test_calm_series_breaks_no_rule(found):
    assert _short(found["calm"]) == []


@pytest.mark.parametrize("rule", sorted(BREAKS))
def test_each_nelson_rule_alone(found, rule):
    _, first, last = BREAKS[rule]
    assert _short(found[f"rule{rule}"]) == [(rule, first, last, last - first + 1)]


def test_rules_scale_with_centre_and_sigma(found):
    assert _short(found["scaled"]) == [(5, 2, 4, 3)]


def test_overlapping_windows_are_one_violation_with_its_points(found):
    # 12 points above the centre: windows ending at 9..12 overlap -> one rule-2 episode.
    [row] = found["overlap"]
    assert (row.rule, row.rule_name, row.start_seq, row.end_seq, row.points) == (
        2, RULES[2][0], 1, 12, 12)
    assert row.event_ids == [f"e{i}" for i in range(1, 13)]
    assert (row.start_time, row.end_time) == (T0, T0 + timedelta(minutes=11))
    assertSchemaEqual(found["_schema"], SPC_VIOLATIONS)


def test_two_points_beyond_3_sigma_are_two_violations(found):
    assert _short(found["two_beyond"]) == [(1, 2, 2, 1), (1, 3, 3, 1)]


def test_points_without_limits_break_no_rule(found):
    assert _short(found["no_limits"]) == []


def _station_result(i, value, unit=None, attempt=1, key=KEY, minutes=None):
    plant, line, st, characteristic = key
    return {
        "event_id": f"r{i:03d}-{attempt}", "schema_version": 1,
        "event_time": T0 + timedelta(minutes=i if minutes is None else minutes),
        "unit_serial": unit or f"U{i:03d}", "plant": plant, "line": line, "station": st,
        "operation": "op", "shift": "A", "attempt": attempt,
        "result": "PASS", "defect_codes": [], "cycle_time_s": 60.0,
        "measurements": [{"characteristic": characteristic, "value": float(value),
                          "unit": "Nm", "lsl": 45.0, "usl": 55.0, "target": 50.0}],
    }


def test_control_limits_from_the_baseline_window(spark):
    values = [50.2, 49.1, 50.8, 49.6, 50.3, 51.9, 52.4, 49.0]
    rows = [_station_result(i, v) for i, v in enumerate(values)]
    rows.append(_station_result(99, 70.0, unit="U001", attempt=2, minutes=1))  # a retest
    short = ("PLT-B", "L1", "S010", "bolt_torque_nm")  # 3 points: no full baseline yet
    rows += [_station_result(50 + i, 50.0 + i, key=short) for i in range(3)]
    df = spark.createDataFrame(rows, latest("station_results").struct)
    charted = control_limits(measurements(df), baseline_points=5).orderBy("seq").collect()
    got = [r for r in charted if r.plant == "PLT-A"]
    unlimited = [r for r in charted if r.plant == "PLT-B"]
    assert len(unlimited) == 3 and all(r.centre is None and r.ucl is None for r in unlimited)

    base = np.array(values[:5])
    centre = base.mean()
    mr_bar = np.abs(np.diff(base)).mean()
    sigma = mr_bar / 1.128
    assert [r.seq for r in got] == list(range(1, 9))
    assert [r.value for r in got] == values  # the retest is not charted
    assert [r.in_baseline for r in got] == [True] * 5 + [False] * 3
    assert got[0].moving_range is None
    assert [r.moving_range for r in got[1:]] == pytest.approx(np.abs(np.diff(values)))
    for r in got:
        assert r.centre == pytest.approx(centre)
        assert r.sigma == pytest.approx(sigma)
        assert r.ucl == pytest.approx(centre + 3 * sigma)
        assert r.lcl == pytest.approx(centre - 3 * sigma)
        assert r.mr_centre == pytest.approx(mr_bar)
        assert r.mr_ucl == pytest.approx(3.267 * mr_bar)
        assert r.z == pytest.approx((r.value - centre) / sigma)
        assert (r.lsl, r.usl, r.unit_serial) == (45.0, 55.0, r.unit_serial)


@pytest.mark.parametrize("bad", [1, 0, 2.5, "25", True])
def test_bad_baseline_is_a_clear_error(spark, bad):
    df = spark.createDataFrame([_station_result(0, 50.0)], latest("station_results").struct)
    with pytest.raises(RedlineError, match="baseline_points must be an integer >= 2"):
        control_limits(measurements(df), baseline_points=bad)
