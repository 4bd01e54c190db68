"""Topic payloads: one versioned source of truth for JSON events and their Spark types.

Every event carries ``event_id`` (UUID), ``event_time`` (ISO-8601 UTC) and
``schema_version``. A new version of a payload is added beside the old one, never edited
in place. This module imports nothing of redline's.
"""

from __future__ import annotations

from dataclasses import dataclass

from pyspark.sql.types import (
    ArrayType,
    BooleanType,
    DateType,
    DoubleType,
    IntegerType,
    StringType,
    StructField,
    StructType,
    TimestampType,
)

ENVELOPE = [
    StructField("event_id", StringType(), False),
    StructField("event_time", TimestampType(), False),
    StructField("schema_version", IntegerType(), False),
]


@dataclass(frozen=True)
class Payload:
    """One version of one topic's payload."""

    name: str
    """Logical topic name; the Kafka topic is the configured prefix plus this."""
    version: int
    fields: tuple[StructField, ...]
    key: str
    """Payload field used as the Kafka message key (keeps one vehicle/unit in order)."""
    description: str

    @property
    def struct(self) -> StructType:
        return StructType(list(ENVELOPE) + list(self.fields))

    @property
    def required(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.struct.fields if not f.nullable)


def _f(name: str, dtype, nullable: bool = True) -> StructField:
    return StructField(name, dtype, nullable)


MEASUREMENT = StructType([
    _f("characteristic", StringType(), False),
    _f("value", DoubleType(), False),
    _f("unit", StringType()),
    _f("lsl", DoubleType()),
    _f("usl", DoubleType()),
    _f("target", DoubleType()),
])

COMPONENT = StructType([
    _f("component", StringType(), False),
    _f("supplier", StringType(), False),
    _f("lot", StringType(), False),
])

TYRES = StructType([_f(k, DoubleType()) for k in ("fl", "fr", "rl", "rr")])

VEHICLE_TELEMETRY_V1 = Payload(
    "vehicle_telemetry", 1,
    (
        _f("vin", StringType(), False),
        _f("odometer_km", DoubleType(), False),
        _f("speed_kph", DoubleType()),
        _f("battery_soc_pct", DoubleType()),
        _f("battery_temp_c", DoubleType()),
        _f("motor_temp_c", DoubleType()),
        _f("coolant_temp_c", DoubleType()),
        _f("ambient_temp_c", DoubleType()),
        _f("tyre_pressure_kpa", TYRES),
    ),
    key="vin",
    description="Periodic signals from a vehicle in the field.",
)

# Version 2 adds one optional signal (firmware FW-3.2.x and later report it). Producers of
# version 1 keep working: their records land with the new column null.
VEHICLE_TELEMETRY_V2 = Payload(
    "vehicle_telemetry", 2,
    (*VEHICLE_TELEMETRY_V1.fields, _f("hv_battery_voltage_v", DoubleType())),
    key="vin",
    description="Periodic signals from a vehicle in the field; v2 adds the high-voltage "
                "battery voltage.",
)

VEHICLE_DTC_V1 = Payload(
    "vehicle_dtc", 1,
    (
        _f("vin", StringType(), False),
        _f("dtc_code", StringType(), False),
        _f("severity", StringType(), False),
        _f("ecu", StringType()),
        _f("firmware_version", StringType(), False),
        _f("odometer_km", DoubleType()),
    ),
    key="vin",
    description="A diagnostic trouble code set by an ECU.",
)

VEHICLE_BUILD_V1 = Payload(
    "vehicle_builds", 1,
    (
        _f("vin", StringType(), False),
        _f("model", StringType(), False),
        _f("plant", StringType(), False),
        _f("line", StringType(), False),
        _f("build_date", DateType(), False),
        _f("firmware_version", StringType(), False),
        _f("components", ArrayType(COMPONENT, False), False),
    ),
    key="vin",
    description="How a vehicle was built: where, when, firmware, component suppliers and lots.",
)

STATION_RESULT_V1 = Payload(
    "station_results", 1,
    (
        _f("unit_serial", StringType(), False),
        _f("plant", StringType(), False),
        _f("line", StringType(), False),
        _f("station", StringType(), False),
        _f("operation", StringType(), False),
        _f("shift", StringType(), False),
        _f("attempt", IntegerType(), False),
        _f("result", StringType(), False),
        _f("measurements", ArrayType(MEASUREMENT, False)),
        _f("defect_codes", ArrayType(StringType(), False)),
        _f("cycle_time_s", DoubleType()),
    ),
    key="unit_serial",
    description="One test or operation on one unit at one station (attempt 1 = first pass).",
)

WARRANTY_CLAIM_V1 = Payload(
    "warranty_claims", 1,
    (
        _f("claim_id", StringType(), False),
        _f("vin", StringType(), False),
        _f("component", StringType(), False),
        _f("failure_date", DateType(), False),
        _f("mileage_km", DoubleType()),
        _f("cost_eur", DoubleType()),
        _f("description", StringType()),
    ),
    key="vin",
    description="A warranty claim on a component of a vehicle.",
)

# --- public data sets replayed through Kafka (streaming/replay.py) ------------------------
# Neither source has a clock, so event_time is synthesised deterministically (see
# streaming/replay.py) and event_id is uuid5(dataset, file, line) so a second replay of
# the same file produces the same ids and silver deduplicates it.

CMAPSS_CYCLE_V1 = Payload(
    "cmapss_cycles", 1,
    (
        _f("engine_id", StringType(), False),
        _f("dataset", StringType(), False),
        _f("split", StringType(), False),
        _f("unit_id", IntegerType(), False),
        _f("cycle", IntegerType(), False),
        *(_f(f"op_setting_{i}", DoubleType(), False) for i in range(1, 4)),
        *(_f(f"sensor_{i}", DoubleType(), False) for i in range(1, 22)),
    ),
    key="engine_id",
    description="NASA C-MAPSS turbofan: one engine (unit) in one operating cycle; "
                "engine_id is '<dataset>-<split>-<unit>' (unit numbers repeat across files).",
)

AI4I_PROCESS_V1 = Payload(
    "ai4i_process", 1,
    (
        _f("udi", IntegerType(), False),
        _f("product_id", StringType(), False),
        _f("type", StringType(), False),
        _f("air_temperature_k", DoubleType(), False),
        _f("process_temperature_k", DoubleType(), False),
        _f("rotational_speed_rpm", IntegerType(), False),
        _f("torque_nm", DoubleType(), False),
        _f("tool_wear_min", IntegerType(), False),
        _f("machine_failure", BooleanType(), False),
        *(_f(mode, BooleanType(), False) for mode in ("twf", "hdf", "pwf", "osf", "rnf")),
    ),
    key="product_id",
    description="AI4I 2020 milling process: one process run of one product with its "
                "failure flags (twf tool wear, hdf heat dissipation, pwf power, "
                "osf overstrain, rnf random).",
)

#: Topics fed by the simulator (streaming/simulator.py).
SIMULATED_TOPICS: tuple[str, ...] = (
    "vehicle_telemetry", "vehicle_dtc", "vehicle_builds", "station_results", "warranty_claims")
#: Topics fed by replaying public data sets (streaming/replay.py), not by the simulator.
DATASET_TOPICS: tuple[str, ...] = ("cmapss_cycles", "ai4i_process")

#: Every topic with its versions; the highest version is what producers write today.
PAYLOADS: dict[str, dict[int, Payload]] = {}
for _p in (VEHICLE_TELEMETRY_V1, VEHICLE_TELEMETRY_V2, VEHICLE_DTC_V1, VEHICLE_BUILD_V1,
           STATION_RESULT_V1, WARRANTY_CLAIM_V1, CMAPSS_CYCLE_V1, AI4I_PROCESS_V1):
    PAYLOADS.setdefault(_p.name, {})[_p.version] = _p


def check_evolution(versions: dict[int, Payload]) -> None:
    """Refuse an incompatible change between consecutive versions of one payload.

    Silver holds every version of a topic in one table typed by the latest version, so a
    new version may only add nullable fields: an existing field keeps its name, type and
    nullability. Anything else needs a new topic (or a migration), never a silent cast.
    """
    ordered = [versions[v] for v in sorted(versions)]
    for old, new in zip(ordered, ordered[1:]):
        fields = {f.name: f for f in new.struct.fields}
        for f in old.struct.fields:
            if f.name not in fields:
                raise ValueError(f"{new.name} v{new.version} removes field {f.name}")
            g = fields[f.name]
            if g.dataType != f.dataType or g.nullable != f.nullable:
                raise ValueError(
                    f"{new.name} v{new.version} changes field {f.name} from "
                    f"{f.dataType.simpleString()}{'' if f.nullable else ' not null'} to "
                    f"{g.dataType.simpleString()}{'' if g.nullable else ' not null'}")
        added = [g.name for g in new.struct.fields
                 if g.name not in {f.name for f in old.struct.fields} and not g.nullable]
        if added:
            raise ValueError(f"{new.name} v{new.version} adds required field(s) {added}; "
                             f"a new field must be optional")


for _versions in PAYLOADS.values():
    check_evolution(_versions)


def latest(name: str) -> Payload:
    versions = PAYLOADS[name]
    return versions[max(versions)]

