"""Manufacturing KPIs checked against values worked out by hand (see the comments)."""

from datetime import date, datetime

import pytest

from redline.jobs.manufacturing_kpis import line_kpis, station_kpis
from redline.schemas.payloads import latest

_ids = iter(range(10_000))


def _r(unit, station, attempt, result, defects=(), chars=("c1",), shift="A",
       at=datetime(2026, 1, 5, 8)):
    return {
        "event_id": f"e{next(_ids)}", "event_time": at, "schema_version": 1,
        "unit_serial": unit, "plant": "PLT-A", "line": "L1", "station": station,
        "operation": "op", "shift": shift, "attempt": attempt, "result": result,
        "measurements": [{"characteristic": c, "value": 1.0, "unit": "u", "lsl": 0.0,
                          "usl": 2.0, "target": 1.0} for c in chars],
        "defect_codes": list(defects), "cycle_time_s": 60.0,
    }


T = ("torque", "angle")  # S010 measures two characteristics, S020 one
ROWS = [
    _r("U1", "S010", 1, "PASS", chars=T), _r("U1", "S020", 1, "PASS"),
    _r("U2", "S010", 1, "FAIL", ["D-T"], chars=T), _r("U2", "S010", 2, "PASS", chars=T),
    _r("U2", "S020", 1, "PASS"),
    _r("U3", "S010", 1, "FAIL", ["D-T", "D-X"], chars=T),
    _r("U3", "S010", 2, "FAIL", ["D-T"], chars=T), _r("U3", "S010", 3, "FAIL", chars=T),
    _r("U3", "S020", 1, "FAIL", ["D-L"]), _r("U3", "S020", 2, "PASS"),
    _r("U4", "S010", 1, "PASS", chars=T), _r("U4", "S020", 1, "PASS", chars=()),
    _r("U5", "S010", 1, "PASS", chars=T, shift="B"),
    _r("U5", "S020", 1, "FAIL", ["D-L"], shift="B"),
    _r("U5", "S020", 2, "FAIL", ["D-L"], shift="B"),
    # Night shift across midnight: counted on the day of attempt 1.
    _r("U6", "S010", 1, "FAIL", ["D-T"], chars=T, shift="C", at=datetime(2026, 1, 5, 23, 30)),
    _r("U6", "S010", 2, "PASS", chars=T, shift="C", at=datetime(2026, 1, 6, 0, 10)),
    _r("U6", "S020", 1, "PASS", shift="C", at=datetime(2026, 1, 6, 0, 20)),
]
D5, D6 = date(2026, 1, 5), date(2026, 1, 6)


@pytest.fixture(scope="module")
def results(spark):
    return spark.createDataFrame(ROWS, latest("station_results").struct)


def _by_key(df, key):
    return {tuple(r[k] for k in key): r.asDict() for r in df.collect()}


def test_station_kpis_by_hand(results):
    got = _by_key(station_kpis(results), ("day", "station", "shift"))
    # (units, first pass, reworked, scrapped, defects, opportunities, characteristics)
    expected = {
        # U1..U4: U1, U4 pass first; U2, U3 reworked; U3 never passes (3 fails);
        # defects D-T + D-T, D-X = 3 on attempt 1; 4 units x 2 characteristics.
        (D5, "S010", "A"): (4, 2, 2, 1, 3, 8, 2),
        # U3 fails first then passes; U4 measures nothing: still 1 opportunity.
        (D5, "S020", "A"): (4, 3, 1, 0, 1, 4, 1),
        (D5, "S010", "B"): (1, 1, 0, 0, 0, 2, 2),
        (D5, "S020", "B"): (1, 0, 1, 1, 1, 1, 1),
        (D5, "S010", "C"): (1, 0, 1, 0, 1, 2, 2),
        (D6, "S020", "C"): (1, 1, 0, 0, 0, 1, 1),
    }
    assert set(got) == set(expected)
    for key, (units, fp, rw, sc, d, opp, chars) in expected.items():
        row = got[key]
        assert (row["units"], row["first_pass_units"], row["reworked_units"],
                row["scrapped_units"], row["defects"], row["opportunities"],
                row["characteristics"]) == (units, fp, rw, sc, d, opp, chars), key
        assert row["fpy"] == pytest.approx(fp / units)
        assert row["rework_rate"] == pytest.approx(rw / units)
        assert row["scrap_rate"] == pytest.approx(sc / units)
        assert row["dpmo"] == pytest.approx(d / opp * 1e6)
    assert got[(D5, "S010", "A")]["dpmo"] == pytest.approx(375_000.0)


def test_line_kpis_and_rolled_throughput_yield_by_hand(results):
    got = _by_key(line_kpis(results), ("day", "shift"))
    assert set(got) == {(D5, "A"), (D5, "B"), (D5, "C")}  # U6 starts on the 5th
    a = got[(D5, "A")]
    # U1, U4 pass both stations first time; U2, U3 reworked; U3 scrapped at S010;
    # defects 3 + 1 over 8 + 4 opportunities; RTY = FPY(S010) x FPY(S020) = 0.5 x 0.75.
    assert (a["units"], a["first_pass_units"], a["reworked_units"], a["scrapped_units"],
            a["defects"], a["opportunities"], a["stations"]) == (4, 2, 2, 1, 4, 12, 2)
    assert a["fpy"] == pytest.approx(0.5)
    assert a["rty"] == pytest.approx(0.375)
    assert a["dpmo"] == pytest.approx(4 / 12 * 1e6)
    assert a["rework_rate"] == pytest.approx(0.5) and a["scrap_rate"] == pytest.approx(0.25)
    b = got[(D5, "B")]
    # FPY(S010) = 1, FPY(S020) = 0: the product is 0.
    assert (b["units"], b["first_pass_units"], b["scrapped_units"], b["rty"]) == (1, 0, 1, 0.0)
    assert b["dpmo"] == pytest.approx(1 / 3 * 1e6)
    c = got[(D5, "C")]
    assert (c["units"], c["reworked_units"], c["scrapped_units"], c["stations"],
            c["rty"]) == (1, 1, 0, 1, 0.0)


def test_kpis_of_no_results_are_empty(spark):
    empty = spark.createDataFrame([], latest("station_results").struct)
    assert station_kpis(empty).count() == 0
    assert line_kpis(empty).count() == 0
