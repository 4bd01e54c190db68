"""Bronze -> silver parsing on a handful of inline records, each with a known fate."""

import json
from datetime import datetime, timedelta

from redline.schemas.payloads import latest
from redline.schemas.tables import BRONZE
from redline.streaming.parse import dedupe, parse

GOOD = {
    "event_id": "e-1", "event_time": "2026-01-05T08:00:00.000Z", "schema_version": 1,
    "unit_serial": "VIN1", "plant": "PLT-A", "line": "L1", "station": "S010",
    "operation": "chassis_bolting", "shift": "A", "attempt": 1, "result": "PASS",
    "measurements": [{"characteristic": "bolt_torque_nm", "value": 50.2, "unit": "Nm",
                      "lsl": 45.0, "usl": 55.0, "target": 50.0}],
    "defect_codes": [], "cycle_time_s": 61.0,
}


def _bronze(spark, values, ts=datetime(2026, 1, 5, 9)):
    rows = [(None, v if isinstance(v, bytes) else v.encode(), "redline.station_results", 0,
             i, ts, ts) for i, v in enumerate(values)]
    return spark.createDataFrame(rows, BRONZE)


def test_each_bad_record_is_quarantined_with_its_reason(spark):
    values = [
        json.dumps(GOOD),
        "{not json",
        json.dumps({**GOOD, "event_id": "e-3", "attempt": "first"}),
        json.dumps({k: v for k, v in GOOD.items() if k != "station"} | {"event_id": "e-4"}),
        json.dumps({**GOOD, "event_id": "e-5", "schema_version": 9}),
        json.dumps({**GOOD, "event_id": "e-6", "cycle_time_s": "slow"}),
        b"\xff\xfe\x00garbage",
    ]
    good, bad = parse(_bronze(spark, values), latest("station_results"), "bronze.station_results")
    assert [r.event_id for r in good.collect()] == ["e-1"]
    reasons = {r.kafka_offset: (r.reason_code, r.reason) for r in bad.collect()}
    assert reasons[1][0] == "MALFORMED_JSON"
    assert reasons[2] == ("TYPE_MISMATCH", "attempt: value first is not a valid int")
    assert reasons[3] == ("MISSING_REQUIRED", "required field station is missing or null")
    assert reasons[4][0] == "UNKNOWN_SCHEMA_VERSION"
    # A nullable field with a wrong type is quarantined too, never silently nulled.
    assert reasons[5] == ("TYPE_MISMATCH", "cycle_time_s: value slow is not a valid double")
    assert reasons[6][0] == "MALFORMED_JSON"
    assert len(reasons) == 6


def test_good_record_is_typed(spark):
    good, _ = parse(_bronze(spark, [json.dumps(GOOD)]), latest("station_results"), "b")
    row = good.collect()[0]
    assert row.event_time == datetime(2026, 1, 5, 8, 0)
    assert row.attempt == 1
    assert row.measurements[0].value == 50.2
    assert (row.kafka_topic, row.kafka_partition, row.kafka_offset) == (
        "redline.station_results", 0, 0)


def test_dedupe_keeps_first_delivery(spark):
    values = [json.dumps(GOOD), json.dumps({**GOOD, "result": "FAIL"}),
              json.dumps({**GOOD, "event_id": "e-2"})]
    good, _ = parse(_bronze(spark, values), latest("station_results"), "b")
    rows = sorted((r.event_id, r.result, r.kafka_offset) for r in dedupe(good).collect())
    assert rows == [("e-1", "PASS", 0), ("e-2", "PASS", 2)]


def test_nested_and_non_object_values_are_named(spark):
    bad_measurement = {**GOOD, "event_id": "e-7",
                       "measurements": [{**GOOD["measurements"][0], "value": "high"}]}
    values = [json.dumps(bad_measurement), "[1, 2]", '"just a string"', json.dumps(GOOD)]
    good, bad = parse(_bronze(spark, values), latest("station_results"), "b")
    assert [r.event_id for r in good.collect()] == ["e-1"]
    reasons = {r.kafka_offset: (r.reason_code, r.reason) for r in bad.collect()}
    assert reasons[0][0] == "TYPE_MISMATCH" and reasons[0][1].startswith("measurements: value ")
    assert reasons[1][0] == "MALFORMED_JSON"
    assert reasons[2][0] == "MALFORMED_JSON"


def test_new_events_drops_repeats_and_ids_already_in_silver_on_both_paths(spark, lake):
    from redline import catalog
    from redline import lake as lake_io
    from redline.streaming.silver import new_events

    table = catalog.silver("station_results")
    first, _ = parse(_bronze(spark, [json.dumps({**GOOD, "event_id": "in-silver"})]),
                     latest("station_results"), "b")
    lake_io.append(first, lake, table)
    path = catalog.location(lake, table)
    values = [json.dumps({**GOOD, "event_id": "twice"}),
              json.dumps({**GOOD, "event_id": "twice", "result": "FAIL"}),
              json.dumps({**GOOD, "event_id": "in-silver"}),
              json.dumps({**GOOD, "event_id": "new"})]
    good, _ = parse(_bronze(spark, values), latest("station_results"), "b")
    for rows in (4, None):  # driver check, then the shuffle used for large batches
        fresh, removed = new_events(good, path, rows=rows)
        assert removed
        assert sorted((r.event_id, r.result) for r in fresh.collect()) == [
            ("new", "PASS"), ("twice", "PASS")]
    clean, _ = parse(_bronze(spark, [json.dumps({**GOOD, "event_id": "n1"}),
                                     json.dumps({**GOOD, "event_id": "n2"})]),
                     latest("station_results"), "b")
    for rows in (2, None):
        fresh, removed = new_events(clean, path, rows=rows)
        assert not removed and fresh.count() == 2


def test_silver_keeps_the_kafka_timestamp_of_each_record(spark):
    good, _ = parse(_bronze(spark, [json.dumps(GOOD)], ts=datetime(2026, 3, 1, 7, 30)),
                    latest("station_results"), "b")
    assert [r.kafka_timestamp for r in good.collect()] == [datetime(2026, 3, 1, 7, 30)]


def test_the_dedupe_window_is_the_time_between_kafka_arrivals(spark, lake):
    """A redelivery is a duplicate when its silver row reached Kafka within the window of
    it; silver rows without a Kafka timestamp (landed before silver kept it) always
    count."""
    from pyspark.sql import functions as F

    from redline import catalog
    from redline import lake as lake_io
    from redline.streaming.silver import new_events

    table = catalog.silver("station_results")
    t0 = datetime(2026, 1, 5, 9)
    landed, _ = parse(_bronze(spark, [json.dumps({**GOOD, "event_id": "early"})], ts=t0),
                      latest("station_results"), "b")
    older, _ = parse(_bronze(spark, [json.dumps({**GOOD, "event_id": "old-lake"})], ts=t0),
                     latest("station_results"), "b")
    lake_io.append(landed.unionByName(
        older.withColumn("kafka_timestamp", F.lit(None).cast("timestamp"))), lake, table)
    path = catalog.location(lake, table)
    values = [json.dumps({**GOOD, "event_id": e}) for e in ("early", "old-lake", "new")]
    for rows in (3, None):  # driver check, then the shuffle used for large batches
        for minutes_later, window, landing in (
                (10, 15.0, ["new"]),                        # within the window: duplicate
                (30, 15.0, ["early", "new"]),               # past it: another event
                (30, 45.0, ["new"]),                        # a wider window catches it
                (-10, 15.0, ["new"])):                      # the silver row came later
            at = t0 + timedelta(minutes=minutes_later)
            good, _ = parse(_bronze(spark, values, ts=at), latest("station_results"), "b")
            fresh, removed = new_events(good, path, rows=rows, arrival=(at, at),
                                        window_minutes=window)
            assert removed
            assert sorted(r.event_id for r in fresh.collect()) == landing, \
                (rows, minutes_later, window)


def test_a_silver_table_of_an_older_release_is_aligned_with_the_catalog(spark, lake):
    """Before silver kept Kafka timestamps: no such column, statistics on three columns."""
    from delta.tables import DeltaTable

    from redline import catalog
    from redline import lake as lake_io

    table = catalog.silver("station_results")
    path = catalog.location(lake, table)
    old, _ = parse(_bronze(spark, [json.dumps({**GOOD, "event_id": "old"})]),
                   latest("station_results"), "b")
    (old.drop("kafka_timestamp").write.format("delta")
     .option("delta.dataSkippingStatsColumns", "event_time,kafka_partition,kafka_offset")
     .save(path))
    changes = lake_io.align_table(spark, lake, table)
    assert changes[0] == "column kafka_timestamp"
    assert ("delta.dataSkippingStatsColumns="
            "event_time,kafka_partition,kafka_offset,kafka_timestamp") in changes
    props = DeltaTable.forPath(spark, path).detail().first().properties
    assert props["delta.dataSkippingStatsColumns"].endswith(",kafka_timestamp")
    assert props["delta.enableChangeDataFeed"] == "true"
    new, _ = parse(_bronze(spark, [json.dumps({**GOOD, "event_id": "new"})]),
                   latest("station_results"), "b")
    lake_io.append(new, lake, table)
    rows = {r.event_id: r.kafka_timestamp for r in spark.read.format("delta").load(path)
            .collect()}
    assert rows == {"old": None, "new": datetime(2026, 1, 5, 9)}
    assert lake_io.align_table(spark, lake, table) == []
