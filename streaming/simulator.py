"""A deterministic fleet and factory that emit every topic's events, with planted problems.

The simulator is a pure generator: the same ``SimulationSpec`` (seed included) always
yields the same events in the same order. Publishing to Kafka is done by
``streaming.producer``. The planted problems below are the ground truth that the
analytics must find; tests import ``PLANTED`` instead of repeating its values.

The factory: three lines build units over the first half of the period, each unit tested
at four stations in turn (two or three measured characteristics each, with true Cpk from
about 0.8 to 2, and attribute defects found by inspection), reworked and retested up to
twice when a test fails. The fleet's vehicles are some of those units: they also have a
build record (model, firmware, the supplier lots of their parts) and a life in the field
(telemetry, DTCs, warranty claims). With ``units_per_line_day`` the lines build that many
units a day in all; the ones beyond the fleet have station results only. Defect codes
follow a long tail: the planted battery lot, paint scratches and trim gaps make about
three quarters of the defects, a dozen rarer codes the rest. Night shift (C) is a little
worse. docs/simulated-data.md lists the characteristics and rates.
"""

from __future__ import annotations

import math
import random
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

# --- the factory and the fleet ---------------------------------------------------------

PLANTS: dict[str, tuple[str, ...]] = {"PLT-A": ("L1", "L2"), "PLT-B": ("L1",)}
MODELS = ("Volta S", "Volta X")
SHIFTS = (("A", 6), ("B", 14), ("C", 22))  # shift name, start hour


@dataclass(frozen=True)
class Characteristic:
    """A measured characteristic: its specification and how the process really runs."""

    name: str
    unit: str
    lsl: float
    usl: float
    target: float
    """The specification's nominal, sent with each measurement."""
    mean: float
    """Where the process is centred (not always on target)."""
    sigma: float
    defect_code: str
    """The defect a value outside the specification raises."""


@dataclass(frozen=True)
class Station:
    station: str
    operation: str
    characteristics: tuple[Characteristic, ...]
    defects: tuple[tuple[str, float], ...] = ()
    """Attribute defects found by inspection, not measured: (code, chance on a unit's first
    test at the station, day shift)."""


_c = Characteristic  # a short name for the table below


#: Every unit visits the stations in this order. The first characteristic of each station
#: is the one the planted problems act on. True Cpk, min(USL - mean, mean - LSL) / 3 sigma
#: (worked out at the end of each line), ranges from poor (about 0.8: coolant leak rate,
#: headlamp aim) to excellent (about 2: clamp force, insulation); attribute defects give
#: the Pareto its long tail, with paint scratches and trim gaps behind the planted battery
#: lot at the head.
STATIONS = (
    Station("S010", "chassis_bolting", (
        _c("bolt_torque_nm", "Nm", 45.0, 55.0, 50.0, 50.0, 1.0, "D-TORQUE"),          # 1.67
        _c("bolt_angle_deg", "deg", 30.0, 60.0, 45.0, 46.0, 3.5, "D-BOLT-ANGLE"),     # 1.33
        _c("clamp_force_kn", "kN", 18.0, 26.0, 22.0, 22.0, 0.67, "D-CLAMP-FORCE")),  # 1.99
        (("D-CROSS-THREAD", 0.006), ("D-MISSING-CLIP", 0.002))),
    Station("S020", "coolant_leak_test", (
        _c("leak_rate_ccm", "ccm", 0.0, 5.0, 2.0, 2.8, 0.9, "D-LEAK"),                # 0.81
        _c("fill_pressure_kpa", "kPa", 140.0, 160.0, 150.0, 150.5, 2.4, "D-FILL-PRESSURE")),
        (("D-HOSE-CLAMP", 0.005), ("D-COOLANT-LEVEL", 0.003))),                       # 1.32
    Station("S030", "battery_install", (
        _c("pack_voltage_v", "V", 390.0, 410.0, 400.0, 400.0, 2.0, "D-BM-CELL-IMBALANCE"),
        _c("cell_delta_mv", "mV", 0.0, 30.0, 10.0, 11.0, 3.4, "D-CELL-DELTA")),       # 1.08
        (("D-CONNECTOR-SEAT", 0.006),)),
    Station("S040", "end_of_line", (
        _c("insulation_mohm", "MOhm", 100.0, 1000.0, 500.0, 520.0, 70.0, "D-EOL-INSULATION"),
        _c("headlamp_aim_mrad", "mrad", -5.0, 5.0, 0.0, 1.0, 1.65, "D-LAMP-AIM")),    # 0.81
        (("D-PAINT-SCRATCH", 0.035), ("D-TRIM-GAP", 0.025), ("D-SOFTWARE-FLASH", 0.008),
         ("D-LABEL", 0.0015))),
)

#: Night-shift work is a little worse: measurement spread and attribute defects are scaled
#: by this factor on shift C.
NIGHT_SHIFT = ("C", 1.15)

SUPPLIERS: dict[str, tuple[tuple[str, tuple[str, ...]], ...]] = {
    # component: ((supplier, lots), ...)
    "battery_module": (("VoltCell", ("LOT-BM-0411", "LOT-BM-0412", "LOT-BM-0413")),
                       ("Northpole Energy", ("LOT-BM-2201", "LOT-BM-2202"))),
    "coolant_pump": (("ThermaFlow", ("LOT-CP-0076", "LOT-CP-0077")),
                     ("AquaDyn", ("LOT-CP-5501", "LOT-CP-5502"))),
    "drive_motor": (("Magnetix", ("LOT-DM-0100", "LOT-DM-0101")),),
    "inverter": (("Siliconvolt", ("LOT-IN-3000", "LOT-IN-3001")),),
}
FIRMWARE = ("FW-3.1.4", "FW-3.2.0", "FW-3.2.1")
#: Firmware from which vehicles send vehicle_telemetry schema version 2.
TELEMETRY_V2_FIRMWARE = "FW-3.2.0"

# --- planted problems: the ground truth ---------------------------------------------------

PLANTED = {
    "drift": {
        "what": "bolt torque at PLT-A/L1/S010 drifts upward from day 15 (+0.12 Nm a day), "
                "so SPC trips and first-pass yield drops there",
        "plant": "PLT-A", "line": "L1", "station": "S010",
        "characteristic": "bolt_torque_nm", "start_day": 15, "nm_per_day": 0.12,
    },
    "bad_lot": {
        "what": "battery modules of lot LOT-BM-0413 (VoltCell) fail the pack voltage test "
                "at S030 far more often (defect D-BM-CELL-IMBALANCE)",
        "component": "battery_module", "supplier": "VoltCell", "lot": "LOT-BM-0413",
        "station": "S030", "defect_code": "D-BM-CELL-IMBALANCE", "fail_rate": 0.45,
        "base_fail_rate": 0.02,
    },
    "firmware": {
        "what": "firmware FW-3.2.0 sets DTC P0A1F (battery energy control module) far more often",
        "firmware_version": "FW-3.2.0", "dtc_code": "P0A1F", "rate_per_day": 0.25,
        "base_rate_per_day": 0.02,
    },
    "hazard": {
        "what": "coolant pumps of lot LOT-CP-0077 (ThermaFlow) wear out early (Weibull "
                "shape 2.5, scale 45 days in service); coolant temperature climbs in the "
                "two weeks before the failure",
        "component": "coolant_pump", "supplier": "ThermaFlow", "lot": "LOT-CP-0077",
        "weibull_shape": 2.5, "weibull_scale_days": 45.0,
        "base_weibull_shape": 1.2, "base_weibull_scale_days": 3000.0,
    },
}

#: Units a line builds a day in the demo and ``redline simulate`` (enough for a daily
#: first-pass yield to mean something).
FACTORY_UNITS_PER_LINE_DAY = 100

DTC_BASE = ("P0A80", "U0100", "C0035", "P0A1F")


@dataclass(frozen=True)
class SimulationSpec:
    vehicles: int = 200
    """Vehicles built over the first half of the simulated period."""
    days: int = 60
    """Length of the simulated period in days."""
    start: date = date(2026, 1, 5)
    telemetry_per_day: int = 2
    """Telemetry records per vehicle per day in the field."""
    units_per_line_day: int = 0
    """Units each line builds a day in the first half of the period, the fleet's vehicles
    included: the others are tested at every station (station results) but have no build
    record and no field life. 0: the fleet's vehicles only. The demo builds
    ``FACTORY_UNITS_PER_LINE_DAY``."""
    seed: int = 7


@dataclass(frozen=True)
class Event:
    topic: str
    key: str
    payload: dict


def _iso(ts: datetime) -> str:
    return ts.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def _weibull_days(rng: random.Random, shape: float, scale: float) -> float:
    return scale * (-math.log(1.0 - rng.random())) ** (1.0 / shape)


class Simulator:
    """Generates events day by day; iterate over ``events()``."""

    def __init__(self, spec: SimulationSpec):
        if spec.vehicles < 1 or spec.days < 2:
            raise ValueError("a simulation needs at least 1 vehicle and 2 days")
        if spec.units_per_line_day < 0:
            raise ValueError("units_per_line_day cannot be negative")
        self.spec = spec
        self.rng = random.Random(spec.seed)
        self.vehicles = [self._vehicle(i) for i in range(spec.vehicles)]

    # -- helpers -----------------------------------------------------------------------
    def _uuid(self) -> str:
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    def _envelope(self, ts: datetime) -> dict:
        return {"event_id": self._uuid(), "event_time": _iso(ts), "schema_version": 1}

    def _vehicle(self, i: int) -> dict:
        rng = self.rng
        plant = rng.choice(sorted(PLANTS))
        build_day = int(i * (self.spec.days / 2) / self.spec.vehicles)
        components = []
        for component, suppliers in SUPPLIERS.items():
            supplier, lots = rng.choice(suppliers)
            components.append({"component": component, "supplier": supplier,
                               "lot": rng.choice(lots)})
        vehicle = {
            "vin": f"RDL{plant[-1]}{i:013d}",
            "model": rng.choice(MODELS),
            "plant": plant,
            "line": rng.choice(PLANTS[plant]),
            "build_day": build_day,
            "firmware_version": rng.choice(FIRMWARE),
            "components": components,
            "daily_km": rng.uniform(20, 90),
        }
        vehicle["failures"] = self._failures(vehicle)
        return vehicle

    def _failures(self, vehicle: dict) -> dict[str, float]:
        """Days in service until each component fails (may be past the horizon)."""
        hz = PLANTED["hazard"]
        out = {}
        for comp in vehicle["components"]:
            bad = (comp["component"] == hz["component"] and comp["lot"] == hz["lot"])
            shape = hz["weibull_shape"] if bad else hz["base_weibull_shape"]
            scale = hz["weibull_scale_days"] if bad else hz["base_weibull_scale_days"]
            out[comp["component"]] = _weibull_days(self.rng, shape, scale)
        return out

    def _lot(self, vehicle: dict, component: str) -> str:
        return next(c["lot"] for c in vehicle["components"] if c["component"] == component)

    def _production(self, day: int, built: dict[tuple[str, str], int]
                    ) -> Iterator[tuple[tuple[str, str], int]]:
        """(plant and line, unit number) of the units each line builds on ``day`` beside
        the fleet's vehicles, up to ``units_per_line_day``."""
        for plant, lines in sorted(PLANTS.items()):
            for line in lines:
                for k in range(built.get((plant, line), 0), self.spec.units_per_line_day):
                    yield (plant, line), k

    def _unit(self, plant: str, line: str, day: int, k: int) -> dict:
        """A unit built beside the fleet: the parts it was built with, no field life."""
        components = []
        for component, suppliers in SUPPLIERS.items():
            supplier, lots = self.rng.choice(suppliers)
            components.append({"component": component, "supplier": supplier,
                               "lot": self.rng.choice(lots)})
        # 17 characters like a fleet VIN; the 9 after the plant letter keeps them apart.
        return {"vin": f"RDL{plant[-1]}9{line[-1]}{day:05d}{k:06d}", "plant": plant,
                "line": line, "components": components}

    # -- generation ------------------------------------------------------------------
    def events(self) -> Iterator[Event]:
        """Every event of the simulation, in event-time order within each day."""
        claimed: set[tuple[str, str]] = set()
        for day in range(self.spec.days):
            todays: list[tuple[datetime, Event]] = []
            built: dict[tuple[str, str], int] = {}
            for v in self.vehicles:
                if v["build_day"] == day:
                    todays.extend(self._build_events(v, day))
                    built[v["plant"], v["line"]] = built.get((v["plant"], v["line"]), 0) + 1
                elif v["build_day"] < day:
                    todays.extend(self._field_events(v, day, claimed))
            if day < self.spec.days / 2:  # the plants build in the first half, as the fleet
                for (plant, line), k in self._production(day, built):
                    todays.extend(self._build_events(self._unit(plant, line, day, k), day,
                                                     fleet=False))
            todays.sort(key=lambda pair: pair[0])
            for _, event in todays:
                yield event

    def _day_start(self, day: int) -> datetime:
        d = self.spec.start + timedelta(days=day)
        return datetime(d.year, d.month, d.day, tzinfo=UTC)

    def _build_events(self, v: dict, day: int, fleet: bool = True
                      ) -> list[tuple[datetime, Event]]:
        """A unit's station results, retests included; a fleet vehicle's build record."""
        rng = self.rng
        shift, hour = rng.choice(SHIFTS)
        t = self._day_start(day) + timedelta(hours=hour, minutes=rng.uniform(0, 420))
        out = []
        for st in STATIONS:
            attempt = 1
            while True:
                t += timedelta(seconds=rng.uniform(60, 240))
                measurements, defects = self._test(v, st, day, attempt, shift)
                passed = not defects
                payload = {
                    **self._envelope(t), "unit_serial": v["vin"], "plant": v["plant"],
                    "line": v["line"], "station": st.station, "operation": st.operation,
                    "shift": shift, "attempt": attempt, "result": "PASS" if passed else "FAIL",
                    "measurements": measurements,
                    "defect_codes": defects, "cycle_time_s": round(rng.uniform(40, 90), 1),
                }
                out.append((t, Event("station_results", v["vin"], payload)))
                if passed or attempt >= 3:
                    break
                attempt += 1  # rework, then retest
        if not fleet:
            return out
        t += timedelta(minutes=5)
        build = {**self._envelope(t), "vin": v["vin"], "model": v["model"],
                 "plant": v["plant"], "line": v["line"],
                 "build_date": (self.spec.start + timedelta(days=day)).isoformat(),
                 "firmware_version": v["firmware_version"], "components": v["components"]}
        out.append((t, Event("vehicle_builds", v["vin"], build)))
        return out

    def _test(self, v: dict, st: Station, day: int, attempt: int, shift: str
              ) -> tuple[list[dict], list[str]]:
        """One test of a unit at a station: its measurements and the defects found."""
        rng = self.rng
        night = NIGHT_SHIFT[1] if shift == NIGHT_SHIFT[0] else 1.0
        drift, lot = PLANTED["drift"], PLANTED["bad_lot"]
        measurements, defects = [], []
        for i, ch in enumerate(st.characteristics):
            value = rng.gauss(ch.mean, ch.sigma * night)
            if (i == 0 and attempt == 1 and st.station == drift["station"]
                    and v["plant"] == drift["plant"] and v["line"] == drift["line"]
                    and day >= drift["start_day"]):
                value += drift["nm_per_day"] * (day - drift["start_day"])
            if i == 0 and st.station == lot["station"] and attempt == 1 \
                    and ch.lsl <= value <= ch.usl:
                bad = self._lot(v, lot["component"]) == lot["lot"]
                if rng.random() < (lot["fail_rate"] if bad else lot["base_fail_rate"]):
                    value = ch.usl + abs(rng.gauss(2.0, 1.0))
            if not ch.lsl <= value <= ch.usl:
                defects.append(ch.defect_code)
            measurements.append({"characteristic": ch.name, "value": round(value, 4),
                                 "unit": ch.unit, "lsl": ch.lsl, "usl": ch.usl,
                                 "target": ch.target})
        # Rework fixes most of what inspection found; a retest finds a fifth as much.
        found = night * (1.0 if attempt == 1 else 0.2)
        defects.extend(code for code, chance in st.defects if rng.random() < chance * found)
        return measurements, defects

    def _field_events(self, v: dict, day: int, claimed: set) -> list[tuple[datetime, Event]]:
        rng, spec = self.rng, self.spec
        age = day - v["build_day"]
        start = self._day_start(day)
        out = []
        pump_fail = v["failures"]["coolant_pump"]
        for k in range(spec.telemetry_per_day):
            t = start + timedelta(hours=7 + k * (12 / spec.telemetry_per_day),
                                  minutes=rng.uniform(0, 50))
            odo = v["daily_km"] * (age - 1 + (k + 1) / spec.telemetry_per_day)
            # A wearing pump shows as coolant temperature climbing before it fails.
            pre_failure = max(0.0, 14.0 - (pump_fail - age))
            coolant = rng.gauss(68.0, 2.0) + 1.2 * min(pre_failure, 14.0)
            payload = {
                **self._envelope(t), "vin": v["vin"], "odometer_km": round(odo, 1),
                "speed_kph": round(max(0.0, rng.gauss(55, 25)), 1),
                "battery_soc_pct": round(min(100.0, max(3.0, rng.gauss(62, 18))), 1),
                "battery_temp_c": round(rng.gauss(29, 3), 2),
                "motor_temp_c": round(rng.gauss(74, 6), 2),
                "coolant_temp_c": round(coolant, 2),
                "ambient_temp_c": round(rng.gauss(8, 5), 1),
                "tyre_pressure_kpa": {w: round(rng.gauss(250, 6), 1)
                                      for w in ("fl", "fr", "rl", "rr")},
            }
            if v["firmware_version"] >= TELEMETRY_V2_FIRMWARE:
                # Newer firmware sends telemetry v2 (one more optional signal); derived
                # from the state of charge so the random stream stays the same.
                payload["schema_version"] = 2
                payload["hv_battery_voltage_v"] = round(330.0 + 0.9 * payload["battery_soc_pct"], 1)
            out.append((t, Event("vehicle_telemetry", v["vin"], payload)))
        fw = PLANTED["firmware"]
        rate = fw["rate_per_day"] if v["firmware_version"] == fw["firmware_version"] else 0.0
        if rng.random() < rate:
            out.append(self._dtc(v, start, age, fw["dtc_code"]))
        if rng.random() < fw["base_rate_per_day"]:
            out.append(self._dtc(v, start, age, rng.choice(DTC_BASE)))
        for component, fail_age in v["failures"].items():
            if (v["vin"], component) not in claimed and age - 1 < fail_age <= age:
                claimed.add((v["vin"], component))
                t = start + timedelta(hours=rng.uniform(8, 18))
                out.append((t, Event("warranty_claims", v["vin"], {
                    **self._envelope(t), "claim_id": f"WC-{self._uuid()[:8].upper()}",
                    "vin": v["vin"], "component": component,
                    "failure_date": start.date().isoformat(),
                    "mileage_km": round(v["daily_km"] * age, 1),
                    "cost_eur": round(rng.uniform(300, 2500), 2),
                    "description": f"{component.replace('_', ' ')} failure",
                })))
        return out

    def _dtc(self, v: dict, start: datetime, age: int, code: str) -> tuple[datetime, Event]:
        t = start + timedelta(hours=self.rng.uniform(6, 22))
        return t, Event("vehicle_dtc", v["vin"], {
            **self._envelope(t), "vin": v["vin"], "dtc_code": code,
            "severity": "HIGH" if code == "P0A1F" else "MEDIUM", "ecu": "BECM",
            "firmware_version": v["firmware_version"],
            "odometer_km": round(v["daily_km"] * age, 1)})
