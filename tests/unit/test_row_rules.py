"""Row rules (warn / drop / fail), the per-batch metrics table, oversized records and schema
evolution in the silver write path, on inline bronze rows with known fates."""

import json
from datetime import datetime

import pytest
from pyspark.sql import functions as F
from pyspark.sql.types import StructField

from redline import catalog
from redline.errors import RedlineError
from redline.quality.row_rules import Rule
from redline.schemas import payloads as pl
from redline.schemas.tables import BRONZE
from redline.schemas.tables import silver as silver_schema
from redline.streaming import silver
from redline.streaming.parse import annotate, classify

GOOD = {
    "event_id": "e-1", "event_time": "2026-01-05T08:00:00.000Z", "schema_version": 1,
    "unit_serial": "VIN1", "plant": "PLT-A", "line": "L1", "station": "S010",
    "operation": "chassis_bolting", "shift": "A", "attempt": 1, "result": "PASS",
    "measurements": [], "defect_codes": [], "cycle_time_s": 61.0,
}


def _bronze(spark, values, topic="station_results"):
    ts = datetime(2026, 1, 5, 9)
    rows = [(b"k", v if isinstance(v, bytes) else v.encode(), f"redline.{topic}", 0, i, ts, ts)
            for i, v in enumerate(values)]
    return spark.createDataFrame(rows, BRONZE)


def _rec(event_id, **changes):
    return json.dumps({**GOOD, "event_id": event_id, **changes})


def test_drop_rules_quarantine_warn_rules_count_and_keep(spark):
    values = [
        _rec("ok"),
        _rec("year-3000", event_time="3000-01-01T00:00:00Z"),  # drop: event_time_plausible
        _rec("year-1970", event_time="1970-01-01T00:00:00Z"),  # drop: event_time_plausible
        _rec("attempt-0", attempt=0),                          # drop: attempt_positive
        _rec("both", attempt=0, result="MAYBE"),               # two drop rules at once
        _rec("slow", cycle_time_s=5000.0),                     # warn: cycle_time_plausible
        _rec("no-cycle", cycle_time_s=None),                   # optional field: no warning
    ]
    good, bad, flagged = classify(annotate(_bronze(spark, values), pl.latest("station_results")),
                                  "station_results", "bronze.station_results")
    assert sorted(r.event_id for r in good.collect()) == ["no-cycle", "ok", "slow"]
    bad = {r.kafka_offset: r for r in bad.collect()}
    assert sorted(bad) == [1, 2, 3, 4]
    assert {r.reason_code for r in bad.values()} == {"RULE_VIOLATION"}
    assert bad[1].reason.startswith("row rule event_time_plausible")
    assert "attempt_positive" in bad[4].reason and "result_known" in bad[4].reason
    assert json.loads(bad[3].raw_value)["event_id"] == "attempt-0"  # the raw record is kept

    from redline.quality import row_rules
    counts = row_rules.violation_counts(flagged, row_rules.rules_for("station_results"))
    assert counts == {"event_time_plausible": 2, "attempt_positive": 2, "result_known": 1,
                      "cycle_time_plausible": 1}


def test_batch_metrics_are_recorded_once_per_batch(spark, lake):
    values = [_rec("a"), _rec("b"), _rec("a"), _rec("late", event_time="3000-01-01T00:00:00Z"),
              "{broken", _rec("slow", cycle_time_s=4000.0)]
    batch = _bronze(spark, values)
    counts = silver.write_batch(batch, 0, lake, "station_results", "app-1")
    assert counts == {"rows": 6, "silver": 3, "quarantined": 2, "duplicates": 1, "warned": 1}
    silver.write_batch(batch, 0, lake, "station_results", "app-1")  # replay after a crash

    metrics = catalog.read(spark, lake, catalog.get("ops.silver_batches")).collect()
    assert len(metrics) == 1
    m = metrics[0]
    assert (m.topic, m.batch_id, m.input_rows, m.silver_rows, m.quarantined_rows,
            m.duplicate_rows) == ("station_results", 0, 6, 3, 2, 1)
    assert m.min_kafka_timestamp == datetime(2026, 1, 5, 9)
    by_rule = {v.rule: (v.action, v.rows) for v in m.rule_violations}
    assert by_rule["event_time_plausible"] == ("drop", 1)
    assert by_rule["cycle_time_plausible"] == ("warn", 1)
    assert by_rule["attempt_positive"] == ("drop", 0)
    q = catalog.read(spark, lake, catalog.get("silver.quarantine")).collect()
    assert sorted(r.reason_code for r in q) == ["MALFORMED_JSON", "RULE_VIOLATION"]


def test_fail_rule_refuses_the_whole_batch_and_writes_nothing(spark, lake):
    strict = [Rule("single_shift", "shift = 'A'", "fail", "only shift A runs")]
    batch = _bronze(spark, [_rec("a"), _rec("b", shift="B"), _rec("c")])
    with pytest.raises(RedlineError, match=r"ROW_RULE_FAILED.*single_shift.*1 record.*"
                                           r"event_id b at Kafka partition 0 offset 1"):
        silver.write_batch(batch, 0, lake, "station_results", "app-1", rules=strict)
    for name in ("silver.station_results", "silver.quarantine", "ops.silver_batches"):
        assert not catalog.exists(spark, lake, catalog.get(name)), name


def test_record_over_the_size_limit_is_quarantined_unparsed(spark):
    big = _rec("big", operation="x" * 5000)
    annotated = annotate(_bronze(spark, [_rec("small"), big]), pl.latest("station_results"),
                         max_record_bytes=2000)
    good, bad, _ = classify(annotated, "station_results", "bronze.station_results")
    assert [r.event_id for r in good.collect()] == ["small"]
    [row] = bad.collect()
    assert row.reason_code == "RECORD_TOO_LARGE"
    assert f"value is {len(big):,} bytes, over the 2,000-byte limit" in row.reason
    assert row.raw_value == big[:4096]


def test_new_optional_field_evolves_an_existing_silver_table(spark, lake):
    """A lake built before telemetry v2 existed: its silver table has the v1 columns."""
    v1 = pl.PAYLOADS["vehicle_telemetry"][1]
    old = spark.createDataFrame(
        [("old", datetime(2026, 1, 1), 1, "VIN-OLD", 10.0, "redline.vehicle_telemetry", 0, 0)],
        "event_id string, event_time timestamp, schema_version int, vin string, "
        "odometer_km double, kafka_topic string, kafka_partition int, kafka_offset long")
    for f in silver_schema(v1).fields:
        if f.name not in old.columns:
            old = old.withColumn(f.name, F.lit(None).cast(f.dataType))
    path = catalog.location(lake, catalog.silver("vehicle_telemetry"))
    old.select(*[f.name for f in silver_schema(v1).fields]).write.format("delta").save(path)
    assert "hv_battery_voltage_v" not in spark.read.format("delta").load(path).columns

    base = {"event_time": "2026-02-01T10:00:00Z", "vin": "VIN1", "odometer_km": 5.0}
    values = [json.dumps({**base, "event_id": "v1", "schema_version": 1}),
              json.dumps({**base, "event_id": "v2", "schema_version": 2,
                          "hv_battery_voltage_v": 391.5}),
              # an incompatible v2 record: the new field with the wrong type
              json.dumps({**base, "event_id": "v2-bad", "schema_version": 2,
                          "hv_battery_voltage_v": "high"})]
    counts = silver.write_batch(_bronze(spark, values, "vehicle_telemetry"), 0, lake,
                                "vehicle_telemetry", "app-1")
    assert (counts["silver"], counts["quarantined"]) == (2, 1)
    rows = {r.event_id: r for r in spark.read.format("delta").load(path).collect()}
    assert sorted(rows) == ["old", "v1", "v2"]
    assert rows["v2"].hv_battery_voltage_v == 391.5
    assert rows["v1"].hv_battery_voltage_v is None and rows["old"].hv_battery_voltage_v is None
    [bad] = catalog.read(spark, lake, catalog.get("silver.quarantine")).collect()
    assert bad.reason_code == "TYPE_MISMATCH" and "hv_battery_voltage_v" in bad.reason


def test_incompatible_payload_versions_are_refused():
    from pyspark.sql.types import DoubleType, StringType

    v1 = pl.PAYLOADS["vehicle_telemetry"][1]

    def v2(fields):
        return pl.Payload(v1.name, 2, tuple(fields), v1.key, "test")

    pl.check_evolution({1: v1, 2: v2([*v1.fields, StructField("x", DoubleType(), True)])})
    changed = [StructField("odometer_km", StringType(), False) if f.name == "odometer_km"
               else f for f in v1.fields]
    with pytest.raises(ValueError, match="changes field odometer_km from double not null "
                                         "to string not null"):
        pl.check_evolution({1: v1, 2: v2(changed)})
    with pytest.raises(ValueError, match="removes field speed_kph"):
        pl.check_evolution({1: v1, 2: v2([f for f in v1.fields if f.name != "speed_kph"])})
    with pytest.raises(ValueError, match=r"adds required field\(s\) \['x'\]"):
        pl.check_evolution({1: v1, 2: v2([*v1.fields, StructField("x", DoubleType(), False)])})
