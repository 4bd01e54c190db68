"""Point-in-time vehicle features on a handful of hand-made rows.

Dates: the main as-of date is 2024-03-01 (2024 is a leap year, so the 30-day window
starts 2024-01-31 and the label horizon ends 2024-03-31); the earlier one is 2024-02-15
(window from 2024-01-16, horizon to 2024-03-16). Every expected value below is worked
out by hand in the comment beside it.
"""

from __future__ import annotations

import itertools
from datetime import date, datetime, timedelta

import pytest
from pyspark.testing import assertDataFrameEqual, assertSchemaEqual

from redline.errors import RedlineError
from redline.ml.features import as_of_dates, vehicle_features
from redline.schemas import tables
from redline.schemas.payloads import latest

_seq = itertools.count()


def _silver(spark, topic: str, rows: list[dict]):
    """A silver table of ``topic`` from payload fields; envelope and lineage filled in."""
    schema = tables.silver(latest(topic))
    full = []
    for row in rows:
        n = next(_seq)
        full.append({"event_id": f"e-{n}", "event_time": datetime(2023, 1, 1),
                     "schema_version": 1, "kafka_topic": topic, "kafka_partition": 0,
                     "kafka_offset": n, **row})
    return spark.createDataFrame([tuple(r.get(f.name) for f in schema.fields) for r in full],
                                 schema)


def _components(lot: str | None):
    comps = [{"component": "battery_module", "supplier": "VoltCell", "lot": "LOT-BM-1"}]
    if lot:
        comps.append({"component": "coolant_pump", "supplier": "ThermaFlow", "lot": lot})
    return comps


def _build(vin: str, built: date, lot: str | None = "LOT-CP-1") -> dict:
    return {"vin": vin, "model": "M1", "plant": "PLT-A", "line": "L1", "build_date": built,
            "firmware_version": "FW-1", "components": _components(lot)}


def _telemetry(vin: str, t: datetime, odo: float, coolant: float, motor: float,
               battery: float) -> dict:
    return {"vin": vin, "event_time": t, "odometer_km": odo, "coolant_temp_c": coolant,
            "motor_temp_c": motor, "battery_temp_c": battery}


def _dtc(vin: str, t: datetime, firmware: str) -> dict:
    return {"vin": vin, "event_time": t, "dtc_code": "P0A1F", "severity": "warning",
            "firmware_version": firmware}


def _claim(vin: str, failed: date) -> dict:
    return {"claim_id": f"WC-{vin}-{failed}", "vin": vin, "component": "coolant_pump",
            "failure_date": failed}


AS_OF = date(2024, 3, 1)
EARLY = date(2024, 2, 15)

BUILDS = [
    _build("V1", date(2024, 1, 1)),
    _build("V2", date(2024, 2, 1)),
    _build("V3", AS_OF),                   # built on the as-of date: not yet in the field
    _build("V4", date(2023, 6, 1)),
    _build("V6", date(2024, 1, 1), lot=None),  # no coolant pump on record
]
TELEMETRY_PAST = [
    _telemetry("V1", datetime(2024, 1, 20, 12), 500.0, 60.0, 120.0, 20.0),
    _telemetry("V1", datetime(2024, 2, 28, 10), 1000.0, 70.0, 80.0, 30.0),
    _telemetry("V1", datetime(2024, 2, 29, 23, 59, 59), 1100.0, 80.0, 90.0, 32.0),
]
TELEMETRY_FUTURE = [  # at or after the as-of instant: must change nothing
    _telemetry("V1", datetime(2024, 3, 1, 0, 0, 0), 5000.0, 200.0, 200.0, 99.0),
    _telemetry("V1", datetime(2024, 3, 20), 6000.0, 210.0, 210.0, 99.0),
]
DTC_PAST = [
    _dtc("V1", datetime(2024, 1, 15, 8), "FW-1.5"),
    _dtc("V1", datetime(2024, 2, 10, 8), "FW-2"),
]
DTC_FUTURE = [
    _dtc("V1", datetime(2024, 3, 1, 0, 0, 0), "FW-9"),
    _dtc("V2", datetime(2024, 3, 5), "FW-9"),
]
CLAIMS = [
    _claim("V1", date(2024, 3, 31)),   # as_of + 30: last day inside the horizon
    _claim("V2", date(2024, 4, 1)),    # as_of + 31: first day outside
    _claim("V4", AS_OF),               # failed on the as-of date: leaves the population
    _claim("V6", date(2024, 3, 2)),    # first day inside the horizon
]

COLUMNS = [f.name for f in tables.VEHICLE_FEATURES.fields]


def _expected(spark, rows):
    return spark.createDataFrame([dict(zip(COLUMNS, r)) for r in rows],
                                 tables.VEHICLE_FEATURES)


def _features(spark, telemetry, dtc, dates=(AS_OF,)):
    return vehicle_features(_silver(spark, "vehicle_builds", BUILDS),
                            _silver(spark, "vehicle_telemetry", telemetry),
                            _silver(spark, "vehicle_dtc", dtc),
                            _silver(spark, "warranty_claims", CLAIMS), list(dates))


def test_features_match_the_table_schema(spark):
    actual = _features(spark, TELEMETRY_PAST, DTC_PAST)
    assertSchemaEqual(actual.schema, tables.VEHICLE_FEATURES)


def test_features_and_labels_by_hand(spark):
    actual = _features(spark, TELEMETRY_PAST + TELEMETRY_FUTURE, DTC_PAST + DTC_FUTURE,
                       dates=(EARLY, AS_OF))
    expected = _expected(spark, [
        # vin, as_of, model, plant, firmware, supplier, lot, age, odo, mean coolant,
        # coolant rise, max motor, mean battery, dtc_30d, label
        # V1 @ 02-15: only the 01-20 reading (window from 01-16); nothing in the last 14
        # days so no rise; the 02-10 DTC (FW-2) counts, the 01-15 one is before the window;
        # the claim on 03-31 is after 02-15 + 30 = 03-16.
        ("V1", EARLY, "M1", "PLT-A", "FW-2", "ThermaFlow", "LOT-CP-1", 45, 500.0, 60.0,
         None, 120.0, 20.0, 1, 0),
        # V1 @ 03-01: window 01-31..02-29 holds 70 and 80 (mean 75, max motor 90, battery
        # 31); rise = mean(02-16..02-29)=75 minus mean(01-01..02-15)=60 -> 15; last odometer
        # 1100 (the 03-01 00:00 reading is the future); claim on 03-31 = as_of + 30 -> 1.
        ("V1", AS_OF, "M1", "PLT-A", "FW-2", "ThermaFlow", "LOT-CP-1", 60, 1100.0, 75.0,
         15.0, 90.0, 31.0, 1, 1),
        # V2: no telemetry or DTC before either date; claim on 04-01 is outside both.
        ("V2", EARLY, "M1", "PLT-A", "FW-1", "ThermaFlow", "LOT-CP-1", 14, None, None,
         None, None, None, 0, 0),
        ("V2", AS_OF, "M1", "PLT-A", "FW-1", "ThermaFlow", "LOT-CP-1", 29, None, None,
         None, None, None, 0, 0),
        # V4 fails on 03-01: inside 02-15's horizon; gone from 03-01 on.
        ("V4", EARLY, "M1", "PLT-A", "FW-1", "ThermaFlow", "LOT-CP-1", 259, None, None,
         None, None, None, 0, 1),
        # V6 fails on 03-02: inside both horizons; it has no coolant pump on record.
        ("V6", EARLY, "M1", "PLT-A", "FW-1", None, None, 45, None, None,
         None, None, None, 0, 1),
        ("V6", AS_OF, "M1", "PLT-A", "FW-1", None, None, 60, None, None,
         None, None, None, 0, 1),
        # V3 (built on 03-01) appears at neither date.
    ])
    assertDataFrameEqual(actual, expected, ignoreNullable=False)


def test_events_at_or_after_the_as_of_instant_change_nothing(spark):
    without = _features(spark, TELEMETRY_PAST, DTC_PAST)
    with_future = _features(spark, TELEMETRY_PAST + TELEMETRY_FUTURE, DTC_PAST + DTC_FUTURE)
    assertDataFrameEqual(with_future, without)


def test_firmware_is_the_version_running_at_the_as_of_instant(spark):
    """A firmware update shows from the first as-of date after it was seen, never before;
    the answer is the firmware dimension's point-in-time lookup just before the as-of
    instant."""
    from pyspark.sql import functions as F

    from redline.jobs.dimensions import firmware_at, firmware_periods

    dtc = DTC_PAST + [
        _dtc("V2", datetime(2024, 2, 20, 8), "FW-3"),       # between EARLY and AS_OF
        _dtc("V2", datetime(2024, 3, 1, 0, 0, 1), "FW-4"),  # on the as-of day, after 00:00
        _dtc("V6", datetime(2024, 2, 14, 23, 59), "FW-5"),  # a minute before EARLY
        _dtc("V4", datetime(2024, 2, 15, 0, 0, 0), "FW-6"),  # at the EARLY instant itself
    ]
    builds = _silver(spark, "vehicle_builds", BUILDS)
    dtc_df = _silver(spark, "vehicle_dtc", dtc)
    actual = vehicle_features(builds, _silver(spark, "vehicle_telemetry", TELEMETRY_PAST),
                              dtc_df, _silver(spark, "warranty_claims", CLAIMS),
                              [EARLY, AS_OF])
    got = {(r.vin, r.as_of_date): r.firmware_version for r in actual.collect()}
    assert got == {
        ("V1", EARLY): "FW-2", ("V1", AS_OF): "FW-2",   # updated 02-10, before both
        ("V2", EARLY): "FW-1", ("V2", AS_OF): "FW-3",   # FW-4 is after the AS_OF instant
        ("V4", EARLY): "FW-1",                          # FW-6 at the instant: future
        ("V6", EARLY): "FW-5", ("V6", AS_OF): "FW-5",
    }
    # Features see events strictly before the as-of instant, the dimension's periods start
    # at (and include) their first observation: ask it for the last microsecond before.
    lookups = actual.select("vin", "as_of_date", (F.col("as_of_date").cast("timestamp")
                                                  - F.expr("INTERVAL 1 MICROSECOND"))
                            .alias("at"))
    dim = {(r.vin, r.as_of_date): r.firmware_version
           for r in firmware_at(firmware_periods(builds, dtc_df), lookups).collect()}
    assert dim == got


def test_vehicles_built_on_or_after_the_as_of_date_are_excluded(spark):
    actual = _features(spark, TELEMETRY_PAST, DTC_PAST, dates=(date(2024, 1, 1),))
    # Only V4 (2023) is in service on 2024-01-01; V1 and V6 were built that very day.
    assert [r.vin for r in actual.select("vin").collect()] == ["V4"]


def test_as_of_dates_are_anchored_after_the_last_day():
    assert as_of_dates(date(2024, 1, 1), date(2024, 1, 20), step_days=7) == [
        date(2024, 1, 7), date(2024, 1, 14), date(2024, 1, 21)]
    assert as_of_dates(date(2024, 1, 1), date(2024, 1, 1)) == [date(2024, 1, 2)]


@pytest.mark.parametrize("first, last, step, match", [
    (date(2024, 1, 2), date(2024, 1, 1), 7, "last_day 2024-01-01 is before first_day"),
    (date(2024, 1, 1), date(2024, 1, 9), 0, "step_days=0 must be at least 1"),
])
def test_as_of_dates_reject_bad_input(first, last, step, match):
    with pytest.raises(RedlineError, match=match):
        as_of_dates(first, last, step)


def test_vehicle_features_needs_as_of_dates(spark):
    with pytest.raises(RedlineError, match="as_of_dates is empty"):
        _features(spark, TELEMETRY_PAST, DTC_PAST, dates=())


def test_time_split_holds_out_the_latest_dates_and_purges_overlap():
    from redline.ml.vehicle_task import time_split

    dates = [date(2024, 1, 1) + timedelta(days=7 * k) for k in range(16)]  # to 2024-04-15
    split = time_split(dates, horizon_days=30, test_fraction=0.25)
    # Labelled: d + 30 < 04-15, i.e. up to 03-11 (11 dates); test: the last 3 of them
    # (02-26, 03-04, 03-11); train: d + 30 < 02-26, i.e. up to 01-22 (4 dates).
    assert split.test_dates == (date(2024, 2, 26), date(2024, 3, 4), date(2024, 3, 11))
    assert split.train_dates == (date(2024, 1, 1), date(2024, 1, 8), date(2024, 1, 15),
                                 date(2024, 1, 22))
    assert split.observed_until == date(2024, 4, 15)


def test_time_split_needs_enough_history():
    from redline.ml.vehicle_task import time_split

    with pytest.raises(RedlineError, match="ML_NOT_ENOUGH_HISTORY"):
        time_split([date(2024, 1, 1) + timedelta(days=7 * k) for k in range(6)])


def test_time_split_without_purge_keeps_the_overlapping_dates():
    from redline.ml.vehicle_task import time_split

    dates = [date(2024, 1, 1) + timedelta(days=7 * k) for k in range(16)]
    split = time_split(dates, horizon_days=30, test_fraction=0.25, purge=False)
    # Same labelled dates and test dates as above; training keeps 01-01..02-19 (8 dates).
    assert split.train_dates == tuple(date(2024, 1, 1) + timedelta(days=7 * k)
                                      for k in range(8))
    assert not split.purged
