"""Links into the deployed dashboards with their native filters preset.

Superset reads a dashboard's initial filter values from the ``native_filters`` query
parameter: a rison-encoded object keyed by native filter id, each value the filter's data
mask (``extraFormData`` is what the charts receive, ``filterState`` what the filter
shows). The dashboards of ``dashboards/spec`` give each filter the id
``NATIVE_FILTER-<column>``, so a filter is named by the column it filters.

Rison (https://github.com/Nanonid/rison) is JSON with fewer characters to escape in a
URL; the subset Superset's filters need (objects, arrays, strings, integers, booleans,
null) is encoded here rather than adding a dependency.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from urllib.parse import quote

from redline.config import Config

SPC_DASHBOARD = "spc"
"""Slug of the SPC dashboard."""
SPC_SERIES_FILTER = "series"
"""The SPC dashboard's filter: one series, ``plant/line/station/characteristic``."""

#: Characters that may not appear in a bare rison id, and that may not start one.
_NOT_IDCHAR = frozenset(" '!:(),*@$")
_NOT_IDSTART = frozenset("-0123456789")


def _is_id(text: str) -> bool:
    return (bool(text) and text[0] not in _NOT_IDSTART
            and not any(c in _NOT_IDCHAR for c in text))


def rison(value) -> str:
    """``value`` encoded as rison, as the reference encoder does.

    Strings that are valid ids go bare (``PLT-A``); any other string is quoted with ``'``,
    with ``!`` and ``'`` escaped as ``!!`` and ``!'``. Object keys keep their order.
    """
    if value is None:
        return "!n"
    if value is True:
        return "!t"
    if value is False:
        return "!f"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"rison has no encoding for {value!r}")
        # As JavaScript's String(): 1.0 -> 1, and rison's exponent has no '+'.
        return str(int(value)) if value.is_integer() else repr(value).replace("e+", "e")
    if isinstance(value, str):
        if _is_id(value):
            return value
        return "'" + value.replace("!", "!!").replace("'", "!'") + "'"
    if isinstance(value, Mapping):
        for key in value:
            if not isinstance(key, str):
                raise TypeError(f"rison object keys must be strings, got {key!r}")
        return "(" + ",".join(f"{rison(k)}:{rison(v)}" for k, v in value.items()) + ")"
    if isinstance(value, Sequence) and not isinstance(value, bytes | bytearray):
        return "!(" + ",".join(rison(v) for v in value) + ")"
    raise TypeError(f"rison has no encoding for {type(value).__name__} {value!r}")


def filter_id(column: str) -> str:
    """Native filter id of the bundle's filter on ``column``."""
    return f"NATIVE_FILTER-{column}"


def native_filter_state(column: str, value: str) -> dict:
    """The data mask of a select filter on ``column`` set to the one value ``value``."""
    state = {"label": value, "validateStatus": False, "value": [value]}
    return {
        "__cache": state,
        "extraFormData": {"filters": [{"col": column, "op": "IN", "val": [value]}]},
        "filterState": state,
        "id": filter_id(column),
        "ownState": {},
    }


def dashboard_url(base_url: str, slug: str, filters: Mapping[str, str]) -> str:
    """URL of the dashboard ``slug`` at ``base_url`` with each ``column -> value`` of
    ``filters`` preset in the native filter on that column.

    Everything but letters, digits and ``-_.~`` is percent-encoded: chat clients end a
    link they find in text at characters such as ``)``, ``'`` or ``!``, which rison is
    full of, and Superset decodes the parameter before parsing it.
    """
    url = f"{base_url.rstrip('/')}/superset/dashboard/{slug}/"
    if not filters:
        return url
    mask = {filter_id(col): native_filter_state(col, val) for col, val in filters.items()}
    return f"{url}?native_filters={quote(rison(mask), safe='')}"


def spc_dashboard_url(cfg: Config, plant: str, line: str, station: str, characteristic: str,
                      base_url: str | None = None) -> str:
    """The SPC dashboard filtered to one characteristic, at ``base_url`` (default: the
    configured Superset, ``cfg.superset.url``)."""
    series = "/".join((plant, line, station, characteristic))
    return dashboard_url(base_url or cfg.superset.url, SPC_DASHBOARD,
                         {SPC_SERIES_FILTER: series})
