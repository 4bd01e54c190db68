from datetime import date, datetime

import numpy as np
import pytest
from pyspark.testing import assertDataFrameEqual
from scipy import optimize, stats

from redline.errors import RedlineError
from redline.jobs.reliability import (
    CI_METHOD,
    dtc_rates,
    fit_weibull,
    plotting_positions,
    unit_lives,
    warranty_triangle,
    weibull_fits,
    weibull_plot,
)
from redline.schemas.payloads import latest
from redline.schemas.tables import DTC_RATES, WARRANTY_TRIANGLE, WEIBULL_PLOT

END = date(2026, 3, 10)
Z95 = stats.norm.ppf(0.975)


# --- an independent censored Weibull MLE, written from the likelihood --------------------

def _loglik(k, lam, t, failed):
    t, failed = np.asarray(t, float), np.asarray(failed, bool)
    z = t / lam
    logf = np.log(k) - np.log(lam) + (k - 1) * np.log(z[failed]) - z[failed] ** k
    return logf.sum() - (z[~failed] ** k).sum()


def _independent_fit(t, failed):
    """MLE by Nelder-Mead on (log k, log lambda), and Fisher-matrix bounds from a
    finite-difference Hessian of the log-likelihood."""
    res = optimize.minimize(lambda p: -_loglik(*np.exp(p), t, failed), x0=[0.0, np.log(
        np.mean(t))], method="Nelder-Mead", options={"xatol": 1e-10, "fatol": 1e-12,
                                                      "maxiter": 20000})
    k, lam = np.exp(res.x)
    h = np.array([k, lam]) * 1e-4
    hess = np.empty((2, 2))
    p0 = np.array([k, lam])
    for i in range(2):
        for j in range(2):
            def f(di, dj, i=i, j=j):
                p = p0.copy()
                p[i] += di * h[i]
                p[j] += dj * h[j]
                return _loglik(*p, t, failed)
            hess[i, j] = (f(1, 1) - f(1, -1) - f(-1, 1) + f(-1, -1)) / (4 * h[i] * h[j])
    se = np.sqrt(np.diag(np.linalg.inv(-hess)))
    ci = [(v * np.exp(-Z95 * s / v), v * np.exp(Z95 * s / v)) for v, s in zip(p0, se)]
    return k, lam, ci[0], ci[1]


def _independent_b10_ci(t, failed, k, lam):
    """Fisher-matrix bounds on B10 without the delta method: the likelihood written in
    (shape, ln B10) instead of (shape, scale), its observed information at the MLE by
    finite differences, and the Wald interval of ln B10 from its inverse."""
    c = -np.log(0.9)

    def loglik(p):  # p = (shape, ln B10); scale = B10 / c ** (1 / shape)
        return _loglik(p[0], np.exp(p[1]) / c ** (1 / p[0]), t, failed)

    b10 = lam * c ** (1 / k)
    p0, h = np.array([k, np.log(b10)]), np.array([k * 1e-4, 1e-4])
    hess = np.empty((2, 2))
    for i in range(2):
        for j in range(2):
            def f(di, dj, i=i, j=j):
                p = p0.copy()
                p[i] += di * h[i]
                p[j] += dj * h[j]
                return loglik(p)
            hess[i, j] = (f(1, 1) - f(1, -1) - f(-1, 1) + f(-1, -1)) / (4 * h[i] * h[j])
    se = np.sqrt(np.linalg.inv(-hess)[1, 1])
    return b10 * np.exp(-Z95 * se), b10 * np.exp(Z95 * se)


def test_b10_bounds_match_fisher_bounds_of_the_likelihood_in_b10():
    life = stats.weibull_min.rvs(1.8, scale=120.0, size=60, random_state=np.random.default_rng(11))
    failed = life <= 90.0
    t = np.where(failed, life, 90.0)
    fit = fit_weibull(t, failed)
    k, lam, k_ci, lam_ci = _independent_fit(t, failed)
    low, high = _independent_b10_ci(t, failed, k, lam)
    assert fit.life_ci(0.1) == pytest.approx((low, high), rel=1e-4)
    assert low < fit.life(0.1) < high
    # The covariance of shape and scale matters: without it the bounds are off by far
    # more than the tolerance above.
    u, (v_kk, _), (_, v_ll) = np.log(-np.log(0.9)), *fit.covariance
    se_without = np.sqrt((u / k ** 2) ** 2 * v_kk + v_ll / lam ** 2)
    assert abs(np.log(high / fit.life(0.1)) / Z95 - se_without) > 0.01 * se_without
    # Other confidence levels scale the half-width of ln B10 by the normal quantile.
    fit90 = fit_weibull(t, failed, confidence=0.90)
    low95, high95 = fit.life_ci(0.1)
    half90 = np.log(fit90.life_ci(0.1)[1] / fit90.life(0.1))
    assert half90 == pytest.approx(np.log(high95 / low95) / 2 * stats.norm.ppf(0.95) / Z95,
                                   rel=1e-9)


def test_plotting_positions_by_hand():
    # Six units in time order; at 30 days the failure comes before the suspension.
    #   days  F/S  units from here on  adjusted rank             median rank (r - 0.3)/6.4
    #   10    F    6                   0 + (7 - 0)/(1 + 6) = 1     0.7/6.4 = 0.109375
    #   15    S    5
    #   30    F    4                   1 + (7 - 1)/(1 + 4) = 2.2   1.9/6.4 = 0.296875
    #   30    S    3
    #   45    F    2                 2.2 + (7 - 2.2)/(1 + 2) = 3.8 3.5/6.4 = 0.546875
    #   60    S    1
    got = plotting_positions([30, 60, 10, 45, 30, 15], [False, False, True, True, True, False])
    assert np.array(got) == pytest.approx(np.array([
        (10.0, 1.0, 0.109375), (30.0, 2.2, 0.296875), (45.0, 3.8, 0.546875)]), rel=1e-12)
    # Counts are repeated units; without suspensions the ranks are 1..n.
    weighted = plotting_positions([30, 60, 10, 45, 15], [True, False, True, True, False],
                                  [2, 1, 1, 1, 1])
    assert np.array(weighted) == pytest.approx(np.array(plotting_positions(
        [30, 30, 60, 10, 45, 15], [True, True, False, True, True, False])), rel=1e-12)
    assert [r for _, r, _ in plotting_positions([3, 1, 2], [True] * 3)] == [1.0, 2.0, 3.0]


def test_censored_fit_matches_an_independent_mle_and_fisher_bounds():
    life = stats.weibull_min.rvs(2.5, scale=45.0, size=80, random_state=np.random.default_rng(4))
    failed = life <= 40.0
    t = np.where(failed, life, 40.0)
    fit = fit_weibull(t, failed)
    k, lam, k_ci, lam_ci = _independent_fit(t, failed)
    assert fit.status == "OK" and (fit.units, fit.failures) == (80, failed.sum())
    assert fit.shape == pytest.approx(k, rel=1e-6)
    assert fit.scale == pytest.approx(lam, rel=1e-6)
    assert fit.shape_ci == pytest.approx(k_ci, rel=1e-4)
    assert fit.scale_ci == pytest.approx(lam_ci, rel=1e-4)
    assert fit.life(0.1) == pytest.approx(lam * (-np.log(0.9)) ** (1 / k), rel=1e-6)
    assert fit.mean_life == pytest.approx(stats.weibull_min.mean(k, scale=lam), rel=1e-6)


def test_uncensored_fit_matches_scipy():
    life = stats.weibull_min.rvs(1.3, scale=300.0, size=50, random_state=np.random.default_rng(9))
    c, _, scale = stats.weibull_min.fit(life, floc=0)
    fit = fit_weibull(life, [True] * len(life))
    assert fit.shape == pytest.approx(c, rel=1e-4)
    assert fit.scale == pytest.approx(scale, rel=1e-4)


def test_weights_are_repeated_units():
    t, failed, n = [10, 20, 20, 35, 50], [True, True, False, True, False], [1, 3, 2, 1, 4]
    weighted = fit_weibull(t, failed, n)
    expanded = fit_weibull(np.repeat(t, n), np.repeat(failed, n))
    assert (weighted.units, weighted.failures) == (11, 5)
    assert weighted.shape == pytest.approx(expanded.shape, rel=1e-9)
    assert weighted.scale == pytest.approx(expanded.scale, rel=1e-9)
    assert weighted.shape_ci == pytest.approx(expanded.shape_ci, rel=1e-9)


def test_fits_that_cannot_be_made_say_why():
    assert fit_weibull([5, 30, 30], [True, False, False]).status == "TOO_FEW_FAILURES"
    # every failure at the longest time: the likelihood grows without bound in the shape
    assert fit_weibull([30, 30, 10], [True, True, False]).status == "NO_MLE"
    with pytest.raises(RedlineError, match="same length"):
        fit_weibull([1, 2], [True])


# --- the Spark transforms on a hand-made fleet ------------------------------------------

def _build(vin, built, firmware, pump_lot):
    return {"event_id": f"b-{vin}", "event_time": datetime(built.year, built.month, built.day, 20),
            "schema_version": 1, "vin": vin, "model": "Volta S", "plant": "PLT-A",
            "line": "L1", "build_date": built, "firmware_version": firmware,
            "components": [{"component": "coolant_pump", "supplier": "ThermaFlow",
                            "lot": pump_lot},
                           {"component": "drive_motor", "supplier": "Magnetix", "lot": "M1"}]}


def _claim(vin, component, failed_on):
    return {"event_id": f"c-{vin}-{failed_on}", "schema_version": 1,
            "event_time": datetime(failed_on.year, failed_on.month, failed_on.day, 12),
            "claim_id": f"WC-{vin}-{failed_on}", "vin": vin, "component": component,
            "failure_date": failed_on, "mileage_km": 100.0, "cost_eur": 500.0,
            "description": None}


def _dtc(i, vin, firmware, code, day):
    return {"event_id": f"d{i}", "event_time": datetime(2026, day[0], day[1], 9),
            "schema_version": 1, "vin": vin, "dtc_code": code, "severity": "HIGH",
            "ecu": "BECM", "firmware_version": firmware, "odometer_km": 10.0}


@pytest.fixture(scope="module")
def fleet(spark):
    builds = [
        _build("V1", date(2026, 1, 5), "FW-A", "P1"),
        _build("V2", date(2026, 1, 10), "FW-A", "P1"),
        _build("V3", date(2026, 1, 20), "FW-B", "P2"),
        _build("V4", date(2026, 2, 3), "FW-B", "P2"),
        _build("V5", date(2026, 3, 12), "FW-B", "P2"),   # built after the observation end
        _build("V6", date(2026, 3, 10), "FW-B", "P2"),   # built on the last day
        _build("V7", date(2026, 2, 1), "FW-D", "P2"),
    ]
    claims = [
        _claim("V1", "coolant_pump", date(2026, 1, 25)),   # 20 days, MIS 0
        _claim("V1", "coolant_pump", date(2026, 2, 20)),   # a repeat: MIS 1, not a new life
        _claim("V2", "coolant_pump", date(2026, 2, 19)),   # 40 days, MIS 1
        _claim("V4", "coolant_pump", date(2026, 2, 3)),    # on the build day, MIS 0
        _claim("V4", "drive_motor", date(2026, 2, 10)),    # 7 days, MIS 0
        _claim("V3", "coolant_pump", date(2026, 3, 12)),   # after the observation end
        _claim("V5", "coolant_pump", date(2026, 3, 15)),   # vehicle not built by the end
    ]
    dtcs = [
        _dtc(1, "V1", "FW-A", "P0A1F", (2, 1)),
        _dtc(2, "V1", "FW-A", "P0A1F", (3, 11)),           # after the observation end
        _dtc(3, "V2", "FW-A", "U0100", (2, 2)),
        _dtc(4, "V3", "FW-B", "P0A1F", (2, 3)),
        _dtc(5, "V4", "FW-C", "P0A1F", (3, 1)),            # a firmware no build has
    ]
    return (spark.createDataFrame(builds, latest("vehicle_builds").struct),
            spark.createDataFrame(claims, latest("warranty_claims").struct),
            spark.createDataFrame(dtcs, latest("vehicle_dtc").struct))


def test_unit_lives_by_hand(fleet):
    builds, claims, _ = fleet
    got = {(r.vin, r.component): (r.days, r.failed)
           for r in unit_lives(builds, claims, END).collect()}
    pump, motor = "coolant_pump", "drive_motor"
    assert got == {
        ("V1", pump): (20, True), ("V2", pump): (40, True), ("V3", pump): (49, False),
        ("V4", pump): (0, True), ("V6", pump): (0, False), ("V7", pump): (37, False),
        ("V1", motor): (64, False), ("V2", motor): (59, False), ("V3", motor): (49, False),
        ("V4", motor): (7, True), ("V6", motor): (0, False), ("V7", motor): (37, False),
    }


def test_weibull_fits_per_component_and_lot(fleet):
    builds, claims, _ = fleet
    rows = {(r.level, r.component, r.lot): r
            for r in weibull_fits(builds, claims, END).collect()}
    assert set(rows) == {("component", "coolant_pump", None), ("component", "drive_motor", None),
                         ("lot", "coolant_pump", "P1"), ("lot", "coolant_pump", "P2"),
                         ("lot", "drive_motor", "M1")}
    pump = rows["component", "coolant_pump", None]
    assert (pump.units, pump.failures, pump.status, pump.observation_end) == (6, 3, "OK", END)
    # A failure on the build day counts as half a day in service.
    k, lam, k_ci, lam_ci = _independent_fit([20, 40, 49, 0.5, 37],
                                            [True, True, False, True, False])
    assert pump.shape == pytest.approx(k, rel=1e-6)
    assert pump.scale_days == pytest.approx(lam, rel=1e-6)
    assert pump.b10_days == pytest.approx(lam * (-np.log(0.9)) ** (1 / k), rel=1e-6)
    assert (pump.shape_ci_low, pump.shape_ci_high) == pytest.approx(k_ci, rel=1e-4)
    assert (pump.scale_ci_low, pump.scale_ci_high) == pytest.approx(lam_ci, rel=1e-4)
    assert (pump.b10_ci_low_days, pump.b10_ci_high_days) == pytest.approx(
        _independent_b10_ci([20, 40, 49, 0.5, 37], [True, True, False, True, False], k, lam),
        rel=1e-4)
    assert pump.ci_method == CI_METHOD
    p1 = rows["lot", "coolant_pump", "P1"]
    k1, lam1, _, _ = _independent_fit([20, 40], [True, True])
    assert (p1.supplier, p1.units, p1.failures) == ("ThermaFlow", 2, 2)
    assert (p1.shape, p1.scale_days) == pytest.approx((k1, lam1), rel=1e-6)
    for key in [("component", "drive_motor", None), ("lot", "coolant_pump", "P2"),
                ("lot", "drive_motor", "M1")]:
        r = rows[key]
        assert (r.failures, r.status, r.shape, r.b10_days) == (1, "TOO_FEW_FAILURES", None, None)
        assert (r.b10_ci_low_days, r.b10_ci_high_days) == (None, None)


def test_weibull_plot_per_component_and_lot(spark, fleet):
    builds, claims, _ = fleet
    # Coolant pump, all lots: V4 failed on its build day (0.5 days), V1 at 20, V2 at 40
    # days; V7 (37) and V3 (49) are suspended, V6 (built on the last day, 0 days) is left
    # out as in the fit: n = 5.
    #   0.5 F  5 units on  rank 0 + 6/6 = 1        F = 0.7/5.4
    #   20  F  4           rank 1 + 5/5 = 2        F = 1.7/5.4
    #   37  S  3
    #   40  F  2           rank 2 + 4/3 = 10/3     F = (10/3 - 0.3)/5.4
    # Lot P1 (V1, V2: both failed, n = 2): ranks 1, 2. Lot P2 and the drive motor have one
    # failure each, too few to fit: their points have no fitted line. Drive motor: V4 at 7
    # days first of 5 (V6 left out): rank 1.
    k, lam, _, _ = _independent_fit([20, 40, 49, 0.5, 37], [True, True, False, True, False])
    k1, lam1, _, _ = _independent_fit([20, 40], [True, True])

    def point(level, component, supplier, lot, days, rank, n, fit):
        f = (rank - 0.3) / (n + 0.4)
        line = None if fit is None else float(fit[0] * (np.log(days) - np.log(fit[1])))
        return (level, component, supplier, lot, END, float(days), float(rank), f,
                float(np.log(days)), float(np.log(-np.log(1 - f))), line)

    pump = ("component", "coolant_pump", None, None)
    p1 = ("lot", "coolant_pump", "ThermaFlow", "P1")
    p2 = ("lot", "coolant_pump", "ThermaFlow", "P2")
    expected = spark.createDataFrame([
        point(*pump, 0.5, 1, 5, (k, lam)), point(*pump, 20, 2, 5, (k, lam)),
        point(*pump, 40, 10 / 3, 5, (k, lam)),
        point(*p1, 20, 1, 2, (k1, lam1)), point(*p1, 40, 2, 2, (k1, lam1)),
        point(*p2, 0.5, 1, 3, None),
        point("component", "drive_motor", None, None, 7, 1, 5, None),
        point("lot", "drive_motor", "Magnetix", "M1", 7, 1, 5, None),
    ], WEIBULL_PLOT)
    assertDataFrameEqual(weibull_plot(builds, claims, END), expected, rtol=1e-6)


def test_dtc_rates_by_hand(spark, fleet):
    builds, _, dtc = fleet
    # Firmware periods (build record, then DTC reports): V4 runs FW-B from its build on
    # 02-03 and FW-C from its DTC on 03-01. Days in service to the end, per firmware:
    # FW-A V1 (64 days) V2 (59); FW-B V3 (49) V4 (02-03..03-01: 26); FW-C V4 (03-01..03-10:
    # 9); FW-D V7 (37). V6 is built on the last day (0 days), V5 after it.
    expected = spark.createDataFrame([
        ("FW-A", "P0A1F", END, 1, 2, 123, 500.0, 1000 / 123),
        ("FW-A", "U0100", END, 1, 2, 123, 500.0, 1000 / 123),
        ("FW-A", None, END, 2, 2, 123, 1000.0, 2000 / 123),
        ("FW-B", "P0A1F", END, 1, 2, 75, 500.0, 1000 / 75),
        ("FW-B", None, END, 1, 2, 75, 500.0, 1000 / 75),
        ("FW-C", "P0A1F", END, 1, 1, 9, 1000.0, 1000 / 9),
        ("FW-C", None, END, 1, 1, 9, 1000.0, 1000 / 9),
        ("FW-D", None, END, 0, 1, 37, 0.0, 0.0),
    ], DTC_RATES)
    assertDataFrameEqual(dtc_rates(builds, dtc, END), expected)


def test_dtc_rates_attribute_each_dtc_to_the_firmware_at_its_time(spark):
    # W1 is built on FW-1 on 01-01 and updated to FW-2 on 01-21 (an over-the-air update
    # known to the firmware dimension, e.g. from an update record): 20 days on FW-1, 19 on
    # FW-2 to the end (02-09). W2 stays on FW-1 all along: 39 days. A DTC on 01-10 counts
    # under FW-1, two on 01-25 and 02-05 under FW-2, whatever firmware they reported.
    end = date(2026, 2, 9)
    builds = spark.createDataFrame(
        [_build("W1", date(2026, 1, 1), "FW-1", "P1"), _build("W2", date(2026, 1, 1), "FW-1",
                                                               "P1")],
        latest("vehicle_builds").struct)
    dtc = spark.createDataFrame([
        _dtc(1, "W1", "FW-1", "P0A1F", (1, 10)),
        _dtc(2, "W1", "FW-1", "P0A1F", (1, 25)),   # reported stale firmware
        _dtc(3, "W1", "FW-2", "U0100", (2, 5)),
        _dtc(4, "W2", "FW-1", "U0100", (2, 6)),
    ], latest("vehicle_dtc").struct)
    periods = spark.createDataFrame([
        ("W1", "FW-1", datetime(2026, 1, 1, 20), datetime(2026, 1, 21, 3),
         datetime(2026, 1, 10, 9), 2, "build"),
        ("W1", "FW-2", datetime(2026, 1, 21, 3), None, datetime(2026, 2, 5, 9), 2, "ota"),
        ("W2", "FW-1", datetime(2026, 1, 1, 20), None, datetime(2026, 2, 6, 9), 2, "build"),
    ], "vin string, firmware_version string, valid_from timestamp, valid_to timestamp, "
       "last_seen timestamp, observations long, source string")
    got = {(r.firmware_version, r.dtc_code): (r.dtc_events, r.vehicles, r.vehicle_days,
                                              r.dtc_per_1000_vehicles)
           for r in dtc_rates(builds, dtc, end, periods).collect()}
    assert got == {
        ("FW-1", "P0A1F"): (1, 2, 59, 500.0),
        ("FW-1", "U0100"): (1, 2, 59, 500.0),
        ("FW-1", None): (2, 2, 59, 1000.0),    # W1 20 days + W2 39 days
        ("FW-2", "P0A1F"): (1, 1, 19, 1000.0),
        ("FW-2", "U0100"): (1, 1, 19, 1000.0),
        ("FW-2", None): (2, 1, 19, 2000.0),
    }


def test_warranty_triangle_by_hand(spark, fleet):
    builds, claims, _ = fleet
    jan, feb, mar = date(2026, 1, 1), date(2026, 2, 1), date(2026, 3, 1)
    # At risk: January builds V1, V2 reached month 2 by the end, V3 month 1; February
    # builds V4, V7 month 1; V6 (March 10) month 0.
    expected = spark.createDataFrame([
        (jan, 0, END, 3, 1, 1000 / 3, 1000 / 3),
        (jan, 1, END, 3, 2, 2000 / 3, 1000.0),
        (jan, 2, END, 2, 0, 0.0, 1000.0),
        (feb, 0, END, 2, 2, 1000.0, 1000.0),
        (feb, 1, END, 2, 0, 0.0, 1000.0),
        (mar, 0, END, 1, 0, 0.0, 0.0),
    ], WARRANTY_TRIANGLE)
    assertDataFrameEqual(warranty_triangle(builds, claims, END), expected)
