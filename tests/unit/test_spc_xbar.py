"""X-bar/R charts by subgroup: limits by hand with the published constants, rules on the
subgroup means."""

from datetime import datetime, timedelta

import numpy as np
import pytest
from pyspark.testing import assertSchemaEqual

from redline.errors import RedlineError
from redline.jobs.spc import measurements, xbar_r, xbar_violations
from redline.schemas.payloads import latest
from redline.schemas.tables import SPC_SUBGROUPS, SPC_VIOLATIONS

T0 = datetime(2026, 1, 5, 6, 0)

# Subgroups of n = 5 (by hand):
#   1: 50.0 51.0 49.0 50.5 49.5  mean 50.0  range 2.0
#   2: 50.2 50.8 49.6 50.4 50.0  mean 50.2  range 1.2
#   3: 52.0 52.0 52.0 52.0 51.0  mean 51.8  range 1.0
#   points 16, 17: an incomplete subgroup, not charted
# Baseline = subgroups 1-2: Xbarbar = 50.1, Rbar = 1.6;
#   X-bar UCL = 50.1 + 0.577 * 1.6 = 51.0232, LCL = 49.1768
#   R UCL = 2.114 * 1.6 = 3.3824, LCL = 0 * 1.6 = 0
#   sigma of a mean = 0.577 * 1.6 / 3 = 0.307733..., subgroup 3: z = 1.7 / 0.307733 = 5.5243
VALUES = [50.0, 51.0, 49.0, 50.5, 49.5,
          50.2, 50.8, 49.6, 50.4, 50.0,
          52.0, 52.0, 52.0, 52.0, 51.0,
          50.0, 50.1]


def _result(i, value, station="S010"):
    return {"event_id": f"e{i + 1:02d}", "schema_version": 1,
            "event_time": T0 + timedelta(minutes=i), "unit_serial": f"U{i:03d}",
            "plant": "PLT-A", "line": "L1", "station": station, "operation": "op",
            "shift": "A", "attempt": 1, "result": "PASS", "defect_codes": [],
            "cycle_time_s": 60.0,
            "measurements": [{"characteristic": "bolt_torque_nm", "value": float(value),
                              "unit": "Nm", "lsl": 45.0, "usl": 55.0, "target": 50.0}]}


def _points(spark, values, station="S010"):
    rows = [_result(i, v, station) for i, v in enumerate(values)]
    return measurements(spark.createDataFrame(rows, latest("station_results").struct))


def test_xbar_r_limits_by_hand_with_published_constants(spark):
    sub = xbar_r(_points(spark, VALUES), subgroup_size=5, baseline_subgroups=2)
    assertSchemaEqual(sub.schema, SPC_SUBGROUPS)
    got = sub.orderBy("subgroup").collect()
    assert [r.subgroup for r in got] == [1, 2, 3]
    assert [r.xbar for r in got] == pytest.approx([50.0, 50.2, 51.8])
    assert [r.range for r in got] == pytest.approx([2.0, 1.2, 1.0])
    assert [r.in_baseline for r in got] == [True, True, False]
    assert got[2].event_ids == ["e11", "e12", "e13", "e14", "e15"]
    assert (got[2].start_time, got[2].end_time) == (T0 + timedelta(minutes=10),
                                                    T0 + timedelta(minutes=14))
    for r in got:
        assert r.subgroup_size == 5
        assert r.xbar_centre == pytest.approx(50.1)
        assert r.r_centre == pytest.approx(1.6)
        assert r.xbar_ucl == pytest.approx(51.0232)
        assert r.xbar_lcl == pytest.approx(49.1768)
        assert r.r_ucl == pytest.approx(3.3824)
        assert r.r_lcl == 0.0
        assert r.sigma_xbar == pytest.approx(0.577 * 1.6 / 3)
    assert got[2].z == pytest.approx(1.7 / (0.577 * 1.6 / 3))
    assert got[2].z == pytest.approx(5.5243, abs=1e-4)


def test_xbar_r_with_n7_uses_a_nonzero_d3(spark):
    rng = np.random.default_rng(3)
    values = np.round(rng.normal(10.0, 0.5, size=7 * 6), 3)
    sub = xbar_r(_points(spark, values), subgroup_size=7, baseline_subgroups=4)
    got = sub.orderBy("subgroup").collect()
    groups = values.reshape(6, 7)
    means, ranges = groups.mean(axis=1), np.ptp(groups, axis=1)
    xbarbar, rbar = means[:4].mean(), ranges[:4].mean()
    assert [r.xbar for r in got] == pytest.approx(means)
    assert [r.range for r in got] == pytest.approx(ranges)
    # n = 7: A2 = 0.419, D3 = 0.076, D4 = 1.924
    assert got[0].xbar_ucl == pytest.approx(xbarbar + 0.419 * rbar)
    assert got[0].xbar_lcl == pytest.approx(xbarbar - 0.419 * rbar)
    assert got[0].r_lcl == pytest.approx(0.076 * rbar)
    assert got[0].r_ucl == pytest.approx(1.924 * rbar)


def test_too_few_subgroups_have_no_limits(spark):
    got = xbar_r(_points(spark, VALUES[:10]), subgroup_size=5, baseline_subgroups=3).collect()
    assert len(got) == 2 and all(r.xbar_ucl is None and r.z is None for r in got)


def test_rules_run_on_the_subgroup_means(spark):
    sub = xbar_r(_points(spark, VALUES), subgroup_size=5, baseline_subgroups=2)
    violations = xbar_violations(sub)
    assertSchemaEqual(violations.schema, SPC_VIOLATIONS)
    [row] = violations.collect()
    assert (row.chart, row.rule, row.start_seq, row.end_seq, row.points) == (
        "XBAR", 1, 3, 3, 1)
    assert row.event_ids == ["e11", "e12", "e13", "e14", "e15"]
    assert (row.start_time, row.end_time) == (T0 + timedelta(minutes=10),
                                              T0 + timedelta(minutes=14))


def test_a_shift_of_the_means_trips_rule_2_over_its_subgroups(spark):
    # Baseline 4 subgroups around 50; then 9 subgroups each averaging 50.3 (above the
    # centre 50.0, inside the limits): rule 2 over subgroups 5..13, listing 45 events.
    base = [49.0, 50.0, 51.0, 50.5, 49.5]
    shifted = [49.3, 50.3, 51.3, 50.8, 49.8]
    sub = xbar_r(_points(spark, base * 4 + shifted * 9), subgroup_size=5,
                 baseline_subgroups=4)
    rows = [(r.chart, r.rule, r.start_seq, r.end_seq, r.points, len(r.event_ids))
            for r in xbar_violations(sub).collect()]
    # Xbarbar 50, Rbar 2, sigma 0.577*2/3 = 0.3847: z = 0.78, under 1: only rule 2
    assert rows == [("XBAR", 2, 5, 13, 9, 45)]


@pytest.mark.parametrize("bad", [1, 11, 5.0, True, "5"])
def test_bad_subgroup_size_is_a_clear_error(spark, bad):
    with pytest.raises(RedlineError, match="subgroup_size must be an integer from 2 to 10"):
        xbar_r(_points(spark, VALUES[:5]), subgroup_size=bad)


@pytest.mark.parametrize("bad", [0, 2.0, False])
def test_bad_baseline_subgroups_is_a_clear_error(spark, bad):
    with pytest.raises(RedlineError, match="baseline_subgroups must be an integer >= 1"):
        xbar_r(_points(spark, VALUES[:5]), baseline_subgroups=bad)
