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
