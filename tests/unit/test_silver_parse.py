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


def test_a_record_sent_again_however_late_is_a_duplicate(spark, lake):
    """The first copies landed a minute, a day and 40 days before their re-sends reach
    Kafka (a demo run again, a gateway re-uploading its buffer); each re-send is found,
    and a new event id at the same event time is not."""
    from redline import catalog
    from redline import lake as lake_io
    from redline.streaming.silver import new_events

    table = catalog.silver("station_results")
    t0 = datetime(2026, 1, 5, 9)
    times = {"minute": "2026-01-05T08:00:00.000Z", "day": "2026-01-04T08:00:00.000Z",
             "month": "2025-11-26T08:00:00.000Z"}
    first = [json.dumps({**GOOD, "event_id": e, "event_time": t}) for e, t in times.items()]
    landed, _ = parse(_bronze(spark, first, ts=t0), latest("station_results"), "b")
    lake_io.append(landed, lake, table)
    path = catalog.location(lake, table)
    again = first + [json.dumps({**GOOD, "event_id": "new", "event_time": times["day"]})]
    for rows in (4, None):  # driver check, then the shuffle used for large batches
        for later in (timedelta(minutes=1), timedelta(days=1), timedelta(days=40)):
            good, _ = parse(_bronze(spark, again, ts=t0 + later),
                            latest("station_results"), "b")
            fresh, removed = new_events(good, path, rows=rows)
            assert removed
            assert [r.event_id for r in fresh.collect()] == ["new"], (rows, later)


def test_murmur3_of_an_int_is_sparks_hash(spark):
    """The file keys rely on Spark's hash partitioning: Murmur3 x86_32 with seed 42."""
    from pyspark.sql import functions as F

    from redline.streaming.event_spans import murmur3_int

    values = [0, 1, 2, 7, 42, 1000, 2**31 - 1, -1, -2**31]
    expected = [r[0] for r in spark.createDataFrame([(v,) for v in values], "v int")
                .select(F.hash("v")).collect()]
    assert [murmur3_int(v) for v in values] == expected


def test_a_batch_with_late_records_writes_each_span_to_its_own_files(spark, tmp_path):
    """200 on-time records and 100 late ones over three event days, written as silver
    writes a batch: four files (on-time, three days), none reaching into another span, so
    a re-send of one late record reads one file of the four."""
    from delta.tables import DeltaTable
    from pyspark.sql import functions as F

    from redline.streaming import event_spans

    arrival = datetime(2026, 3, 10, 12)
    on_time = [(f"o{i}", arrival - timedelta(seconds=i)) for i in range(200)]
    late = [(f"l{i}", datetime(2026, 3, 1 + i % 3, 6) + timedelta(minutes=i))
            for i in range(100)]
    rows = spark.createDataFrame(on_time + late, "event_id string, event_time timestamp") \
        .repartition(3)  # arrival order mixes the spans in every input partition
    cut = event_spans.late_before(arrival, 15.0)
    found = event_spans.spans(rows, cut)
    assert [(s.keys, s.rows) for s in found] == [
        (("",), 200), (("2026-03-01",), 34), (("2026-03-02",), 33), (("2026-03-03",), 33)]
    path = str(tmp_path / "t")
    event_spans.one_file_set_per_span(rows, found, cut).write.format("delta").save(path)
    files = DeltaTable.forPath(spark, path).detail().first().numFiles
    assert files == 4
    per_file = (spark.read.format("delta").load(path)
                .groupBy(F.input_file_name().alias("f"))
                .agg(F.min("event_time").alias("lo"), F.max("event_time").alias("hi"))
                .collect())
    spans = sorted((r.lo, r.hi) for r in per_file)
    assert spans == sorted((s.lo, s.hi) for s in found)
    # A lookup for a re-sent late record of 2 March reads one file.
    one = spark.read.format("delta").load(path).where(
        event_spans.covering([s for s in found if s.keys == ("2026-03-02",)]))
    assert len(one.inputFiles()) == 1


def test_late_days_beyond_the_span_limit_merge_with_their_closest_neighbours():
    from redline.streaming.event_spans import Span, merge

    def day(d, h=0):
        return datetime(2026, 3, d, h)

    found = [Span(("",), day(20), day(20, 1), 9)] + [
        Span((f"2026-03-{d:02d}",), day(d), day(d, 12), 1) for d in (1, 2, 3, 10)]
    merged = merge(found, limit=3)
    assert [s.keys for s in merged] == [("",), ("2026-03-01", "2026-03-02", "2026-03-03"),
                                        ("2026-03-10",)]
    assert merged[1].lo == day(1) and merged[1].hi == day(3, 12) and merged[1].rows == 3


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
