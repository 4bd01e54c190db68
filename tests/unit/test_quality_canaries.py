"""Canaries: data the gate must refuse, each named with its table, column, expectation,
count and sample values; and what it must let through."""

import json
from datetime import UTC, datetime, timedelta
from xml.etree import ElementTree

import pytest

from redline import catalog
from redline import lake as lake_io
from redline.errors import RedlineError
from redline.quality import suites
from redline.quality.gate import run_gate

TELEMETRY = catalog.silver("vehicle_telemetry")


def _telemetry(spark, n=100, arrived=None, **columns):
    """``n`` good telemetry rows; ``columns`` maps a column to a function of the row
    number giving its value."""
    arrived = arrived or datetime.now(UTC)
    rows = []
    for i in range(n):
        row = {"event_id": f"e{i}", "event_time": datetime(2026, 1, 5, 8) + timedelta(minutes=i),
               "schema_version": 1, "vin": f"VIN{i % 7:014d}", "odometer_km": 1000.0 + i,
               "speed_kph": 50.0 + i % 30, "battery_soc_pct": 80.0, "battery_temp_c": 25.0,
               "motor_temp_c": 60.0, "coolant_temp_c": 40.0, "ambient_temp_c": 15.0,
               "tyre_pressure_kpa": None, "hv_battery_voltage_v": 400.0,
               "kafka_topic": "t", "kafka_partition": 0, "kafka_offset": i,
               "kafka_timestamp": arrived}
        for column, value in columns.items():
            row[column] = value(i)
        rows.append(row)
    schema = TELEMETRY.schema()
    return spark.createDataFrame([tuple(r[f.name] for f in schema.fields) for r in rows],
                                 schema)


def _gate(spark, lake, tmp_path, **kwargs):
    return run_gate(spark, lake, tmp_path / "reports", tables=[TELEMETRY.qualified_name],
                    progress=lambda _: None, **kwargs)


def _errors(gate):
    return {(f.table, f.expectation, f.column): f.detail for f in gate.failures}


def test_clean_data_passes_and_every_check_is_recorded(spark, lake, tmp_path):
    lake_io.overwrite(_telemetry(spark), lake, TELEMETRY)
    gate = _gate(spark, lake, tmp_path)
    assert gate.exit_code == 0, gate.summary()
    assert gate.versions == {"silver.vehicle_telemetry": 0}
    history = catalog.read(spark, lake, catalog.QUALITY_RESULTS)
    # One row per expectation of the run, with the version validated.
    assert history.count() == gate.evaluated == len(gate.outcomes) > 10
    assert {r.delta_version for r in history.select("delta_version").collect()} == {0}
    assert history.select("run_id").distinct().count() == 1
    junit = ElementTree.fromstring(gate.junit_xml())
    assert junit.get("failures") == "0"
    assert len(junit.findall("./testsuite/testcase")) == gate.evaluated
    assert json.loads(json.dumps(gate.as_json(), default=str))["exit_code"] == 0


def test_an_empty_table_fails(spark, lake, tmp_path):
    lake_io.overwrite(_telemetry(spark, n=0), lake, TELEMETRY)
    errors = _errors(_gate(spark, lake, tmp_path))
    assert ("silver.vehicle_telemetry", "expect_table_row_count_to_be_between", "") in errors


def test_an_all_null_column_fails(spark, lake, tmp_path):
    lake_io.overwrite(_telemetry(spark, speed_kph=lambda i: None), lake, TELEMETRY)
    gate = _gate(spark, lake, tmp_path)
    assert gate.exit_code == 1
    detail = _errors(gate)[("silver.vehicle_telemetry",
                            "expect_column_proportion_of_non_null_values_to_be_between",
                            "speed_kph")]
    assert "silver.vehicle_telemetry column speed_kph" in detail and "observed 0.0" in detail


@pytest.mark.parametrize("value", ["", "   "])
def test_a_blank_key_or_category_fails_with_its_rows(spark, lake, tmp_path, value):
    lake_io.overwrite(_telemetry(spark, vin=lambda i: value if i < 3 else f"VIN{i}"),
                      lake, TELEMETRY)
    gate = _gate(spark, lake, tmp_path)
    assert gate.exit_code == 1
    detail = _errors(gate)[("silver.vehicle_telemetry",
                            "expect_column_values_to_not_match_regex", "vin")]
    assert "3 unexpected row(s)" in detail and repr(value) in detail


def test_stale_data_fails_its_freshness_limit(spark, lake, tmp_path):
    two_days_ago = datetime.now(UTC) - timedelta(days=2)
    lake_io.overwrite(_telemetry(spark, arrived=two_days_ago), lake, TELEMETRY)
    assert _gate(spark, lake, tmp_path, freshness={TELEMETRY.qualified_name: 72}).exit_code == 0
    gate = _gate(spark, lake, tmp_path, freshness={TELEMETRY.qualified_name: 24})
    assert gate.exit_code == 1
    detail = _errors(gate)[("silver.vehicle_telemetry", "expect_column_min_to_be_between",
                            suites.AGE_HOURS)]
    assert "freshness 24 h of kafka_timestamp" in detail and "observed 4" in detail


def test_duplicated_keys_fail_with_the_repeated_values(spark, lake, tmp_path):
    lake_io.overwrite(_telemetry(spark, event_id=lambda i: f"e{min(i, 97)}"), lake, TELEMETRY)
    detail = _errors(_gate(spark, lake, tmp_path))[
        ("silver.vehicle_telemetry", "expect_column_values_to_be_unique", "event_id")]
    assert "3 unexpected row(s)" in detail and "e97" in detail


def test_bad_rows_over_the_mostly_threshold_fail_and_under_it_pass(spark, lake, tmp_path):
    """battery_temp_c's plausible range tolerates 5% of rows outside it (mostly 0.95)."""
    assert suites.RANGES["silver.vehicle_telemetry"]["battery_temp_c"][2] == 0.95
    lake_io.overwrite(_telemetry(spark, battery_temp_c=lambda i: 900.0 if i < 4 else 25.0),
                      lake, TELEMETRY)
    assert _gate(spark, lake, tmp_path).exit_code == 0
    lake_io.overwrite(_telemetry(spark, battery_temp_c=lambda i: 900.0 if i < 6 else 25.0),
                      lake, TELEMETRY)
    gate = _gate(spark, lake, tmp_path)
    assert gate.exit_code == 1
    detail = _errors(gate)[("silver.vehicle_telemetry", "expect_column_values_to_be_between",
                            "battery_temp_c")]
    assert "6 unexpected row(s) (6.00%, over the 5% allowed by mostly=0.95)" in detail
    assert "900.0" in detail


def test_a_shrinking_append_only_table_and_a_named_version(spark, lake, tmp_path):
    lake_io.overwrite(_telemetry(spark, n=100), lake, TELEMETRY)
    assert _gate(spark, lake, tmp_path).exit_code == 0
    lake_io.overwrite(_telemetry(spark, n=40), lake, TELEMETRY)  # version 1: rows lost
    gate = _gate(spark, lake, tmp_path)
    assert gate.exit_code == 1
    volume = [f for f in gate.failures if f.expectation == "expect_table_row_count_to_be_between"]
    assert volume and "observed 40" in volume[0].detail
    # The version before the loss still passes, and the run says which version it read.
    older = _gate(spark, lake, tmp_path, as_of=0)
    assert older.exit_code == 0 and older.versions == {"silver.vehicle_telemetry": 0}
    with pytest.raises(RedlineError, match="--as-of names a Delta version of one table"):
        run_gate(spark, lake, tmp_path, tables=["silver.vehicle_telemetry", "gold.mtbf"],
                 as_of=0)


def test_a_station_missing_from_the_dimension_fails_with_its_name(spark, lake, tmp_path):
    table = catalog.silver("station_results")
    rows = [{"event_id": f"e{i}", "event_time": datetime(2026, 1, 5, 8), "schema_version": 1,
             "unit_serial": f"U{i}", "plant": "P", "line": "L", "station": s,
             "operation": "op", "shift": "A", "attempt": 1, "result": "PASS",
             "measurements": [], "defect_codes": [], "cycle_time_s": 1.0, "kafka_topic": "t",
             "kafka_partition": 0, "kafka_offset": i, "kafka_timestamp": datetime.now(UTC)}
            for i, s in enumerate(["S010", "S020", "S999"])]
    results = spark.createDataFrame([tuple(r.get(f.name) for f in table.schema().fields)
                                     for r in rows], table.schema())
    lake_io.overwrite(results, lake, catalog.silver("station_results"))
    lake_io.overwrite(spark.createDataFrame(
        [("P", "L", s, "op", ["torque"], datetime(2026, 1, 5), datetime(2026, 1, 6))
         for s in ("S010", "S020")], catalog.DIM_STATION.schema()), lake, catalog.DIM_STATION)
    gate = run_gate(spark, lake, tmp_path, tables=["silver.station_results"],
                    progress=lambda _: None)
    assert gate.exit_code == 1
    detail = _errors(gate)[("silver.station_results", "expect_column_values_to_be_null",
                            suites.orphan_column("gold.dim_station"))]
    assert "reference plant,line,station -> gold.dim_station" in detail
    assert "P/L/S999" in detail and "1 unexpected row(s)" in detail


def test_a_missing_table_means_the_gate_could_not_run(spark, lake, tmp_path):
    gate = run_gate(spark, lake, tmp_path, tables=["gold.mtbf"], progress=lambda _: None)
    assert gate.exit_code == 2 and gate.missing == ["gold.mtbf"]
    assert "MISSING gold.mtbf" in gate.summary()


def test_every_catalog_table_has_a_suite_with_its_key():
    for table in catalog.TABLES.values():
        checks = suites.checks_for(table)
        ids = {c.id for c in checks}
        assert table.key, table.qualified_name
        unique = (f"ExpectColumnValuesToBeUnique({table.key[0]})" if len(table.key) == 1
                  else f"ExpectCompoundColumnsToBeUnique({','.join(table.key)})")
        assert unique in ids, table.qualified_name
        assert len(ids) == len(checks), f"{table.qualified_name}: two checks share an id"


def test_freshness_settings_are_checked():
    assert suites.freshness_limits("silver.vehicle_telemetry=24, bronze.vehicle_dtc=1.5") == {
        "silver.vehicle_telemetry": 24.0, "bronze.vehicle_dtc": 1.5}
    with pytest.raises(RedlineError, match="'gold.nope' is not a table with an arrival"):
        suites.freshness_limits("gold.nope=3")
    with pytest.raises(RedlineError, match="hours must be a number"):
        suites.freshness_limits("silver.vehicle_telemetry=soon")
