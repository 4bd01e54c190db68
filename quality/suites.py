"""Expectation suites for every table of the catalog, declared as data.

Most checks are derived from the catalog (``checks_for``): keys not null and unique, a
row count, no blank strings in key and required text columns, no all-null column,
freshness, references to the dimension tables, volume against the previously validated
version and the mean of a few key columns against it. ``HAND_WRITTEN`` adds what only a
person knows: ranges, pairs of columns, allowed values. Each check is an ``error`` (fails
the gate) or a ``warn`` (reported and recorded), with a ``mostly`` threshold where a share
of bad rows is tolerable.

A hand-written entry is (GX expectation class name, keyword arguments), or a ``Check``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from redline import catalog
from redline.catalog import Layer, Table
from redline.config import CAPABILITY_PERIODS
from redline.errors import RedlineError

ERROR = "error"
WARN = "warn"
SEVERITIES = (ERROR, WARN)


@dataclass(frozen=True)
class Check:
    """One expectation on one table."""

    expectation: str
    """GX expectation class name, e.g. ``ExpectColumnValuesToBeBetween``."""
    kwargs: Mapping[str, object] = field(default_factory=dict)
    severity: str = ERROR
    label: str = ""
    """What the check is for, when the expectation alone does not say (``freshness``,
    ``volume``, ``reference gold.dim_station``)."""

    def __post_init__(self) -> None:
        if self.severity not in SEVERITIES:
            raise RedlineError("QUALITY_SEVERITY", f"severity {self.severity!r} of "
                                                   f"{self.expectation}: use error or warn")

    @property
    def column(self) -> str:
        k = self.kwargs
        if "column" in k:
            return str(k["column"])
        if "column_A" in k:
            return f"{k['column_A']},{k['column_B']}"
        if "column_list" in k:
            return ",".join(map(str, k["column_list"]))
        return ""

    @property
    def id(self) -> str:
        """Unique within a table's suite: expectation, columns and label."""
        return f"{self.expectation}({self.column})" + (f" {self.label}" if self.label else "")


def _as_check(entry: Check | tuple[str, dict]) -> Check:
    return entry if isinstance(entry, Check) else Check(entry[0], entry[1])


#: The ``kpi`` values of gold.kpi_attribution (jobs/attribution.py's ``KPIS``).
ATTRIBUTION_KPIS = ["fpy", "dpmo", "scrap_rate", "rework_rate", "rty"]

HAND_WRITTEN: dict[str, list[Check | tuple[str, dict]]] = {
    "gold.first_pass_yield": [
        ("ExpectTableRowCountToBeBetween", {"min_value": 1}),
        *[("ExpectColumnValuesToNotBeNull", {"column": c})
          for c in ("day", "plant", "line", "station", "units", "first_pass_units", "fpy")],
        ("ExpectColumnValuesToBeBetween", {"column": "fpy", "min_value": 0.0, "max_value": 1.0}),
        ("ExpectColumnValuesToBeBetween", {"column": "units", "min_value": 1}),
        ("ExpectColumnPairValuesAToBeGreaterThanB",
         {"column_A": "units", "column_B": "first_pass_units", "or_equal": True}),
        ("ExpectCompoundColumnsToBeUnique",
         {"column_list": ["day", "plant", "line", "station"]}),
    ],
}


def _kpi_suite(key: list[str]) -> list[tuple[str, dict]]:
    rates = ("fpy", "rework_rate", "scrap_rate")
    return [
        ("ExpectTableRowCountToBeBetween", {"min_value": 1}),
        *[("ExpectColumnValuesToNotBeNull", {"column": c}) for c in [*key, "units", *rates]],
        *[("ExpectColumnValuesToBeBetween", {"column": c, "min_value": 0.0, "max_value": 1.0})
          for c in rates],
        ("ExpectColumnValuesToBeBetween", {"column": "dpmo", "min_value": 0.0}),
        ("ExpectColumnPairValuesAToBeGreaterThanB",
         {"column_A": "units", "column_B": "first_pass_units", "or_equal": True}),
        ("ExpectCompoundColumnsToBeUnique", {"column_list": key}),
    ]


HAND_WRITTEN.update({
    "gold.station_kpis": _kpi_suite(["day", "plant", "line", "station", "shift"]),
    "gold.line_kpis": [
        *_kpi_suite(["day", "plant", "line", "shift"]),
        ("ExpectColumnValuesToBeBetween", {"column": "rty", "min_value": 0.0,
                                           "max_value": 1.0}),
    ],
    "gold.dim_vehicle": [
        ("ExpectTableRowCountToBeBetween", {"min_value": 1}),
        ("ExpectColumnValuesToBeUnique", {"column": "vin"}),
        *[("ExpectColumnValuesToNotBeNull", {"column": c})
          for c in ("vin", "model", "plant", "build_date", "build_firmware_version")],
    ],
    "gold.dim_vehicle_firmware": [
        ("ExpectTableRowCountToBeBetween", {"min_value": 1}),
        ("ExpectCompoundColumnsToBeUnique", {"column_list": ["vin", "valid_from"]}),
        ("ExpectColumnPairValuesAToBeGreaterThanB",
         {"column_A": "valid_to", "column_B": "valid_from", "or_equal": True,
          "ignore_row_if": "either_value_is_missing"}),
        ("ExpectColumnValuesToBeInSet", {"column": "source", "value_set": ["build", "dtc"]}),
    ],
    "gold.kpi_attribution": [
        ("ExpectColumnValuesToNotBeNull", {"column": "scope"}),
        ("ExpectColumnValuesToBeInSet", {"column": "kpi", "value_set": ATTRIBUTION_KPIS}),
        ("ExpectColumnValuesToBeInSet", {"column": "dimension_kind",
                                         "value_set": ["population", "failure_mode"]}),
        ("ExpectCompoundColumnsToBeUnique",
         {"column_list": ["kpi", "scope", "dimension", "value"]}),
        ("ExpectColumnValuesToBeBetween", {"column": "rank", "min_value": 1}),
        # Every KPI is a count ratio or a yield: none is negative.
        *[("ExpectColumnValuesToBeBetween", {"column": c, "min_value": 0})
          for c in ("scope_units_baseline", "scope_units_current", "units_baseline",
                    "units_current", "events_baseline", "events_current", "kpi_baseline",
                    "kpi_current")],
        # A value's units are a part of its scope's.
        *[("ExpectColumnPairValuesAToBeGreaterThanB",
           {"column_A": f"scope_units_{p}", "column_B": f"units_{p}", "or_equal": True})
          for p in ("baseline", "current")],
    ],
    "gold.spc_subgroups": [
        ("ExpectTableRowCountToBeBetween", {"min_value": 1}),
        *[("ExpectColumnValuesToNotBeNull", {"column": c})
          for c in ("plant", "line", "station", "characteristic", "subgroup", "xbar",
                    "range", "event_ids")],
        ("ExpectColumnValuesToBeBetween", {"column": "subgroup_size", "min_value": 2,
                                           "max_value": 10}),
        ("ExpectColumnValuesToBeBetween", {"column": "range", "min_value": 0.0}),
        ("ExpectColumnPairValuesAToBeGreaterThanB",
         {"column_A": "xbar_ucl", "column_B": "xbar_lcl",
          "ignore_row_if": "either_value_is_missing"}),
        ("ExpectColumnPairValuesAToBeGreaterThanB",
         {"column_A": "r_ucl", "column_B": "r_lcl",
          "ignore_row_if": "either_value_is_missing"}),
        ("ExpectCompoundColumnsToBeUnique",
         {"column_list": ["plant", "line", "station", "characteristic", "subgroup"]}),
        ("ExpectColumnPairValuesAToBeGreaterThanB",
         {"column_A": "baseline_end", "column_B": "baseline_start", "or_equal": True,
          "ignore_row_if": "either_value_is_missing"}),
    ],
    "gold.capability": [
        ("ExpectColumnValuesToBeInSet", {"column": "period",
                                         "value_set": list(CAPABILITY_PERIODS)}),
        ("ExpectColumnValuesToBeInSet", {"column": "status",
                                         "value_set": ["ok", "too few points", "no variation"]}),
        *[("ExpectColumnPairValuesAToBeGreaterThanB",
           {"column_A": a, "column_B": b, "or_equal": True,
            "ignore_row_if": "either_value_is_missing"})
          for a, b in (("cpk_ci_high", "cpk"), ("cpk", "cpk_ci_low"))],
    ],
    # No row count: a process in control has no violations.
    "gold.spc_violations": [
        ("ExpectColumnValuesToBeInSet", {"column": "chart", "value_set": ["I", "XBAR"]}),
        ("ExpectColumnValuesToBeBetween", {"column": "rule", "min_value": 1, "max_value": 8}),
        ("ExpectColumnValuesToBeBetween", {"column": "points", "min_value": 1}),
        ("ExpectColumnPairValuesAToBeGreaterThanB",
         {"column_A": "end_seq", "column_B": "start_seq", "or_equal": True}),
        ("ExpectCompoundColumnsToBeUnique",
         {"column_list": ["plant", "line", "station", "characteristic", "chart", "rule",
                          "start_seq"]}),
    ],
    "gold.mtbf": [
        ("ExpectTableRowCountToBeBetween", {"min_value": 1}),
        ("ExpectColumnValuesToBeUnique", {"column": "component"}),
        *[("ExpectColumnValuesToNotBeNull", {"column": c})
          for c in ("component", "vehicles", "failures", "vehicle_days", "confidence")],
        *[("ExpectColumnValuesToBeBetween", {"column": c, "min_value": 0})
          for c in ("failures", "vehicle_days", "failures_per_1000_vehicle_months")],
        ("ExpectColumnValuesToBeBetween", {"column": "confidence", "min_value": 0.0,
                                           "max_value": 1.0, "strict_min": True,
                                           "strict_max": True}),
        ("ExpectColumnPairValuesAToBeGreaterThanB",
         {"column_A": "mtbf_days", "column_B": "mtbf_ci_low_days",
          "ignore_row_if": "either_value_is_missing"}),
        ("ExpectColumnPairValuesAToBeGreaterThanB",
         {"column_A": "mtbf_ci_high_days", "column_B": "mtbf_days",
          "ignore_row_if": "either_value_is_missing"}),
    ],
    "gold.weibull_fits": [
        ("ExpectColumnPairValuesAToBeGreaterThanB",
         {"column_A": "b10_days", "column_B": "b10_ci_low_days",
          "ignore_row_if": "either_value_is_missing"}),
        ("ExpectColumnPairValuesAToBeGreaterThanB",
         {"column_A": "b10_ci_high_days", "column_B": "b10_days",
          "ignore_row_if": "either_value_is_missing"}),
    ],
})

#: Plausible physical ranges: a value outside is a broken sensor or a unit mix-up, not a
#: process problem (out-of-spec values are real data and stay). (min, max, mostly).
RANGES: dict[str, dict[str, tuple[float | None, float | None, float]]] = {
    "silver.vehicle_telemetry": {
        "odometer_km": (0.0, 2_000_000.0, 1.0),
        "speed_kph": (0.0, 300.0, 0.999),
        "battery_soc_pct": (0.0, 100.0, 1.0),
        "battery_temp_c": (-60.0, 120.0, 0.95),
        "motor_temp_c": (-60.0, 250.0, 0.999),
        "coolant_temp_c": (-60.0, 200.0, 0.999),
        "ambient_temp_c": (-70.0, 70.0, 0.999),
        "hv_battery_voltage_v": (0.0, 1500.0, 0.999),
    },
    "silver.vehicle_dtc": {"odometer_km": (0.0, 2_000_000.0, 1.0)},
    "silver.station_results": {"attempt": (1, 100, 1.0), "cycle_time_s": (0.0, 86_400.0, 1.0)},
    "silver.warranty_claims": {"mileage_km": (0.0, 2_000_000.0, 1.0),
                               "cost_eur": (0.0, 1_000_000.0, 1.0)},
    "silver.ai4i_process": {"air_temperature_k": (200.0, 400.0, 1.0),
                            "process_temperature_k": (200.0, 450.0, 1.0),
                            "rotational_speed_rpm": (0, 10_000, 1.0),
                            "torque_nm": (0.0, 500.0, 1.0), "tool_wear_min": (0, 10_000, 1.0)},
    "silver.cmapss_cycles": {"cycle": (1, 10_000, 1.0), "unit_id": (1, 10_000, 1.0)},
    "gold.first_pass_yield": {"fpy": (0.0, 1.0, 1.0)},
    "gold.capability": {"n": (1, None, 1.0)},
    "gold.vehicle_risk_scores": {"failure_probability": (0.0, 1.0, 1.0),
                                  "uncertainty": (0.0, 1.0, 1.0)},
    "gold.cmapss_features": {"cycle": (1, 10_000, 1.0), "rul_target": (0, 125, 1.0)},
    "gold.cmapss_sensor_stats": {"std": (0.0, None, 1.0), "rows": (1, None, 1.0)},
    "gold.ai4i_features": {"power_w": (0.0, None, 1.0), "machine_failure": (0, 1, 1.0)},
    "gold.cmapss_rul_scores": {"rul_pred": (0.0, None, 1.0), "rul_spread": (0.0, None, 1.0)},
    "gold.ai4i_failure_scores": {"failure_probability": (0.0, 1.0, 1.0),
                                 "uncertainty": (0.0, 1.0, 1.0)},
    "gold.review_queue": {"rank": (1, None, 1.0), "priority": (0.0, 1.0, 1.0),
                          "risk": (0.0, 1.0, 1.0), "uncertainty": (0.0, 1.0, 1.0)},
    "gold.model_drift": {"psi": (0.0, None, 1.0), "rows": (1, None, 1.0)},
    "gold.weibull_plot": {"days": (0.0, None, 1.0), "failure_order": (1.0, None, 1.0),
                          "median_rank": (0.0, 1.0, 1.0)},
    "ops.job_runs": {"seconds": (0.0, None, 1.0)},
}

#: Columns whose values must name a row of another table (left: this table's columns,
#: right: the other table, its columns in the same order). The other table is the
#: dimension the plant already has, not a hard-coded list.
REFERENCES: dict[str, list[tuple[tuple[str, ...], str, tuple[str, ...], str]]] = {
    "silver.station_results": [(("plant", "line", "station"), "gold.dim_station",
                                ("plant", "line", "station"), ERROR)],
    "silver.warranty_claims": [(("vin",), "silver.vehicle_builds", ("vin",), ERROR)],
    "silver.vehicle_dtc": [(("vin",), "silver.vehicle_builds", ("vin",), WARN)],
    "gold.first_pass_yield": [(("plant", "line", "station"), "gold.dim_station",
                               ("plant", "line", "station"), ERROR)],
    "gold.station_kpis": [(("plant", "line", "station"), "gold.dim_station",
                           ("plant", "line", "station"), ERROR)],
    "gold.spc_points": [(("plant", "line", "station"), "gold.dim_station",
                         ("plant", "line", "station"), ERROR)],
    "gold.vehicle_features": [(("vin",), "gold.dim_vehicle", ("vin",), ERROR)],
}

#: Columns whose mean is compared with the previously validated version's (a shift of
#: more than ``DISTRIBUTION_TOLERANCE`` of it is reported).
DISTRIBUTION: dict[str, tuple[str, ...]] = {
    "silver.vehicle_telemetry": ("speed_kph", "battery_temp_c", "coolant_temp_c"),
    "silver.station_results": ("cycle_time_s",),
    "gold.first_pass_yield": ("fpy",),
    "gold.station_kpis": ("dpmo",),
}
DISTRIBUTION_TOLERANCE = 0.25

#: Tables that may hold no rows: nothing quarantined, a process in control, no scores, no
#: warranty failures to plot yet.
MAY_BE_EMPTY = {"silver.quarantine", "gold.spc_violations", "gold.kpi_attribution",
                "ops.quality_results", "gold.vehicle_risk_scores", "gold.cmapss_rul_scores",
                "gold.ai4i_failure_scores", "gold.review_queue", "gold.model_drift",
                "gold.weibull_plot"}

#: Nullable columns that may be null in every row, and why. Every other nullable column
#: fails the gate when it is entirely null in a bronze or silver table (a feed broke), and
#: is reported as a warning in a gold or ops table.
MAY_BE_ALL_NULL: dict[str, dict[str, str]] = {
    "*": {"key": "Kafka records need no key", "raw_value": "quarantined before parsing",
          "description": "free text", "error": "null when every run succeeded",
          "ecu": "optional in the payload", "supplier": "component-level rows",
          "lot": "component-level rows", "dtc_code": "all-codes rows",
          "kafka_timestamp": "silver rows of an older release"},
    "gold.spc_points": {"moving_range": "first point of a series", "lsl": "one-sided spec",
                        "usl": "one-sided spec"},
    "gold.capability": {"lsl": "one-sided spec", "usl": "one-sided spec",
                        "cp": "one-sided, too few points or no variation",
                        "pp": "one-sided, too few points or no variation",
                        "cpk": "too few points or no variation",
                        "ppk": "too few points or no variation",
                        "status": "rows of an older release", "min_n": "rows of an older release",
                        **{f"{i}_ci_{e}": "where the index is null" for i in ("cp", "cpk", "pp", "ppk")
                           for e in ("low", "high")}},
    "gold.dim_vehicle_firmware": {"valid_to": "the current firmware has no end yet"},
    "gold.vehicle_features": {"coolant_pump_supplier": "vehicles without the part",
                              "coolant_pump_lot": "vehicles without the part"},
    "gold.defect_pareto": {"station": "per-Pareto", "component": "per-Pareto",
                           "units": "per-Pareto", "defects_per_unit": "per-Pareto"},
    "gold.kpi_attribution": {"scope_plant": "fleet scope", "scope_line": "plant scope",
                             "scope_station": "line scope"},
    "silver.station_results": {"defect_codes": "no defects"},
    "gold.cmapss_features": {"rul": "only test engines replayed",
                             "rul_target": "only test engines replayed"},
    "ops.quality_results": {c: "only some checks have it" for c in (
        "delta_version", "column", "mostly", "observed_value", "unexpected_count",
        "unexpected_percent", "sample_values", "detail")},
    "ops.silver_batches": {"min_kafka_timestamp": "empty batches",
                           "max_kafka_timestamp": "empty batches"},
    "ops.spc_alerts": {"http_status": "only skipped episodes so far",
                       "text": "only skipped episodes so far"},
}

#: Columns of free text or raw bytes: blank values are allowed.
_FREE_TEXT = {"description", "reason", "raw_value", "error", "rule_name"}

#: Row count of the previously validated version: append-only tables may not shrink; any
#: table is reported when it more than ``VOLUME_GROWTH`` folds or loses over half.
VOLUME_GROWTH = 10.0
_APPEND_ONLY = (Layer.BRONZE, Layer.OPS)
_FEEDS = (Layer.BRONZE, Layer.SILVER)


def _simple(dtype) -> str:
    return dtype.simpleString()


def checks_for(table: Table, previous: Mapping[str, object] | None = None,
               freshness_hours: float | None = None) -> list[Check]:
    """Every check of ``table``: derived from the catalog, then hand-written.

    ``previous``: observed values of the previously validated version, by check id
    (``row_count``, ``mean:<column>``) for the volume and distribution checks; without
    them those checks only record today's values. ``freshness_hours``: the table's limit.
    """
    name = table.qualified_name
    previous = previous or {}
    schema = {f.name: f for f in table.schema().fields}
    out: list[Check] = []
    rows = previous.get("row_count")
    if rows is None:
        out.append(Check("ExpectTableRowCountToBeBetween",
                         {"min_value": 0 if name in MAY_BE_EMPTY else 1}, label="volume"))
    else:
        rows = int(rows)
        shrink = rows if table.layer in _APPEND_ONLY or (
            table.layer is Layer.SILVER and table.topic) else 0
        out.append(Check("ExpectTableRowCountToBeBetween",
                         {"min_value": max(shrink, 0 if name in MAY_BE_EMPTY else 1)},
                         label="volume"))
        if rows > 0:
            out.append(Check("ExpectTableRowCountToBeBetween",
                             {"min_value": rows // 2, "max_value": int(rows * VOLUME_GROWTH)},
                             WARN, label=f"volume against {rows:,} rows"))
    key = [k for k in table.key if not schema[k].nullable]
    for column in key:
        out.append(Check("ExpectColumnValuesToNotBeNull", {"column": column}))
    if len(table.key) == 1:
        out.append(Check("ExpectColumnValuesToBeUnique", {"column": table.key[0]}))
    elif table.key:
        out.append(Check("ExpectCompoundColumnsToBeUnique", {"column_list": list(table.key)}))
    allowed_null = {**MAY_BE_ALL_NULL["*"], **MAY_BE_ALL_NULL.get(name, {})}
    for column, f in schema.items():
        text = _simple(f.dataType) == "string"
        if text and column not in _FREE_TEXT and (not f.nullable or column in table.key):
            out.append(Check("ExpectColumnValuesToNotMatchRegex",
                             {"column": column, "regex": r"^\s*$"}, label="blank"))
        if f.nullable and column not in allowed_null and _simple(f.dataType) in (
                "string", "double", "float", "int", "bigint", "boolean", "date", "timestamp"):
            # A feed column entirely null is a broken feed; a gold statistic entirely
            # null can be a small sample (too few failures to fit), an ops record's
            # optional field unused so far: reported, not fatal.
            out.append(Check("ExpectColumnProportionOfNonNullValuesToBeBetween",
                             {"column": column, "min_value": 1e-12},
                             ERROR if table.layer in _FEEDS else WARN, label="all null"))
    for column, (low, high, mostly) in RANGES.get(name, {}).items():
        kwargs: dict = {"column": column, "min_value": low, "max_value": high}
        if mostly < 1.0:
            kwargs["mostly"] = mostly
        out.append(Check("ExpectColumnValuesToBeBetween", kwargs, label="plausible range"))
    if freshness_hours is not None and table.arrival:
        out.append(Check("ExpectColumnMinToBeBetween",
                         {"column": AGE_HOURS, "max_value": float(freshness_hours)},
                         label=f"freshness {freshness_hours:g} h of {table.arrival}"))
    for columns, other, other_columns, severity in REFERENCES.get(name, []):
        out.append(Check("ExpectColumnValuesToBeNull",
                         {"column": orphan_column(other)}, severity,
                         label=f"reference {','.join(columns)} -> {other}"
                               f"({','.join(other_columns)})"))
    for column in DISTRIBUTION.get(name, ()):
        mean = previous.get(f"mean:{column}")
        bounds: dict = {}
        if mean is not None:
            spread = abs(float(mean)) * DISTRIBUTION_TOLERANCE
            bounds = {"min_value": float(mean) - spread, "max_value": float(mean) + spread}
        out.append(Check("ExpectColumnMeanToBeBetween", {"column": column, **bounds}, WARN,
                         label="distribution"))
    seen = {c.id for c in out}
    for entry in HAND_WRITTEN.get(name, []):
        check = _as_check(entry)
        if check.id not in seen and not (
                check.expectation == "ExpectTableRowCountToBeBetween"):
            out.append(check)
            seen.add(check.id)
    return out


AGE_HOURS = "_age_hours"
"""Virtual column the gate adds for freshness: hours since the row's arrival."""


def orphan_column(other: str) -> str:
    """Virtual column the gate adds for a reference to ``other``: the row's key when
    ``other`` has no row with it, else null."""
    return "_orphan_" + other.replace(".", "_")


def references(table: Table) -> list[tuple[tuple[str, ...], Table, tuple[str, ...]]]:
    """(columns, referenced table, its columns) of ``table``'s references."""
    return [(cols, catalog.get(other), other_cols)
            for cols, other, other_cols, _ in REFERENCES.get(table.qualified_name, [])]


def freshness_limits(spec: str) -> dict[str, float]:
    """``table=hours`` pairs (comma-separated, the ``quality.freshness_hours`` setting) as
    a mapping; an unknown table or a bad number is a configuration error."""
    out: dict[str, float] = {}
    for part in (p.strip() for p in spec.split(",") if p.strip()):
        name, _, hours = part.partition("=")
        name = name.strip()
        table = catalog.TABLES.get(name)
        if table is None or table.arrival is None:
            known = ", ".join(n for n, t in catalog.TABLES.items() if t.arrival)
            raise RedlineError("CONFIG_INVALID", f"quality.freshness_hours: {name!r} is not a "
                                                 f"table with an arrival time; tables: {known}")
        try:
            out[name] = float(hours)
        except ValueError:
            raise RedlineError("CONFIG_INVALID", f"quality.freshness_hours: {part!r}: hours "
                                                 f"must be a number") from None
        if out[name] <= 0:
            raise RedlineError("CONFIG_INVALID", f"quality.freshness_hours: {part!r}: hours "
                                                 f"must be above 0")
    return out


def tables(names: Sequence[str] | None = None) -> list[Table]:
    """The tables ``names`` name (default: every table of the catalog)."""
    if not names:
        return list(catalog.TABLES.values())
    return [catalog.get(n) for n in names]
