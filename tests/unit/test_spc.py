from datetime import datetime, timedelta

import numpy as np
import pytest
from pyspark.sql.types import DoubleType, LongType, StringType, StructField, StructType, \
    TimestampType

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


def _charted(spark, values, key=KEY, centre=0.0, sigma=1.0):
    rows = [(*key, i + 1, f"e{i + 1}", T0 + timedelta(minutes=i), float(v), centre, sigma)
            for i, v in enumerate(values)]
    return spark.createDataFrame(rows, CHARTED)


def _violations(spark, values, **kw):
    return [(r.rule, r.start_seq, r.end_seq, r.points)
            for r in nelson_violations(_charted(spark, values, **kw)).orderBy("rule").collect()]


@pytest.fixture(scope="module")
def found(spark):
    """Violations of the calm series and of every rule's series, each on its own key,
    in one Spark job: rule -> [(rule, start_seq, end_seq, points)] (rule 0: calm)."""
    series = {0: CALM, **{r: values for r, (values, _, _) in BREAKS.items()}}
    frames = [_charted(spark, values, key=("PLT-A", "L1", f"S{r}", "c"))
              for r, values in series.items()]
    df = frames[0]
    for other in frames[1:]:
        df = df.unionByName(other)
    out = {r: [] for r in series}
    for row in nelson_violations(df).orderBy("station", "rule", "start_seq").collect():
        out[int(row.station[1:])].append((row.rule, row.start_seq, row.end_seq, row.points))
    return out


def test_calm_series_breaks_no_rule(found):
    assert found[0] == []


@pytest.mark.parametrize("rule", sorted(BREAKS))
def test_each_nelson_rule_alone(found, rule):
    _, first, last = BREAKS[rule]
    assert found[rule] == [(rule, first, last, last - first + 1)]


def test_rules_scale_with_centre_and_sigma(spark):
    values, first, last = BREAKS[5]
    shifted = [50.0 + 0.4 * v for v in values]
    assert _violations(spark, shifted, centre=50.0, sigma=0.4) == [(5, first, last, 3)]


def test_overlapping_windows_are_one_violation_with_its_points(spark):
    # 12 points above the centre: windows ending at 9..12 overlap -> one rule-2 episode.
    values = [0.3, 0.8, 0.2, 0.5, 0.1, 0.7, 0.4, 0.9, 0.6, 0.2, 0.5, 0.3, -0.4]
    df = nelson_violations(_charted(spark, values))
    [row] = df.collect()
    assert (row.rule, row.rule_name, row.start_seq, row.end_seq, row.points) == (
        2, RULES[2][0], 1, 12, 12)
    assert row.event_ids == [f"e{i}" for i in range(1, 13)]
    assert (row.start_time, row.end_time) == (T0, T0 + timedelta(minutes=11))
    assertSchemaEqual(df.schema, SPC_VIOLATIONS)


def test_two_points_beyond_3_sigma_are_two_violations_and_keys_are_separate(spark):
    other = ("PLT-B", "L1", "S010", "bolt_torque_nm")
    found = (nelson_violations(
        _charted(spark, [0.1, 3.2, -3.4, 0.2]).unionByName(_charted(spark, CALM, key=other)))
        .select("plant", "rule", "start_seq", "end_seq").orderBy("start_seq").collect())
    # 3.2 and -3.4 are on opposite sides of the centre: rule 5 does not fire.
    assert [tuple(r) for r in found] == [("PLT-A", 1, 2, 2), ("PLT-A", 1, 3, 3)]


def test_points_without_limits_break_no_rule(spark):
    assert _violations(spark, [5.0, 6.0, 7.0], sigma=None) == []


def _station_result(i, value, unit=None, attempt=1, station="S010", key=KEY, minutes=None):
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
    df = spark.createDataFrame(rows, latest("station_results").struct)
    got = control_limits(measurements(df), baseline_points=5).orderBy("seq").collect()

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


def test_key_without_a_full_baseline_has_no_limits(spark):
    df = spark.createDataFrame([_station_result(i, 50.0 + i) for i in range(3)],
                               latest("station_results").struct)
    got = control_limits(measurements(df), baseline_points=5).collect()
    assert len(got) == 3 and all(r.centre is None and r.ucl is None for r in got)


@pytest.mark.parametrize("bad", [1, 0, 2.5, "25", True])
def test_bad_baseline_is_a_clear_error(spark, bad):
    df = spark.createDataFrame([_station_result(0, 50.0)], latest("station_results").struct)
    with pytest.raises(RedlineError, match="baseline_points must be an integer >= 2"):
        control_limits(measurements(df), baseline_points=bad)
