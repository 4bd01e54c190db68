"""Schemas of the lake tables that are not a payload plus metadata."""

from __future__ import annotations

from pyspark.sql.types import (
    BinaryType,
    DateType,
    DoubleType,
    IntegerType,
    LongType,
    StringType,
    StructField,
    StructType,
    TimestampType,
)

from .payloads import Payload

#: Bronze keeps the Kafka record as it came: raw bytes plus its coordinates.
BRONZE = StructType([
    StructField("key", BinaryType(), True),
    StructField("value", BinaryType(), True),
    StructField("topic", StringType(), False),
    StructField("partition", IntegerType(), False),
    StructField("offset", LongType(), False),
    StructField("kafka_timestamp", TimestampType(), False),
    StructField("ingest_time", TimestampType(), False),
])

#: Kafka coordinates carried from bronze into silver, so every row can be traced back.
LINEAGE = [
    StructField("kafka_topic", StringType(), False),
    StructField("kafka_partition", IntegerType(), False),
    StructField("kafka_offset", LongType(), False),
]


def silver(payload: Payload) -> StructType:
    return StructType(list(payload.struct.fields) + LINEAGE)


QUARANTINE = StructType([
    StructField("source_table", StringType(), False),
    StructField("kafka_topic", StringType(), False),
    StructField("kafka_partition", IntegerType(), False),
    StructField("kafka_offset", LongType(), False),
    StructField("raw_value", StringType(), True),
    StructField("reason_code", StringType(), False),
    StructField("reason", StringType(), False),
    StructField("quarantined_at", TimestampType(), False),
])

FIRST_PASS_YIELD = StructType([
    StructField("day", DateType(), False),
    StructField("plant", StringType(), False),
    StructField("line", StringType(), False),
    StructField("station", StringType(), False),
    StructField("units", LongType(), False),
    StructField("first_pass_units", LongType(), False),
    StructField("fpy", DoubleType(), False),
])

VEHICLE_FEATURES = StructType([
    StructField("vin", StringType(), False),
    StructField("as_of_date", DateType(), False),
    StructField("model", StringType(), False),
    StructField("plant", StringType(), False),
    StructField("firmware_version", StringType(), False),
    StructField("coolant_pump_supplier", StringType(), True),
    StructField("coolant_pump_lot", StringType(), True),
    StructField("age_days", IntegerType(), False),
    StructField("odometer_km", DoubleType(), True),
    StructField("mean_coolant_temp_c", DoubleType(), True),
    StructField("coolant_temp_rise_c", DoubleType(), True),
    StructField("max_motor_temp_c", DoubleType(), True),
    StructField("mean_battery_temp_c", DoubleType(), True),
    StructField("dtc_count_30d", LongType(), False),
    StructField("failure_within_30d", IntegerType(), False),
])

VEHICLE_RISK_SCORES = StructType([
    StructField("vin", StringType(), False),
    StructField("as_of_date", DateType(), False),
    StructField("failure_probability", DoubleType(), False),
    StructField("model_name", StringType(), False),
    StructField("model_version", StringType(), False),
    StructField("scored_at", TimestampType(), False),
])
