from datetime import date, datetime

from pyspark.testing import assertDataFrameEqual

from redline.jobs.defect_pareto import defect_pareto
from redline.schemas.payloads import latest
from redline.schemas.tables import DEFECT_PARETO


def _result(i, unit, station, attempt, defects):
    return {
        "event_id": f"r{i}", "event_time": datetime(2026, 1, 5, 8, i), "schema_version": 1,
        "unit_serial": unit, "plant": "PLT-A", "line": "L1", "station": station,
        "operation": "op", "shift": "A", "attempt": attempt,
        "result": "FAIL" if defects else "PASS", "measurements": [],
        "defect_codes": defects, "cycle_time_s": 60.0,
    }


def _build(vin, battery_supplier, battery_lot):
    return {"event_id": f"b-{vin}", "event_time": datetime(2026, 1, 5, 20), "schema_version": 1,
            "vin": vin, "model": "Volta S", "plant": "PLT-A", "line": "L1",
            "build_date": date(2026, 1, 5), "firmware_version": "FW-3.1.4",
            "components": [
                {"component": "battery_module", "supplier": battery_supplier,
                 "lot": battery_lot},
                {"component": "drive_motor", "supplier": "Magnetix", "lot": "M1"}]}


def test_defect_paretos_by_hand(spark):
    results = spark.createDataFrame([
        _result(1, "U1", "S030", 1, ["D-CELL"]),
        _result(2, "U1", "S030", 2, []),
        _result(3, "U2", "S030", 1, []),
        _result(4, "U3", "S030", 1, ["D-CELL"]),
        _result(5, "U3", "S030", 2, ["D-CELL"]),         # a retest that fails again counts
        _result(6, "U4", "S030", 1, ["D-CELL", "D-SCRATCH"]),
        _result(7, "U1", "S010", 1, ["D-TORQUE"]),
        _result(8, "U2", "S010", 1, []),
        _result(9, "U5", "S010", 1, ["D-TORQUE"]),       # no build record: no lot known
    ], latest("station_results").struct)
    builds = spark.createDataFrame([
        _build("U1", "VoltCell", "L-A"), _build("U2", "Northpole", "L-B"),
        _build("U3", "Northpole", "L-B"), _build("U4", "VoltCell", "L-A"),
    ], latest("vehicle_builds").struct)
    bm, dm = "battery_module", "drive_motor"
    expected = spark.createDataFrame([
        # 7 defects: D-CELL 4, D-TORQUE 2, D-SCRATCH 1
        ("defect_code", None, None, "D-CELL", None, 4, None, None, 4 / 7, 4 / 7, 1),
        ("defect_code", None, None, "D-TORQUE", None, 2, None, None, 2 / 7, 6 / 7, 2),
        ("defect_code", None, None, "D-SCRATCH", None, 1, None, None, 1 / 7, 1.0, 3),
        # S030 tested U1-U4, S010 tested U1, U2, U5
        ("station", None, None, "S030", None, 5, 4, 5 / 4, 5 / 7, 5 / 7, 1),
        ("station", None, None, "S010", None, 2, 3, 2 / 3, 2 / 7, 1.0, 2),
        # per part and station: L-A is in U1 (1 defect) and U4 (2), L-B in U2 and U3 (2)
        ("supplier_lot", "S030", bm, "L-A", "VoltCell", 3, 2, 1.5, 3 / 5, 3 / 5, 1),
        ("supplier_lot", "S030", bm, "L-B", "Northpole", 2, 2, 1.0, 2 / 5, 1.0, 2),
        ("supplier_lot", "S030", dm, "M1", "Magnetix", 5, 4, 5 / 4, 1.0, 1.0, 1),
        ("supplier_lot", "S010", bm, "L-A", "VoltCell", 1, 1, 1.0, 1.0, 1.0, 1),
        ("supplier_lot", "S010", dm, "M1", "Magnetix", 1, 2, 0.5, 1.0, 1.0, 1),
    ], DEFECT_PARETO)
    assertDataFrameEqual(defect_pareto(results, builds), expected)


def test_ties_rank_by_category_name(spark):
    results = spark.createDataFrame([
        _result(1, "U1", "S010", 1, ["D-B"]), _result(2, "U2", "S010", 1, ["D-A"]),
    ], latest("station_results").struct)
    builds = spark.createDataFrame([], latest("vehicle_builds").struct)
    codes = (defect_pareto(results, builds).where("pareto = 'defect_code'")
             .orderBy("rank").collect())
    assert [(r.category, r.rank, r.share, r.cumulative_share) for r in codes] == [
        ("D-A", 1, 0.5, 0.5), ("D-B", 2, 0.5, 1.0)]
