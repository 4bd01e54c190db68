"""Schemas of the lake tables that are not a payload plus metadata."""

from __future__ import annotations

from pyspark.sql.types import (
    ArrayType,
    BinaryType,
    BooleanType,
    DateType,
    DoubleType,
    IntegerType,
    LongType,
    MapType,
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

#: Kafka coordinates carried from bronze into silver, so every row can be traced back,
#: and the time Kafka stamped the record: the clock of the silver dedupe window (nullable:
#: rows landed before silver kept it have none).
LINEAGE = [
    StructField("kafka_topic", StringType(), False),
    StructField("kafka_partition", IntegerType(), False),
    StructField("kafka_offset", LongType(), False),
    StructField("kafka_timestamp", TimestampType(), True),
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

#: Which model version scored a row, and when (every score table ends with these).
_SCORED_BY = [
    StructField("model_name", StringType(), False),
    StructField("model_version", StringType(), False),
    StructField("scored_at", TimestampType(), False),
]

VEHICLE_RISK_SCORES = StructType([
    StructField("vin", StringType(), False),
    StructField("as_of_date", DateType(), False),
    StructField("failure_probability", DoubleType(), False),
    StructField("uncertainty", DoubleType(), False),
    *_SCORED_BY,
])

# --- public data sets: model features and scores ---------------------------------------
CMAPSS_SENSORS = tuple(f"sensor_{i}" for i in range(1, 22))

CMAPSS_FEATURES = StructType([
    StructField("engine_id", StringType(), False),
    StructField("dataset", StringType(), False),
    StructField("split", StringType(), False),
    StructField("unit_id", IntegerType(), False),
    StructField("cycle", IntegerType(), False),
    StructField("condition", StringType(), False),
    *(StructField(f"op_setting_{i}", DoubleType(), False) for i in range(1, 4)),
    *(StructField(s, DoubleType(), False) for s in CMAPSS_SENSORS),
    StructField("last_cycle", IntegerType(), False),
    # Known for training engines only: a test engine's failure cycle is what is predicted.
    StructField("rul", IntegerType(), True),
    StructField("rul_target", IntegerType(), True),
])

CMAPSS_SENSOR_STATS = StructType([
    StructField("dataset", StringType(), False),
    StructField("condition", StringType(), False),
    StructField("sensor", StringType(), False),
    StructField("rows", LongType(), False),
    StructField("mean", DoubleType(), False),
    StructField("std", DoubleType(), False),
    StructField("distinct_values", LongType(), False),
    StructField("top_count", LongType(), False),
    StructField("second_count", LongType(), False),
    StructField("near_zero_variance", BooleanType(), False),
    StructField("kept", BooleanType(), False),
])

AI4I_FEATURES = StructType([
    StructField("udi", IntegerType(), False),
    StructField("product_id", StringType(), False),
    StructField("type", StringType(), False),
    StructField("event_time", TimestampType(), False),
    StructField("air_temperature_k", DoubleType(), False),
    StructField("process_temperature_k", DoubleType(), False),
    StructField("rotational_speed_rpm", IntegerType(), False),
    StructField("torque_nm", DoubleType(), False),
    StructField("tool_wear_min", IntegerType(), False),
    StructField("temperature_difference_k", DoubleType(), False),
    StructField("power_w", DoubleType(), False),
    StructField("overstrain_nm_min", DoubleType(), False),
    StructField("machine_failure", IntegerType(), False),
])

CMAPSS_RUL_SCORES = StructType([
    StructField("engine_id", StringType(), False),
    StructField("dataset", StringType(), False),
    StructField("split", StringType(), False),
    StructField("unit_id", IntegerType(), False),
    StructField("cycle", IntegerType(), False),
    StructField("rul_pred", DoubleType(), False),
    StructField("rul_spread", DoubleType(), False),
    *_SCORED_BY,
])

AI4I_FAILURE_SCORES = StructType([
    StructField("udi", IntegerType(), False),
    StructField("product_id", StringType(), False),
    StructField("event_time", TimestampType(), False),
    StructField("failure_probability", DoubleType(), False),
    StructField("uncertainty", DoubleType(), False),
    *_SCORED_BY,
])

REVIEW_QUEUE = StructType([
    StructField("rank", IntegerType(), False),
    StructField("task", StringType(), False),
    StructField("entity", StringType(), False),
    StructField("risk", DoubleType(), False),
    StructField("uncertainty", DoubleType(), False),
    StructField("priority", DoubleType(), False),
    StructField("detail", StringType(), False),
    *_SCORED_BY,
])

MODEL_DRIFT = StructType([
    StructField("task", StringType(), False),
    StructField("model_name", StringType(), False),
    StructField("model_version", StringType(), False),
    StructField("day", DateType(), False),
    StructField("feature", StringType(), False),
    StructField("rows", LongType(), False),
    StructField("psi", DoubleType(), False),
    StructField("warn_threshold", DoubleType(), False),
    StructField("drifted", BooleanType(), False),
    StructField("computed_at", TimestampType(), False),
])


# --- quality analytics: SPC, capability, reliability, Pareto -----------------------------
#: The key of a measured characteristic (SPC and capability are computed per key).
_CHARACTERISTIC_KEY = [
    StructField("plant", StringType(), False),
    StructField("line", StringType(), False),
    StructField("station", StringType(), False),
    StructField("characteristic", StringType(), False),
]

#: Which baseline a chart's limits came from (``redline.config.AnalysisConfig``): e.g.
#: "first 25 points", "first 5 subgroups of 5" or "2024-05-01..2024-05-07", and the event
#: times of its first and last point. Null while the series has no full baseline.
_BASELINE = [
    StructField("baseline", StringType(), True),
    StructField("baseline_start", TimestampType(), True),
    StructField("baseline_end", TimestampType(), True),
]

SPC_POINTS = StructType([
    *_CHARACTERISTIC_KEY,
    StructField("seq", LongType(), False),
    StructField("event_id", StringType(), False),
    StructField("event_time", TimestampType(), False),
    StructField("unit_serial", StringType(), False),
    StructField("value", DoubleType(), False),
    StructField("moving_range", DoubleType(), True),
    StructField("lsl", DoubleType(), True),
    StructField("usl", DoubleType(), True),
    StructField("in_baseline", BooleanType(), False),
    *_BASELINE,
    StructField("centre", DoubleType(), True),
    StructField("sigma", DoubleType(), True),
    StructField("lcl", DoubleType(), True),
    StructField("ucl", DoubleType(), True),
    StructField("mr_centre", DoubleType(), True),
    StructField("mr_ucl", DoubleType(), True),
    StructField("z", DoubleType(), True),
])

SPC_VIOLATIONS = StructType([
    *_CHARACTERISTIC_KEY,
    StructField("chart", StringType(), False),
    StructField("rule", IntegerType(), False),
    StructField("rule_name", StringType(), False),
    StructField("start_seq", LongType(), False),
    StructField("end_seq", LongType(), False),
    StructField("start_time", TimestampType(), False),
    StructField("end_time", TimestampType(), False),
    StructField("points", LongType(), False),
    StructField("event_ids", ArrayType(StringType(), False), False),
])

SPC_SUBGROUPS = StructType([
    *_CHARACTERISTIC_KEY,
    StructField("subgroup_size", IntegerType(), False),
    StructField("subgroup", LongType(), False),
    StructField("start_time", TimestampType(), False),
    StructField("end_time", TimestampType(), False),
    StructField("event_ids", ArrayType(StringType(), False), False),
    StructField("xbar", DoubleType(), False),
    StructField("range", DoubleType(), False),
    StructField("in_baseline", BooleanType(), False),
    *_BASELINE,
    StructField("xbar_centre", DoubleType(), True),
    StructField("xbar_lcl", DoubleType(), True),
    StructField("xbar_ucl", DoubleType(), True),
    StructField("sigma_xbar", DoubleType(), True),
    StructField("z", DoubleType(), True),
    StructField("r_centre", DoubleType(), True),
    StructField("r_lcl", DoubleType(), True),
    StructField("r_ucl", DoubleType(), True),
])

CAPABILITY = StructType([
    *_CHARACTERISTIC_KEY,
    StructField("period", StringType(), False),
    StructField("period_start", DateType(), False),
    StructField("lsl", DoubleType(), True),
    StructField("usl", DoubleType(), True),
    StructField("n", LongType(), False),
    StructField("mean", DoubleType(), False),
    StructField("sigma_within", DoubleType(), True),
    StructField("sigma_overall", DoubleType(), True),
    StructField("cp", DoubleType(), True),
    StructField("cpk", DoubleType(), True),
    StructField("pp", DoubleType(), True),
    StructField("ppk", DoubleType(), True),
    # status and min_n are set on every row, the intervals wherever their index is. All
    # nullable: a table of an older release is aligned by adding them (`lake.align_table`).
    StructField("status", StringType(), True),
    StructField("min_n", LongType(), True),
    StructField("cp_ci_low", DoubleType(), True),
    StructField("cp_ci_high", DoubleType(), True),
    StructField("cpk_ci_low", DoubleType(), True),
    StructField("cpk_ci_high", DoubleType(), True),
    StructField("pp_ci_low", DoubleType(), True),
    StructField("pp_ci_high", DoubleType(), True),
    StructField("ppk_ci_low", DoubleType(), True),
    StructField("ppk_ci_high", DoubleType(), True),
])

WEIBULL_FITS = StructType([
    StructField("level", StringType(), False),
    StructField("component", StringType(), False),
    StructField("supplier", StringType(), True),
    StructField("lot", StringType(), True),
    StructField("units", LongType(), False),
    StructField("failures", LongType(), False),
    StructField("observation_end", DateType(), False),
    StructField("status", StringType(), False),
    StructField("shape", DoubleType(), True),
    StructField("scale_days", DoubleType(), True),
    StructField("b10_days", DoubleType(), True),
    StructField("mean_life_days", DoubleType(), True),
    StructField("shape_ci_low", DoubleType(), True),
    StructField("shape_ci_high", DoubleType(), True),
    StructField("scale_ci_low", DoubleType(), True),
    StructField("scale_ci_high", DoubleType(), True),
    StructField("b10_ci_low_days", DoubleType(), True),
    StructField("b10_ci_high_days", DoubleType(), True),
    StructField("ci_method", StringType(), False),
])

#: gold.weibull_plot: one failure of a gold.weibull_fits group (same level, component,
#: supplier, lot) as a point of its Weibull probability plot: Johnson's adjusted rank,
#: Bernard's median rank F, the linearised coordinates (ln days, ln(-ln(1 - F))) and the
#: fitted line's ordinate shape * (ln days - ln scale) (null where the group has no fit).
WEIBULL_PLOT = StructType([
    StructField("level", StringType(), False),
    StructField("component", StringType(), False),
    StructField("supplier", StringType(), True),
    StructField("lot", StringType(), True),
    StructField("observation_end", DateType(), False),
    StructField("days", DoubleType(), False),
    StructField("failure_order", DoubleType(), False),
    StructField("median_rank", DoubleType(), False),
    StructField("ln_days", DoubleType(), False),
    StructField("weibull_y", DoubleType(), False),
    StructField("fitted_y", DoubleType(), True),
])

DTC_RATES = StructType([
    StructField("firmware_version", StringType(), False),
    StructField("dtc_code", StringType(), True),
    StructField("observation_end", DateType(), False),
    StructField("dtc_events", LongType(), False),
    StructField("vehicles", LongType(), False),
    StructField("vehicle_days", LongType(), False),
    StructField("dtc_per_1000_vehicles", DoubleType(), True),
    StructField("dtc_per_1000_vehicle_days", DoubleType(), True),
])

MTBF = StructType([
    StructField("component", StringType(), False),
    StructField("observation_end", DateType(), False),
    StructField("vehicles", LongType(), False),
    StructField("failures", LongType(), False),
    StructField("vehicle_days", LongType(), False),
    StructField("vehicle_months", DoubleType(), False),
    StructField("mtbf_days", DoubleType(), True),
    StructField("mtbf_months", DoubleType(), True),
    StructField("failures_per_1000_vehicle_months", DoubleType(), True),
    StructField("confidence", DoubleType(), False),
    StructField("mtbf_ci_low_days", DoubleType(), True),
    StructField("mtbf_ci_high_days", DoubleType(), True),
    StructField("rate_ci_low", DoubleType(), True),
    StructField("rate_ci_high", DoubleType(), True),
    StructField("ci_method", StringType(), False),
])

WARRANTY_TRIANGLE = StructType([
    StructField("build_month", DateType(), False),
    StructField("months_in_service", IntegerType(), False),
    StructField("observation_end", DateType(), False),
    StructField("vehicles_at_risk", LongType(), False),
    StructField("claims", LongType(), False),
    StructField("claims_per_1000", DoubleType(), False),
    StructField("cumulative_claims_per_1000", DoubleType(), False),
])

DEFECT_PARETO = StructType([
    StructField("pareto", StringType(), False),
    StructField("station", StringType(), True),
    StructField("component", StringType(), True),
    StructField("category", StringType(), False),
    StructField("supplier", StringType(), True),
    StructField("defects", LongType(), False),
    StructField("units", LongType(), True),
    StructField("defects_per_unit", DoubleType(), True),
    StructField("share", DoubleType(), False),
    StructField("cumulative_share", DoubleType(), False),
    StructField("rank", IntegerType(), False),
])


# --- manufacturing KPIs, attribution, dimensions, job runs --------------------------------
#: Counts shared by the station and line KPI tables (see jobs/manufacturing_kpis.py).
_KPI_COUNTS = [
    StructField("units", LongType(), False),
    StructField("first_pass_units", LongType(), False),
    StructField("fpy", DoubleType(), False),
    StructField("reworked_units", LongType(), False),
    StructField("rework_rate", DoubleType(), False),
    StructField("scrapped_units", LongType(), False),
    StructField("scrap_rate", DoubleType(), False),
    StructField("defects", LongType(), False),
    StructField("opportunities", LongType(), False),
    StructField("dpmo", DoubleType(), False),
]

STATION_KPIS = StructType([
    StructField("day", DateType(), False),
    StructField("plant", StringType(), False),
    StructField("line", StringType(), False),
    StructField("station", StringType(), False),
    StructField("shift", StringType(), False),
    StructField("characteristics", IntegerType(), False),
    *_KPI_COUNTS,
])

LINE_KPIS = StructType([
    StructField("day", DateType(), False),
    StructField("plant", StringType(), False),
    StructField("line", StringType(), False),
    StructField("shift", StringType(), False),
    StructField("stations", IntegerType(), False),
    StructField("rty", DoubleType(), False),
    *_KPI_COUNTS,
])

KPI_ATTRIBUTION = StructType([
    StructField("kpi", StringType(), False),
    StructField("baseline_start", DateType(), False),
    StructField("baseline_end", DateType(), False),
    StructField("current_start", DateType(), False),
    StructField("current_end", DateType(), False),
    StructField("scope", StringType(), False),
    StructField("scope_plant", StringType(), True),
    StructField("scope_line", StringType(), True),
    StructField("scope_station", StringType(), True),
    StructField("scope_units_baseline", LongType(), False),
    StructField("scope_units_current", LongType(), False),
    StructField("kpi_baseline", DoubleType(), True),
    StructField("kpi_current", DoubleType(), True),
    StructField("kpi_change", DoubleType(), True),
    StructField("dimension_kind", StringType(), False),
    StructField("dimension", StringType(), False),
    StructField("value", StringType(), False),
    StructField("units_baseline", LongType(), False),
    StructField("units_current", LongType(), False),
    StructField("events_baseline", LongType(), False),
    StructField("events_current", LongType(), False),
    StructField("mix_effect", DoubleType(), True),
    StructField("rate_effect", DoubleType(), True),
    StructField("contribution", DoubleType(), True),
    StructField("contribution_share", DoubleType(), True),
    StructField("rank", IntegerType(), False),
])

DIM_VEHICLE = StructType([
    StructField("vin", StringType(), False),
    StructField("model", StringType(), False),
    StructField("plant", StringType(), False),
    StructField("line", StringType(), False),
    StructField("build_date", DateType(), False),
    StructField("build_time", TimestampType(), False),
    StructField("build_firmware_version", StringType(), False),
    StructField("components", ArrayType(StructType([
        StructField("component", StringType(), False),
        StructField("supplier", StringType(), False),
        StructField("lot", StringType(), False),
    ]), False), False),
])

DIM_STATION = StructType([
    StructField("plant", StringType(), False),
    StructField("line", StringType(), False),
    StructField("station", StringType(), False),
    StructField("operation", StringType(), False),
    StructField("characteristics", ArrayType(StringType(), False), False),
    StructField("first_seen", TimestampType(), False),
    StructField("last_seen", TimestampType(), False),
])

DIM_SUPPLIER_LOT = StructType([
    StructField("component", StringType(), False),
    StructField("supplier", StringType(), False),
    StructField("lot", StringType(), False),
    StructField("vehicles", LongType(), False),
    StructField("first_build_date", DateType(), False),
    StructField("last_build_date", DateType(), False),
])

DIM_VEHICLE_FIRMWARE = StructType([
    StructField("vin", StringType(), False),
    StructField("firmware_version", StringType(), False),
    StructField("valid_from", TimestampType(), False),
    StructField("valid_to", TimestampType(), True),
    StructField("last_seen", TimestampType(), False),
    StructField("observations", LongType(), False),
    StructField("source", StringType(), False),
])

JOB_RUNS = StructType([
    StructField("run_id", StringType(), False),
    StructField("batch_id", StringType(), False),
    StructField("job", StringType(), False),
    StructField("started_at", TimestampType(), False),
    StructField("ended_at", TimestampType(), False),
    StructField("seconds", DoubleType(), False),
    StructField("status", StringType(), False),
    StructField("error", StringType(), True),
    StructField("inputs", ArrayType(StructType([
        StructField("table", StringType(), False),
        StructField("version", LongType(), True),
    ]), False), False),
    StructField("outputs", ArrayType(StructType([
        StructField("table", StringType(), False),
        StructField("version", LongType(), True),
        StructField("rows", LongType(), True),
    ]), False), False),
    StructField("metrics", MapType(StringType(), StringType(), True), False),
])

#: One row per silver micro-batch: what came in and where each record went, plus the
#: violations of every row rule (warn, drop and fail) in that batch.
SILVER_BATCHES = StructType([
    StructField("topic", StringType(), False),
    StructField("query_id", StringType(), False),
    StructField("batch_id", LongType(), False),
    StructField("started_at", TimestampType(), False),
    StructField("ended_at", TimestampType(), False),
    StructField("input_rows", LongType(), False),
    StructField("silver_rows", LongType(), False),
    StructField("quarantined_rows", LongType(), False),
    StructField("duplicate_rows", LongType(), False),
    StructField("min_kafka_timestamp", TimestampType(), True),
    StructField("max_kafka_timestamp", TimestampType(), True),
    StructField("rule_violations", ArrayType(StructType([
        StructField("rule", StringType(), False),
        StructField("action", StringType(), False),
        StructField("rows", LongType(), False),
    ]), False), False),
])

#: ops.spc_alerts: one row per gold.spc_violations episode `redline alerts` has dealt with,
#: posted to the webhook or skipped (older than the run's --since). The first seven columns
#: are the episode's identity (the key of gold.spc_violations); the rest is the episode as
#: it was when posted (it may have grown since).
SPC_ALERTS = StructType([
    *_CHARACTERISTIC_KEY,
    StructField("chart", StringType(), False),
    StructField("rule", IntegerType(), False),
    StructField("start_seq", LongType(), False),
    StructField("rule_name", StringType(), False),
    StructField("end_seq", LongType(), False),
    StructField("start_time", TimestampType(), False),
    StructField("end_time", TimestampType(), False),
    StructField("points", LongType(), False),
    StructField("status", StringType(), False),
    StructField("recorded_at", TimestampType(), False),
    StructField("http_status", IntegerType(), True),
    StructField("text", StringType(), True),
])

#: ops.quality_results: one row per expectation per table per gate run.
QUALITY_RESULTS = StructType([
    StructField("run_id", StringType(), False),
    StructField("validated_at", TimestampType(), False),
    StructField("table", StringType(), False),
    StructField("delta_version", LongType(), True),
    StructField("check", StringType(), False),
    StructField("expectation", StringType(), False),
    StructField("column", StringType(), True),
    StructField("severity", StringType(), False),
    StructField("mostly", DoubleType(), True),
    StructField("success", BooleanType(), False),
    StructField("observed_value", StringType(), True),
    StructField("unexpected_count", LongType(), True),
    StructField("unexpected_percent", DoubleType(), True),
    StructField("sample_values", ArrayType(StringType(), True), True),
    StructField("detail", StringType(), True),
])
