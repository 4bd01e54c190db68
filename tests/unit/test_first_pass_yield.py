from datetime import date, datetime

from pyspark.testing import assertDataFrameEqual

from redline.jobs.first_pass_yield import first_pass_yield
from redline.schemas.payloads import latest
from redline.schemas.tables import FIRST_PASS_YIELD


def _result(spark_row_id, unit, station, attempt, result, day=5, hour=8, line="L1"):
    return {
        "event_id": f"e{spark_row_id}", "event_time": datetime(2026, 1, day, hour),
        "schema_version": 1, "unit_serial": unit, "plant": "PLT-A", "line": line,
        "station": station, "operation": "op", "shift": "A", "attempt": attempt,
        "result": result, "measurements": [], "defect_codes": [], "cycle_time_s": 60.0,
    }


def test_first_pass_yield_by_hand(spark):
    rows = [
        _result(1, "U1", "S010", 1, "PASS"),
        _result(2, "U2", "S010", 1, "FAIL"),
        _result(3, "U2", "S010", 2, "PASS"),            # rework pass does not count
        _result(4, "U3", "S010", 1, "PASS"),
        _result(5, "U4", "S010", 1, "FAIL", day=6),     # next day
        _result(6, "U4", "S010", 2, "FAIL", day=7),
        _result(7, "U1", "S020", 1, "PASS"),
        _result(8, "U5", "S010", 1, "PASS", line="L2"),
    ]
    df = spark.createDataFrame(rows, latest("station_results").struct)
    expected = spark.createDataFrame([
        (date(2026, 1, 5), "PLT-A", "L1", "S010", 3, 2, 2 / 3),
        (date(2026, 1, 5), "PLT-A", "L1", "S020", 1, 1, 1.0),
        (date(2026, 1, 5), "PLT-A", "L2", "S010", 1, 1, 1.0),
        (date(2026, 1, 6), "PLT-A", "L1", "S010", 1, 0, 0.0),
    ], FIRST_PASS_YIELD)
    assertDataFrameEqual(first_pass_yield(df), expected)
