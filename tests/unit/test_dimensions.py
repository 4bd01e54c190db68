"""Conformed dimensions; firmware validity periods and the point-in-time lookup by hand."""

from datetime import date, datetime

from redline.jobs.dimensions import (
    dim_station,
    dim_supplier_lot,
    dim_vehicle,
    firmware_at,
    firmware_periods,
)
from redline.schemas.payloads import latest


def _build(vin, fw, t, lot="L1", event_id=None):
    return {"event_id": event_id or f"b-{vin}-{t:%d}", "event_time": t, "schema_version": 1,
            "vin": vin, "model": "M", "plant": "P", "line": "L", "build_date": t.date(),
            "firmware_version": fw,
            "components": [{"component": "pump", "supplier": "S", "lot": lot}]}


def _dtc(vin, fw, t):
    return {"event_id": f"d-{vin}-{t:%d%H}", "event_time": t, "schema_version": 1,
            "vin": vin, "dtc_code": "P0", "severity": "LOW", "ecu": "E",
            "firmware_version": fw, "odometer_km": 1.0}


def t(day, hour=0):
    return datetime(2026, 1, day, hour)


def test_firmware_periods_and_lookup_by_hand(spark):
    builds = spark.createDataFrame([_build("V1", "FW-1", t(1)), _build("V2", "FW-9", t(2))],
                                   latest("vehicle_builds").struct)
    dtc = spark.createDataFrame([
        _dtc("V1", "FW-1", t(3)), _dtc("V1", "FW-2", t(5)), _dtc("V1", "FW-2", t(6)),
        _dtc("V1", "FW-1", t(8)),  # rolled back: a new period
    ], latest("vehicle_dtc").struct)
    periods = firmware_periods(builds, dtc)
    got = sorted(((r.vin, r.firmware_version, r.valid_from, r.valid_to, r.last_seen,
                   r.observations, r.source) for r in periods.collect()),
                 key=lambda p: (p[0], p[2]))
    assert got == [
        ("V1", "FW-1", t(1), t(5), t(3), 2, "build"),
        ("V1", "FW-2", t(5), t(8), t(6), 2, "dtc"),
        ("V1", "FW-1", t(8), None, t(8), 1, "dtc"),
        ("V2", "FW-9", t(2), None, t(2), 1, "build"),
    ]
    lookups = spark.createDataFrame([
        ("V1", t(1)), ("V1", t(4, 23)), ("V1", t(5)), ("V1", t(7)), ("V1", t(20)),
        ("V2", t(1)), ("V2", t(30)), ("V3", t(5)),
    ], "vin string, at timestamp")
    answers = sorted((r.vin, r.at, r.firmware_version)
                     for r in firmware_at(periods, lookups).collect())
    assert answers == [
        ("V1", t(1), "FW-1"),       # valid_from is inclusive
        ("V1", t(4, 23), "FW-1"),   # FW-2 not yet seen
        ("V1", t(5), "FW-2"),       # valid_to is exclusive
        ("V1", t(7), "FW-2"),
        ("V1", t(20), "FW-1"),      # after the rollback, open-ended
        ("V2", t(1), None),         # before the build
        ("V2", t(30), "FW-9"),
        ("V3", t(5), None),         # unknown vehicle
    ]


def test_vehicle_station_and_lot_dimensions(spark):
    builds = spark.createDataFrame([
        _build("V1", "FW-1", t(1), lot="A"),
        _build("V1", "FW-1", t(2), lot="B", event_id="b-V1-rebuilt"),  # latest record wins
        _build("V2", "FW-1", t(3), lot="B"),
        _build("V3", "FW-1", t(4), lot="A"),
    ], latest("vehicle_builds").struct)
    vehicles = {r.vin: r for r in dim_vehicle(builds).collect()}
    assert vehicles["V1"].components[0].lot == "B"
    assert vehicles["V1"].build_time == t(2) and len(vehicles) == 3
    lots = sorted((r.lot, r.vehicles, r.first_build_date, r.last_build_date)
                  for r in dim_supplier_lot(builds).collect())
    assert lots == [("A", 1, date(2026, 1, 4), date(2026, 1, 4)),
                    ("B", 2, date(2026, 1, 2), date(2026, 1, 3))]

    def result(i, station, chars, op, day):
        return {"event_id": f"r{i}", "event_time": t(day), "schema_version": 1,
                "unit_serial": "V1", "plant": "P", "line": "L", "station": station,
                "operation": op, "shift": "A", "attempt": 1, "result": "PASS",
                "measurements": [{"characteristic": c, "value": 1.0, "unit": None,
                                  "lsl": None, "usl": None, "target": None} for c in chars],
                "defect_codes": [], "cycle_time_s": None}

    results = spark.createDataFrame([
        result(1, "S1", ["b", "a"], "old", 1), result(2, "S1", ["a", "c"], "new", 3),
        result(3, "S2", [], "x", 2),
    ], latest("station_results").struct)
    stations = {r.station: r for r in dim_station(results).collect()}
    s1 = stations["S1"]
    assert (s1.operation, s1.characteristics, s1.first_seen, s1.last_seen) == \
        ("new", ["a", "b", "c"], t(1), t(3))
    assert stations["S2"].characteristics == []
