from datetime import date, datetime, timedelta

import numpy as np
import pytest
from pyspark.sql import functions as F
from pyspark.testing import assertSchemaEqual

from redline.config import AnalysisConfig
from redline.errors import RedlineError
from redline.jobs.capability import capability, chi2_quantile, spread_interval
from redline.jobs.spc import measurements
from redline.schemas.payloads import latest
from redline.schemas.tables import CAPABILITY

DAY1 = [50.2, 49.1, 50.8, 49.6, 50.3, 51.9]
DAY2 = [52.4, 49.0, 50.5, 51.1]              # Tuesday 2026-01-06, same ISO week
LEAK = [1.9, 2.4, 2.1, 2.8, 1.6]              # one-sided in effect: lsl is null
#: The formula tests use a handful of points: no minimum n for them.
ANY_N = AnalysisConfig(capability_min_n=2)


def _result(i, when, value, station="S010", characteristic="bolt_torque_nm",
            lsl=45.0, usl=55.0, attempt=1):
    return {
        "event_id": f"r{i:03d}-{attempt}", "event_time": when, "schema_version": 1,
        "unit_serial": f"U{i:03d}", "plant": "PLT-A", "line": "L1", "station": station,
        "operation": "op", "shift": "A", "attempt": attempt, "result": "PASS",
        "defect_codes": [], "cycle_time_s": 60.0,
        "measurements": [{"characteristic": characteristic, "value": float(value),
                          "unit": "u", "lsl": lsl, "usl": usl, "target": None}],
    }


@pytest.fixture(scope="module")
def points(spark):
    monday = datetime(2026, 1, 5, 6)
    rows = [_result(i, monday + timedelta(minutes=i), v) for i, v in enumerate(DAY1)]
    rows += [_result(100 + i, monday + timedelta(days=1, minutes=i), v)
             for i, v in enumerate(DAY2)]
    rows += [_result(200 + i, monday + timedelta(minutes=i), v, station="S020",
                     characteristic="leak_rate_ccm", lsl=None, usl=5.0)
             for i, v in enumerate(LEAK)]
    rows.append(_result(300, monday, 80.0, attempt=2))  # retests are not in capability
    return measurements(spark.createDataFrame(rows, latest("station_results").struct))


def _expected(values, lsl, usl):
    """Capability computed with numpy from the textbook definitions."""
    x = np.array(values)
    mean = x.mean()
    s_within = np.abs(np.diff(x)).mean() / 1.128
    s_overall = x.std(ddof=1)
    sides = [v for v in ((usl - mean) if usl is not None else None,
                         (mean - lsl) if lsl is not None else None) if v is not None]
    both = lsl is not None and usl is not None
    return {
        "n": len(x), "mean": mean, "sigma_within": s_within, "sigma_overall": s_overall,
        "cp": (usl - lsl) / (6 * s_within) if both else None,
        "cpk": min(sides) / (3 * s_within),
        "pp": (usl - lsl) / (6 * s_overall) if both else None,
        "ppk": min(sides) / (3 * s_overall),
    }


def _check(row, expected):
    for name, value in expected.items():
        got = getattr(row, name)
        if value is None:
            assert got is None, name
        else:
            assert got == pytest.approx(value, rel=1e-9), name


def test_daily_capability_matches_numpy(points):
    out = capability(points, "day", ANY_N)
    rows = {(r.characteristic, r.period_start): r for r in out.collect()}
    assert set(rows) == {("bolt_torque_nm", date(2026, 1, 5)),
                         ("bolt_torque_nm", date(2026, 1, 6)),
                         ("leak_rate_ccm", date(2026, 1, 5))}
    _check(rows["bolt_torque_nm", date(2026, 1, 5)], _expected(DAY1, 45.0, 55.0))
    _check(rows["bolt_torque_nm", date(2026, 1, 6)], _expected(DAY2, 45.0, 55.0))
    _check(rows["leak_rate_ccm", date(2026, 1, 5)], _expected(LEAK, None, 5.0))
    assert {r.period for r in rows.values()} == {"day"}
    assertSchemaEqual(out.schema, CAPABILITY, ignoreNullable=True)


def test_weekly_capability_pools_the_days_of_a_week(points):
    # Within a week the moving ranges run over consecutive points of that week, so the
    # jump from the last point of Monday to the first of Tuesday is one of them.
    [row] = capability(points.where("station = 'S010'"), "week", ANY_N).collect()
    assert (row.period, row.period_start) == ("week", date(2026, 1, 5))
    _check(row, _expected(DAY1 + DAY2, 45.0, 55.0))


def test_single_point_has_no_sigma_and_no_indices(points):
    [row] = capability(points.where("seq = 1 and station = 'S010'"), "day", ANY_N).collect()
    assert row.n == 1 and row.mean == DAY1[0]
    assert (row.sigma_within, row.sigma_overall, row.cp, row.cpk, row.pp, row.ppk) == (
        None,) * 6


def test_unknown_period_is_a_clear_error(points):
    with pytest.raises(RedlineError,
                       match="period must be one of day, week, month, baseline; got 'year'"):
        capability(points, "year")


# --- the minimum n and the confidence intervals -----------------------------------------

def _day_of(spark, values, lsl=38.0, usl=62.0):
    """``values`` as one day's first-pass measurements of one series."""
    monday = datetime(2026, 1, 5, 6)
    rows = [_result(i, monday + timedelta(minutes=i), v, lsl=lsl, usl=usl)
            for i, v in enumerate(values)]
    return measurements(spark.createDataFrame(rows, latest("station_results").struct))


def _sample(n, mean, s):
    """``n`` values whose mean and sample standard deviation are exactly ``mean``, ``s``."""
    x = np.sin(np.arange(1, n + 1) * 1.7)  # any spread-out values
    return list((x - x.mean()) / x.std(ddof=1) * s + mean)


def test_pp_interval_is_montgomerys_example(spark):
    # Montgomery, Introduction to Statistical Quality Control (6th ed.), Example 8.5:
    # USL 62, LSL 38, n = 20, s = 1.75, centred: Cp = 2.29, 95 % interval 1.57 to 3.01.
    # (Montgomery's Cp uses the sample s, which is redline's Pp.)
    # (Montgomery's Cp uses the sample s, which is redline's Pp.) His interval is worked
    # from the rounded 2.29; from the unrounded 2.2857 the bounds are 1.565 and 3.006.
    [row] = capability(_day_of(spark, _sample(20, 50.0, 1.75)), "day",
                       AnalysisConfig(capability_min_n=20)).collect()
    assert row.status == "ok" and row.n == 20
    assert round(row.pp, 2) == 2.29
    assert row.pp_ci_low == pytest.approx(1.57, abs=0.006)
    assert row.pp_ci_high == pytest.approx(3.01, abs=0.006)
    low, high = spark.range(1).select(*spread_interval(F.lit(2.29), F.lit(20))).first()
    assert (round(low, 2), round(high, 2)) == (1.57, 3.01)


def test_ppk_interval_is_montgomerys_example(spark):
    # Montgomery, Example 8.6: n = 20 and an estimated Cpk of 1.33 give the approximate
    # (Bissell) 95 % interval 0.88 to 1.78. A centred sample with s = 12 / (3 * 1.33).
    [row] = capability(_day_of(spark, _sample(20, 50.0, 12 / (3 * 1.33))), "day",
                       AnalysisConfig(capability_min_n=20)).collect()
    assert row.ppk == pytest.approx(1.33, abs=1e-9)
    assert (round(row.ppk_ci_low, 2), round(row.ppk_ci_high, 2)) == (0.88, 1.78)


def test_within_intervals_follow_the_same_formulas(spark):
    from scipy import stats

    values = _sample(40, 51.0, 2.0)
    [row] = capability(_day_of(spark, values), "day").collect()
    n, z = 40, stats.norm.ppf(0.975)
    s_within = np.abs(np.diff(values)).mean() / 1.128
    cp = 24 / (6 * s_within)
    cpk = 11 / (3 * s_within)
    assert row.cp == pytest.approx(cp) and row.cpk == pytest.approx(cpk)
    lo, hi = (cp * np.sqrt(stats.chi2.ppf(q, n - 1) / (n - 1)) for q in (0.025, 0.975))
    assert row.cp_ci_low == pytest.approx(lo, rel=1e-3)
    assert row.cp_ci_high == pytest.approx(hi, rel=1e-3)
    half = z * np.sqrt(1 / (9 * n) + cpk ** 2 / (2 * (n - 1)))
    assert row.cpk_ci_low == pytest.approx(cpk - half, rel=1e-9)
    assert row.cpk_ci_high == pytest.approx(cpk + half, rel=1e-9)


def test_chi_square_quantiles_are_scipys(spark):
    from scipy import stats

    for dof in (1, 9, 19, 29, 500, 501, 5000):
        got = spark.range(1).select(chi2_quantile(0.025, F.lit(dof)),
                                    chi2_quantile(0.975, F.lit(dof))).first()
        assert got[0] == pytest.approx(stats.chi2.ppf(0.025, dof), rel=1e-5), dof
        assert got[1] == pytest.approx(stats.chi2.ppf(0.975, dof), rel=1e-5), dof


def test_fewer_points_than_the_minimum_give_no_index(spark):
    # The default minimum is 30: 29 points keep n and mean only, 30 get every index.
    values = _sample(30, 50.0, 2.0)
    [short] = capability(_day_of(spark, values[:29]), "day").collect()
    assert (short.n, short.min_n, short.status) == (29, 30, "too few points")
    assert short.mean == pytest.approx(np.mean(values[:29]))
    assert short.sigma_overall == pytest.approx(np.std(values[:29], ddof=1))
    assert all(getattr(short, c) is None for c in (
        "cp", "cpk", "pp", "ppk", "cp_ci_low", "cpk_ci_low", "pp_ci_high", "ppk_ci_high"))
    [full] = capability(_day_of(spark, values), "day").collect()
    assert (full.n, full.status) == (30, "ok")
    assert full.ppk == pytest.approx(12 / (3 * 2.0))
    assert full.cpk_ci_low < full.cpk < full.cpk_ci_high


def test_a_series_override_sets_its_own_minimum(spark):
    settings = AnalysisConfig(characteristic=(("bolt_torque_nm", (("capability_min_n", 5),)),))
    [row] = capability(_day_of(spark, [50.0, 51.0, 49.5, 50.5, 50.2]), "day",
                       settings).collect()
    assert (row.min_n, row.status) == (5, "ok") and row.cpk is not None
    [flat] = capability(_day_of(spark, [50.0] * 5), "day", settings).collect()
    assert flat.status == "no variation" and flat.cpk is None and flat.cpk_ci_low is None
