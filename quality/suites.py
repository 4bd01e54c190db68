"""Expectation suites, one per gated table, declared as data.

Each entry is (GX expectation class name, keyword arguments). Adding a table to the gate
means adding a suite here; nothing else changes.
"""

from __future__ import annotations

SUITES: dict[str, list[tuple[str, dict]]] = {
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
        ("ExpectColumnValuesToBeInSet", {"column": "station",
                                         "value_set": ["S010", "S020", "S030", "S040"],
                                         "mostly": 0.99}),
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


SUITES.update({
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
        ("ExpectColumnValuesToBeInSet", {"column": "dimension_kind",
                                         "value_set": ["population", "failure_mode"]}),
        ("ExpectCompoundColumnsToBeUnique",
         {"column_list": ["kpi", "scope", "dimension", "value"]}),
        ("ExpectColumnValuesToBeBetween", {"column": "rank", "min_value": 1}),
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
})
