"""Analysis settings (``[<profile>.analysis]``) in the SPC, capability and attribution
transforms: textbook control limits computed by hand with numpy, per-characteristic
overrides, date-range baselines, rules that are off, capability periods and configured
attribution periods."""

from datetime import date, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from redline import catalog
from redline.config import AnalysisConfig, load
from redline.jobs import attribution
from redline.jobs.capability import capability_table
from redline.jobs.declare import Inputs
from redline.jobs.spc import (
    control_limits,
    measurements,
    nelson_violations,
    xbar_r,
    xbar_violations,
)
from redline.schemas.payloads import latest

T0 = datetime(2026, 1, 5, 6, 0)  # a Monday
KEY = ("PLT-A", "L1", "S010", "bolt_torque_nm")


def _result(i, value, key=KEY, when=None, lsl=45.0, usl=55.0):
    plant, line, station, characteristic = key
    return {"event_id": f"{station}-{characteristic}-{i:04d}", "schema_version": 1,
            "event_time": when or T0 + timedelta(minutes=i), "unit_serial": f"U{i:04d}",
            "plant": plant, "line": line, "station": station, "operation": "op",
            "shift": "A", "attempt": 1, "result": "PASS", "defect_codes": [],
            "cycle_time_s": 60.0,
            "measurements": [{"characteristic": characteristic, "value": float(value),
                              "unit": "u", "lsl": lsl, "usl": usl, "target": None}]}


def _points(spark, rows):
    return measurements(spark.createDataFrame(rows, latest("station_results").struct))


def _settings(tmp_path: Path, text: str) -> AnalysisConfig:
    path = tmp_path / "redline.toml"
    path.write_text("[local]\n" + text)
    return load("local", {"REDLINE_CONFIG": str(path)}).analysis


# --- textbook limits ---------------------------------------------------------------------

def test_xbar_r_of_25_subgroups_of_5_use_the_published_constants(spark):
    rng = np.random.default_rng(20240501)
    values = np.round(rng.normal(50.0, 0.8, size=125 + 25), 3)
    settings = AnalysisConfig(spc_subgroup_size=5, spc_baseline_subgroups=25)
    got = (xbar_r(_points(spark, [_result(i, v) for i, v in enumerate(values)]),
                  settings=settings).orderBy("subgroup").collect())

    groups = values.reshape(30, 5)
    means, ranges = groups.mean(axis=1), groups.max(axis=1) - groups.min(axis=1)
    xbarbar, rbar = means[:25].mean(), ranges[:25].mean()  # the first 125 measurements
    a2, d3, d4 = 0.577, 0.0, 2.114                           # published, n = 5
    assert [r.subgroup for r in got] == list(range(1, 31))
    assert [r.xbar for r in got] == pytest.approx(means)
    assert [r.range for r in got] == pytest.approx(ranges)
    assert [r.in_baseline for r in got] == [True] * 25 + [False] * 5
    for r in got:  # limits held fixed after the baseline
        assert r.subgroup_size == 5
        assert r.xbar_centre == pytest.approx(xbarbar)
        assert r.r_centre == pytest.approx(rbar)
        assert r.xbar_ucl == pytest.approx(xbarbar + a2 * rbar)
        assert r.xbar_lcl == pytest.approx(xbarbar - a2 * rbar)
        assert r.r_ucl == pytest.approx(d4 * rbar)
        assert r.r_lcl == pytest.approx(d3 * rbar)
        assert (r.baseline, r.baseline_start, r.baseline_end) == (
            "first 25 subgroups of 5", T0, T0 + timedelta(minutes=124))


def test_individuals_sigma_is_mr_bar_over_1_128(spark):
    rng = np.random.default_rng(7)
    values = np.round(rng.normal(12.0, 0.3, size=40), 4)
    got = (control_limits(_points(spark, [_result(i, v) for i, v in enumerate(values)]))
           .orderBy("seq").collect())

    base = values[:25]                               # the default baseline: 25 points
    centre = base.mean()
    mr_bar = np.abs(np.diff(base)).mean()
    sigma = mr_bar / 1.128
    assert [r.in_baseline for r in got] == [True] * 25 + [False] * 15
    for r in got:
        assert r.centre == pytest.approx(centre)
        assert r.sigma == pytest.approx(sigma)
        assert r.ucl == pytest.approx(centre + 3 * sigma)
        assert r.lcl == pytest.approx(centre - 3 * sigma)
        assert r.mr_centre == pytest.approx(mr_bar)
        assert r.mr_ucl == pytest.approx(3.267 * mr_bar)
        assert (r.baseline, r.baseline_start, r.baseline_end) == (
            "first 25 points", T0, T0 + timedelta(minutes=24))


def test_a_series_without_a_full_baseline_says_so(spark):
    got = control_limits(_points(spark, [_result(i, 50.0 + i % 3) for i in range(10)]))
    assert {(r.baseline, r.baseline_start, r.centre) for r in got.collect()} == {
        (None, None, None)}


# --- overrides ---------------------------------------------------------------------------

def test_an_override_applies_to_its_characteristic_only_and_a_series_wins(spark, tmp_path):
    settings = _settings(tmp_path, """
[local.analysis]
spc_baseline_points = 20
[local.analysis.characteristic."bolt_torque_nm"]
spc_baseline_points = 8
[local.analysis.characteristic."PLT-A/L1/S030/bolt_torque_nm"]
spc_baseline_points = 12
""")
    rng = np.random.default_rng(11)
    series = {KEY: 8, ("PLT-A", "L1", "S020", "leak_rate_ccm"): 20,
              ("PLT-A", "L1", "S030", "bolt_torque_nm"): 12}
    values = {k: np.round(rng.normal(5.0, 0.2, size=30), 3) for k in series}
    rows = [_result(i, v, key=k) for k, vs in values.items() for i, v in enumerate(vs)]
    got = control_limits(_points(spark, rows), settings=settings).collect()
    for key, n in series.items():
        mine = [r for r in got if (r.plant, r.line, r.station, r.characteristic) == key]
        base = values[key][:n]
        assert {r.baseline for r in mine} == {f"first {n} points"}, key
        assert {round(r.centre, 9) for r in mine} == {round(base.mean(), 9)}, key
        assert mine[0].mr_centre == pytest.approx(np.abs(np.diff(base)).mean()), key
        assert sum(r.in_baseline for r in mine) == n


def test_subgroup_size_may_differ_per_series(spark, tmp_path):
    settings = _settings(tmp_path, """
[local.analysis]
spc_baseline_subgroups = 3
[local.analysis.characteristic."leak_rate_ccm"]
spc_subgroup_size = 3
""")
    rng = np.random.default_rng(5)
    leak = ("PLT-A", "L1", "S020", "leak_rate_ccm")
    values = {KEY: np.round(rng.normal(50, 1, size=20), 3),
              leak: np.round(rng.normal(2, 0.1, size=20), 3)}
    rows = [_result(i, v, key=k) for k, vs in values.items() for i, v in enumerate(vs)]
    got = xbar_r(_points(spark, rows), settings=settings).collect()
    for key, n, (a2, d4) in ((KEY, 5, (0.577, 2.114)), (leak, 3, (1.023, 2.574))):
        mine = sorted((r for r in got if r.characteristic == key[3]), key=lambda r: r.subgroup)
        groups = values[key][: len(values[key]) // n * n].reshape(-1, n)
        xbarbar = groups[:3].mean(axis=1).mean()
        rbar = np.ptp(groups[:3], axis=1).mean()
        assert len(mine) == len(groups) and {r.subgroup_size for r in mine} == {n}
        assert mine[0].xbar_ucl == pytest.approx(xbarbar + a2 * rbar)
        assert mine[0].r_ucl == pytest.approx(d4 * rbar)
        assert mine[0].baseline == f"first 3 subgroups of {n}"


# --- a date-range baseline ---------------------------------------------------------------

def test_a_date_range_baseline_sets_both_charts(spark):
    # 10 points a day for 4 days; the baseline is days 2 and 3 (points 11-30).
    rng = np.random.default_rng(3)
    values = np.round(rng.normal(20.0, 0.5, size=40), 3)
    rows = [_result(i, v, when=T0 + timedelta(days=i // 10, minutes=i % 10))
            for i, v in enumerate(values)]
    settings = AnalysisConfig(spc_baseline_dates="2026-01-06..2026-01-07",
                              spc_subgroup_size=4)
    points = _points(spark, rows)
    got = control_limits(points, settings=settings).orderBy("seq").collect()
    base = values[10:30]
    centre, mr_bar = base.mean(), np.abs(np.diff(base)).mean()  # ranges inside it only
    assert [r.in_baseline for r in got] == [False] * 10 + [True] * 20 + [False] * 10
    assert {r.baseline for r in got} == {"2026-01-06..2026-01-07"}
    assert got[0].centre == pytest.approx(centre)
    assert got[0].mr_centre == pytest.approx(mr_bar)
    assert got[0].ucl == pytest.approx(centre + 3 * mr_bar / 1.128)
    assert (got[0].baseline_start, got[0].baseline_end) == (
        T0 + timedelta(days=1), T0 + timedelta(days=2, minutes=9))

    # Subgroups of 4: 1-4, 5-8, 9-12 (days 1-2), 13-16 ... 25-28, 29-32 (days 3-4):
    # subgroups 4 to 7 lie wholly inside the range.
    sub = xbar_r(points, settings=settings).orderBy("subgroup").collect()
    groups = values.reshape(10, 4)
    inside = groups[3:7]
    xbarbar, rbar = inside.mean(axis=1).mean(), np.ptp(inside, axis=1).mean()
    assert [r.in_baseline for r in sub] == [False] * 3 + [True] * 4 + [False] * 3
    assert sub[0].xbar_centre == pytest.approx(xbarbar)
    assert sub[0].xbar_ucl == pytest.approx(xbarbar + 0.729 * rbar)  # A2, n = 4
    assert sub[0].r_ucl == pytest.approx(2.282 * rbar)               # D4, n = 4
    assert {r.baseline for r in sub} == {"2026-01-06..2026-01-07"}


def test_a_date_range_without_points_gives_no_limits(spark):
    rows = [_result(i, 50.0 + i % 4) for i in range(30)]
    got = control_limits(_points(spark, rows),
                         settings=AnalysisConfig(spc_baseline_dates="2025-01-01..2025-01-31"))
    assert {(r.baseline, r.ucl) for r in got.collect()} == {(None, None)}


# --- Nelson rules that are off -----------------------------------------------------------

RULE1 = [0.5, -0.4, 3.5, 0.3, -0.9]                             # breaks rule 1 only
RULE2 = [-0.5, 0.3, 0.8, 0.2, 0.5, 0.1, 0.7, 0.4, 0.9, 0.6, -0.3]  # breaks rule 2 only


def _charted(spark, series):
    rows = [("PLT-A", "L1", "S010", c, i + 1, f"{c}{i}", T0 + timedelta(minutes=i),
             float(v), 0.0, 1.0) for c, values in series.items() for i, v in enumerate(values)]
    return spark.createDataFrame(rows, "plant string, line string, station string, "
                                       "characteristic string, seq long, event_id string, "
                                       "event_time timestamp, value double, centre double, "
                                       "sigma double")


def test_rules_that_are_off_produce_no_rows(spark, tmp_path):
    charted = _charted(spark, {"c1": RULE1 + RULE2, "c2": RULE1 + RULE2})
    everything = {(r.characteristic, r.rule) for r in nelson_violations(charted).collect()}
    assert everything == {("c1", 1), ("c1", 2), ("c2", 1), ("c2", 2)}

    settings = _settings(tmp_path, """
[local.analysis]
spc_rules = "2,3"
[local.analysis.characteristic."c1"]
spc_rules = "1"
""")
    got = {(r.characteristic, r.rule) for r in
           nelson_violations(charted, settings=settings).collect()}
    assert got == {("c1", 1), ("c2", 2)}
    none = AnalysisConfig(spc_rules="none")
    assert nelson_violations(charted, settings=none).count() == 0

    # The X-bar chart obeys them too: a subgroup mean far out breaks rule 1.
    values = [50, 51, 49, 50.5, 49.5] * 2 + [55, 55, 55, 55, 54]
    points = _points(spark, [_result(i, v) for i, v in enumerate(values)])
    sub = xbar_r(points, baseline_subgroups=2)
    assert [r.rule for r in xbar_violations(sub).collect()] == [1]
    assert xbar_violations(sub, settings=none).count() == 0


# --- capability periods ------------------------------------------------------------------

def _expected(values, lsl, usl):
    x = np.array(values)
    mean, s_within, s_overall = x.mean(), np.abs(np.diff(x)).mean() / 1.128, x.std(ddof=1)
    return {"n": len(x), "mean": mean, "sigma_within": s_within, "sigma_overall": s_overall,
            "cp": (usl - lsl) / (6 * s_within),
            "cpk": min(usl - mean, mean - lsl) / (3 * s_within),
            "pp": (usl - lsl) / (6 * s_overall),
            "ppk": min(usl - mean, mean - lsl) / (3 * s_overall)}


def test_capability_by_week_month_and_baseline(spark, tmp_path):
    # Thu 29 and Fri 30 January, Mon 2 and Tue 3 February 2026: two ISO weeks, two months.
    days = {date(2026, 1, 29): [50.2, 49.1, 50.8], date(2026, 1, 30): [49.6, 50.3, 51.9],
            date(2026, 2, 2): [52.4, 49.0, 50.5], date(2026, 2, 3): [51.1, 50.7, 49.8]}
    rows, i = [], 0
    for day, values in days.items():
        for k, v in enumerate(values):
            rows.append(_result(i, v, when=datetime.combine(day, datetime.min.time())
                                + timedelta(hours=8, minutes=k)))
            i += 1
    leak = ("PLT-A", "L1", "S020", "leak_rate_ccm")
    rows += [_result(100 + k, v, key=leak, when=T0 + timedelta(minutes=k), lsl=0.0, usl=5.0)
             for k, v in enumerate([1.9, 2.4, 2.1, 2.8, 1.6, 2.2])]
    settings = _settings(tmp_path, """
[local.analysis]
spc_baseline_points = 5
capability_periods = "week,month,baseline"
capability_min_n = 5
[local.analysis.characteristic."leak_rate_ccm"]
capability_periods = "day"
""")
    out = capability_table(_points(spark, rows), settings).collect()
    got = {(r.characteristic, r.period, r.period_start): r for r in out}
    jan, feb = [*days[date(2026, 1, 29)], *days[date(2026, 1, 30)]], \
        [*days[date(2026, 2, 2)], *days[date(2026, 2, 3)]]
    bolt = "bolt_torque_nm"
    assert set(got) == {(bolt, "week", date(2026, 1, 26)), (bolt, "week", date(2026, 2, 2)),
                        (bolt, "month", date(2026, 1, 1)), (bolt, "month", date(2026, 2, 1)),
                        (bolt, "baseline", date(2026, 1, 29)),
                        ("leak_rate_ccm", "day", date(2026, 1, 5))}
    expected = {(bolt, "week", date(2026, 1, 26)): _expected(jan, 45.0, 55.0),
                (bolt, "week", date(2026, 2, 2)): _expected(feb, 45.0, 55.0),
                (bolt, "month", date(2026, 1, 1)): _expected(jan, 45.0, 55.0),
                (bolt, "month", date(2026, 2, 1)): _expected(feb, 45.0, 55.0),
                (bolt, "baseline", date(2026, 1, 29)): _expected((jan + feb)[:5], 45.0, 55.0)}
    for key, values in expected.items():
        for name, value in values.items():
            assert getattr(got[key], name) == pytest.approx(value, rel=1e-9), (key, name)


# --- attribution periods -----------------------------------------------------------------

def test_configured_attribution_periods_are_used(spark):
    def test(i, unit, day, result):
        return {"event_id": f"e{i}", "event_time": datetime.combine(day, datetime.min.time()),
                "schema_version": 1, "unit_serial": unit, "plant": "PLT-A", "line": "L1",
                "station": "S010", "operation": "op", "shift": "A", "attempt": 1,
                "result": result, "measurements": [], "defect_codes": [],
                "cycle_time_s": 60.0}

    d1, d2, d3 = date(2026, 1, 2), date(2026, 1, 20), date(2026, 2, 10)
    # January 1-15: 1 of 2 failed; January 16-31: 0 of 2; after: 2 of 2 (not in either).
    tests = [test(1, "U1", d1, "PASS"), test(2, "U2", d1, "FAIL"),
             test(3, "U3", d2, "PASS"), test(4, "U4", d2, "PASS"),
             test(5, "U5", d3, "FAIL"), test(6, "U6", d3, "FAIL")]
    frames = {catalog.silver("station_results"):
              spark.createDataFrame(tests, latest("station_results").struct),
              catalog.silver("vehicle_builds"):
              spark.createDataFrame([], latest("vehicle_builds").struct)}
    settings = AnalysisConfig(attribution_baseline="2026-01-01..2026-01-15",
                              attribution_current="2026-01-16..2026-01-31")
    inputs = Inputs(frames, settings)
    out = attribution.JOB.transform(inputs)[catalog.KPI_ATTRIBUTION]
    [row] = out.where("kpi = 'fpy' AND scope = 'all' AND dimension = 'shift'").collect()
    assert (row.baseline_start, row.baseline_end, row.current_start, row.current_end) == (
        date(2026, 1, 1), date(2026, 1, 15), date(2026, 1, 16), date(2026, 1, 31))
    assert (row.kpi_baseline, row.kpi_current) == (0.5, 1.0)
    assert row.kpi_change == pytest.approx(0.5)
    assert inputs.notes["baseline"] == "2026-01-01..2026-01-15"

    # Unset, the job takes the last 7 days with results and the 7 before.
    default = attribution.JOB.transform(Inputs(frames))[catalog.KPI_ATTRIBUTION].first()
    assert (default.current_start, default.current_end) == (date(2026, 2, 4), d3)
