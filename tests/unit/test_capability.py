from datetime import date, datetime, timedelta

import numpy as np
import pytest
from pyspark.testing import assertSchemaEqual

from redline.errors import RedlineError
from redline.jobs.capability import capability
from redline.jobs.spc import measurements
from redline.schemas.payloads import latest
from redline.schemas.tables import CAPABILITY

DAY1 = [50.2, 49.1, 50.8, 49.6, 50.3, 51.9]
DAY2 = [52.4, 49.0, 50.5, 51.1]              # Tuesday 2026-01-06, same ISO week
LEAK = [1.9, 2.4, 2.1, 2.8, 1.6]              # one-sided in effect: lsl is null


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
    out = capability(points, "day")
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
    [row] = capability(points.where("station = 'S010'"), "week").collect()
    assert (row.period, row.period_start) == ("week", date(2026, 1, 5))
    _check(row, _expected(DAY1 + DAY2, 45.0, 55.0))


def test_single_point_has_no_sigma_and_no_indices(points):
    [row] = capability(points.where("seq = 1 and station = 'S010'"), "day").collect()
    assert row.n == 1 and row.mean == DAY1[0]
    assert (row.sigma_within, row.sigma_overall, row.cp, row.cpk, row.pp, row.ppk) == (
        None,) * 6


def test_unknown_period_is_a_clear_error(points):
    with pytest.raises(RedlineError,
                       match="period must be one of day, week, month, baseline; got 'year'"):
        capability(points, "year")
