"""The dashboards kept as code: a short YAML spec per dashboard, built into Superset's
export format (v1) at deploy time.

``dashboards/spec/datasets.yaml`` declares a dataset per lake table (its metrics, and
the calculated columns charts need); the columns themselves come from the catalog's
schema, so a table's columns are declared once. Each other file of ``dashboards/spec/``
is one dashboard: its title and slug, its native filters, and its charts in rows::

    title: SPC
    slug: spc
    filters:
      - {id: plant, column: plant, label: Plant, single: true}
      - {id: date, type: time, label: Date range}
    rows:
      - - name: i_chart                 # stable name: the chart's UUID derives from it
          title: Individuals (I) chart
          dataset: spc_points
          viz: echarts_timeseries_line
          width: 8                      # of 12 columns
          params: {x_axis: seq, metrics: [measured_value]}

``build`` turns that into the files ``superset import-directory`` reads (metadata,
database, datasets, charts, dashboards). Every object gets a UUID derived from its name
(or the one the spec gives), so deploying again updates the same objects. A filter
applies to the charts whose dataset has its column; the others are left out of its scope,
so they never show "filter not applicable" noise.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from redline import catalog
from redline.errors import RedlineError
from redline.services.thrift import USER as THRIFT_USER

SPEC = Path(__file__).resolve().parent / "spec"
DATASETS_FILE = "datasets.yaml"
DATABASE_NAME = "redline_lake"
DATABASE_UUID = "211a9cf5-1bfe-4885-b770-8e0cb446fd14"
_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "redline:dashboards")
EXPORT_VERSION = "1.0.0"
#: What Superset writes for a password in an export (``superset.constants.PASSWORD_MASK``).
PASSWORD_MASK = "X" * 10

#: Spark SQL type names as Superset's Hive engine reports them.
_TYPES = {"string": "STRING", "bigint": "BIGINT", "int": "INT", "double": "DOUBLE",
          "float": "FLOAT", "boolean": "BOOLEAN", "date": "DATE", "timestamp": "TIMESTAMP",
          "smallint": "SMALLINT", "tinyint": "TINYINT"}
_TEMPORAL = {"DATE", "TIMESTAMP"}
_NUMERIC = {"BIGINT", "INT", "DOUBLE", "FLOAT", "SMALLINT", "TINYINT"}
_FILTER_KEYS = {"id", "column", "label", "type", "single", "default_first", "parent",
                "description", "default"}
#: Periods a ``time_grain`` filter offers as its default (Superset's ISO 8601 grains).
TIME_GRAINS = {"P1D": "day", "P1W": "week", "P1M": "month"}
_CHART_KEYS = {"name", "title", "dataset", "viz", "width", "height", "params",
               "description"}
_DASHBOARD_KEYS = {"title", "slug", "description", "filters", "rows", "uuid"}
_DATASET_KEYS = {"table", "sql", "columns", "columns_from", "time_column", "metrics",
                 "description", "uuid", "calculated", "labels"}


def stable_uuid(kind: str, name: str) -> str:
    """The UUID of the bundle object ``kind``/``name`` (the same on every machine)."""
    return str(uuid.uuid5(_NAMESPACE, f"{kind}/{name}"))


def _read(path: Path) -> Any:
    try:
        return yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise RedlineError("BUNDLE_INVALID", f"{path} is not valid YAML: {exc}") from None


def _check_keys(where: str, doc: Mapping[str, Any], allowed: set[str],
                required: Iterable[str] = ()) -> None:
    if not isinstance(doc, Mapping):
        raise RedlineError("BUNDLE_INVALID", f"{where}: expected a mapping, got {doc!r}")
    unknown = set(doc) - allowed
    if unknown:
        raise RedlineError("BUNDLE_INVALID", f"{where}: unknown key(s) {sorted(unknown)}; "
                                             f"known: {sorted(allowed)}")
    missing = [k for k in required if k not in doc]
    if missing:
        raise RedlineError("BUNDLE_INVALID", f"{where}: missing key(s) {missing}")


# --- datasets -------------------------------------------------------------------------

@dataclass(frozen=True)
class Dataset:
    """One Superset dataset: a lake table (or a SQL query over them) with its metrics."""

    name: str
    uuid: str
    table: catalog.Table | None
    sql: str | None
    columns: dict[str, str]
    """Column name -> Superset type, in order."""
    time_column: str | None
    metrics: dict[str, dict]
    calculated: dict[str, dict] = field(default_factory=dict)
    description: str = ""
    labels: dict[str, str] = field(default_factory=dict)
    """Column name -> what tables and axes call it (units included)."""

    @property
    def tables(self) -> list[catalog.Table]:
        """Lake tables it reads (for a SQL dataset, those its SQL names)."""
        if self.table is not None:
            return [self.table]
        return [t for t in catalog.TABLES.values()
                if self.sql and t.qualified_name in self.sql]

    def has(self, column: str) -> bool:
        return column in self.columns or column in self.calculated


def _table_columns(table: catalog.Table) -> dict[str, str]:
    out = {}
    for f in table.schema().fields:
        kind = _TYPES.get(f.dataType.simpleString())
        if kind is not None:  # arrays, maps and structs are not charted
            out[f.name] = kind
    return out


def load_datasets(spec: Path = SPEC) -> dict[str, Dataset]:
    path = spec / DATASETS_FILE
    doc = _read(path) or {}
    out = {}
    for name, body in doc.items():
        where = f"{path.name}: {name}"
        _check_keys(where, body, _DATASET_KEYS)
        if ("table" in body) == ("sql" in body):
            raise RedlineError("BUNDLE_INVALID", f"{where}: give exactly one of table, sql")
        table = None
        if "table" in body:
            try:
                table = catalog.TABLES[body["table"]]
            except KeyError:
                raise RedlineError("BUNDLE_INVALID",
                                   f"{where}: {body['table']!r} is not a catalog table"
                                   ) from None
            columns = _table_columns(table)
        else:
            columns = {}
            if "columns_from" in body:  # the SQL selects that table's columns, and more
                if body["columns_from"] not in catalog.TABLES:
                    raise RedlineError("BUNDLE_INVALID", f"{where}: columns_from "
                                                         f"{body['columns_from']!r} is not "
                                                         f"a catalog table")
                columns = _table_columns(catalog.TABLES[body["columns_from"]])
            columns.update({c: t.upper() for c, t in (body.get("columns") or {}).items()})
            if not columns:
                raise RedlineError("BUNDLE_INVALID", f"{where}: a SQL dataset lists its "
                                                     f"columns and their types")
        calculated = {c: dict(v) for c, v in (body.get("calculated") or {}).items()}
        labels = dict(body.get("labels") or {})
        unknown = [c for c in labels if c not in columns and c not in calculated]
        if unknown:
            raise RedlineError("BUNDLE_INVALID", f"{where}: labels for unknown columns "
                                                 f"{unknown}")
        time_column = body.get("time_column")
        if time_column and time_column not in columns and time_column not in calculated:
            raise RedlineError("BUNDLE_INVALID",
                               f"{where}: time_column {time_column!r} is not a column")
        out[name] = Dataset(name=name, uuid=body.get("uuid") or stable_uuid("dataset", name),
                            table=table, sql=body.get("sql"), columns=columns,
                            time_column=time_column,
                            metrics={m: dict(v) for m, v in (body.get("metrics") or {}).items()},
                            calculated=calculated, description=body.get("description", ""),
                            labels=labels)
    return out


def _dataset_file(ds: Dataset) -> dict:
    def column(name: str, kind: str, expression: str | None = None,
               label: str | None = None) -> dict:
        return {"column_name": name, "verbose_name": label, "is_dttm": kind in _TEMPORAL,
                "is_active": True, "type": kind, "groupby": kind not in _NUMERIC or
                name.endswith(("seq", "subgroup", "rank", "months_in_service")),
                "filterable": True, "expression": expression, "description": None,
                "python_date_format": None, "extra": {}}

    columns = [column(c, t, label=ds.labels.get(c)) for c, t in ds.columns.items()]
    columns += [column(c, v.get("type", "STRING").upper(), v["sql"], v.get("label"))
                for c, v in ds.calculated.items()]
    metrics = [{"metric_name": m, "verbose_name": v.get("label"), "metric_type": None,
                "expression": v["sql"], "description": v.get("description"),
                "d3format": v.get("format"), "extra": {}, "warning_text": None}
               for m, v in ds.metrics.items()]
    schema, table_name = ((ds.table.layer.value, ds.table.name) if ds.table is not None
                          else ("gold", ds.name))
    return {"table_name": table_name, "main_dttm_col": ds.time_column,
            "description": ds.description or None, "default_endpoint": None, "offset": 0,
            "cache_timeout": None, "schema": schema, "catalog": None, "sql": ds.sql,
            "params": None, "template_params": None, "filter_select_enabled": True,
            "fetch_values_predicate": None, "extra": None, "normalize_columns": False,
            "always_filter_main_dttm": False, "uuid": ds.uuid, "metrics": metrics,
            "columns": columns, "version": EXPORT_VERSION, "database_uuid": DATABASE_UUID}


# --- dashboards -----------------------------------------------------------------------

@dataclass(frozen=True)
class Chart:
    name: str
    uuid: str
    title: str
    dataset: Dataset
    viz: str
    width: int
    height: int
    params: dict
    description: str
    chart_id: int
    """Local id: the dashboard layout and filter scopes refer to it; the importer maps it
    to the id Superset gives the chart."""


@dataclass(frozen=True)
class Filter:
    id: str
    label: str
    kind: str
    """``select`` (values of a column), ``time`` (the charts' time range) or
    ``time_grain`` (the period of the charts whose x axis is a time grain)."""
    column: str | None
    single: bool
    default_first: bool
    parent: str | None
    description: str
    default: str | None = None
    """The value until a viewer picks another: a ``select`` filter's value, a
    ``time_grain`` filter's period (``TIME_GRAINS``)."""


@dataclass(frozen=True)
class Dashboard:
    slug: str
    uuid: str
    title: str
    description: str
    filters: list[Filter]
    rows: list[list[Chart]]
    file: str

    @property
    def charts(self) -> list[Chart]:
        return [c for row in self.rows for c in row]

    @property
    def datasets(self) -> list[Dataset]:
        seen: dict[str, Dataset] = {}
        for c in self.charts:
            seen.setdefault(c.dataset.name, c.dataset)
        return list(seen.values())


def load_dashboards(spec: Path = SPEC, datasets: Mapping[str, Dataset] | None = None
                    ) -> list[Dashboard]:
    datasets = load_datasets(spec) if datasets is None else datasets
    out = []
    for path in sorted(spec.glob("*.yaml")):
        if path.name == DATASETS_FILE:
            continue
        doc = _read(path)
        _check_keys(path.name, doc, _DASHBOARD_KEYS, ("title", "slug", "rows"))
        rows, next_id = [], 1
        for r, row in enumerate(doc["rows"]):
            charts = []
            for c in row:
                where = f"{path.name}: row {r + 1}: {c.get('name', '?')}"
                _check_keys(where, c, _CHART_KEYS, ("name", "title", "dataset", "viz"))
                if c["dataset"] not in datasets:
                    raise RedlineError("BUNDLE_INVALID", f"{where}: dataset "
                                                         f"{c['dataset']!r} is not in "
                                                         f"{DATASETS_FILE}")
                charts.append(Chart(
                    name=c["name"], uuid=stable_uuid("chart", f"{doc['slug']}/{c['name']}"),
                    title=c["title"], dataset=datasets[c["dataset"]], viz=c["viz"],
                    width=int(c.get("width", 12 // len(row))), height=int(c.get("height", 50)),
                    params=dict(c.get("params") or {}), description=c.get("description", ""),
                    chart_id=next_id))
                next_id += 1
            if sum(ch.width for ch in charts) > 12:
                raise RedlineError("BUNDLE_INVALID",
                                   f"{path.name}: row {r + 1} is wider than 12 columns")
            rows.append(charts)
        filters = []
        for f in doc.get("filters") or []:
            _check_keys(f"{path.name}: filter", f, _FILTER_KEYS, ("id", "label"))
            kind = f.get("type", "select")
            if kind not in ("select", "time", "time_grain"):
                raise RedlineError("BUNDLE_INVALID", f"{path.name}: filter {f['id']}: type "
                                                     f"is select, time or time_grain, not "
                                                     f"{kind!r}")
            if kind == "select" and f.get("default") is not None and f.get("default_first"):
                raise RedlineError("BUNDLE_INVALID", f"{path.name}: filter {f['id']}: "
                                                     f"default and default_first exclude "
                                                     f"each other")
            if kind == "time_grain" and f.get("default") not in TIME_GRAINS:
                raise RedlineError("BUNDLE_INVALID",
                                   f"{path.name}: filter {f['id']}: default is one of "
                                   f"{', '.join(TIME_GRAINS)}, not {f.get('default')!r}")
            if kind == "select" and not f.get("column"):
                raise RedlineError("BUNDLE_INVALID",
                                   f"{path.name}: filter {f['id']} needs a column")
            filters.append(Filter(id=f["id"], label=f["label"], kind=kind,
                                  column=f.get("column"), single=bool(f.get("single")),
                                  default_first=bool(f.get("default_first")),
                                  parent=f.get("parent"),
                                  description=f.get("description", ""),
                                  default=f.get("default")))
        names = [c.name for row in rows for c in row]
        if len(names) != len(set(names)):
            raise RedlineError("BUNDLE_INVALID", f"{path.name}: chart names repeat")
        out.append(Dashboard(slug=doc["slug"], uuid=doc.get("uuid") or
                             stable_uuid("dashboard", doc["slug"]), title=doc["title"],
                             description=doc.get("description", ""), filters=filters,
                             rows=rows, file=path.name))
    slugs = [d.slug for d in out]
    if len(slugs) != len(set(slugs)):
        raise RedlineError("BUNDLE_INVALID", f"dashboard slugs repeat: {slugs}")
    return out


def filter_id(filter_name: str) -> str:
    """Superset's id of a native filter (links preset it by this id)."""
    return f"NATIVE_FILTER-{filter_name}"


def _chart_file(chart: Chart) -> dict:
    params = {"viz_type": chart.viz, "adhoc_filters": [], "extra_form_data": {},
              "row_limit": 10000,
              "color_scheme": "supersetColors", **chart.params}
    time_col = chart.dataset.time_column
    # The dashboard's date-range filter narrows this time column (both queries of a
    # mixed chart).
    for key in ("adhoc_filters", "adhoc_filters_b") if chart.viz == "mixed_timeseries" \
            else ("adhoc_filters",):
        filters = params.get(key) or []
        if time_col and not any(f.get("operator") == "TEMPORAL_RANGE" for f in filters):
            filters = [*filters, {
                "expressionType": "SIMPLE", "subject": time_col, "operator": "TEMPORAL_RANGE",
                "comparator": "No filter", "clause": "WHERE", "sqlExpression": None,
                "isExtra": False, "filterOptionName": f"time_{time_col}"}]
        params[key] = filters
    return {"slice_name": chart.title, "description": chart.description or None,
            "certified_by": None, "certification_details": None, "viz_type": chart.viz,
            "params": params, "query_context": None, "cache_timeout": None,
            "uuid": chart.uuid, "version": EXPORT_VERSION, "dataset_uuid": chart.dataset.uuid}


def _position(dash: Dashboard) -> dict:
    pos: dict[str, Any] = {
        "DASHBOARD_VERSION_KEY": "v2",
        "ROOT_ID": {"type": "ROOT", "id": "ROOT_ID", "children": ["GRID_ID"]},
        "HEADER_ID": {"type": "HEADER", "id": "HEADER_ID", "meta": {"text": dash.title}},
        "GRID_ID": {"type": "GRID", "id": "GRID_ID", "parents": ["ROOT_ID"],
                    "children": [f"ROW-{i}" for i in range(len(dash.rows))]},
    }
    for i, row in enumerate(dash.rows):
        pos[f"ROW-{i}"] = {"type": "ROW", "id": f"ROW-{i}", "parents": ["ROOT_ID", "GRID_ID"],
                           "children": [f"CHART-{c.name}" for c in row],
                           "meta": {"background": "BACKGROUND_TRANSPARENT"}}
        for c in row:
            pos[f"CHART-{c.name}"] = {
                "type": "CHART", "id": f"CHART-{c.name}", "children": [],
                "parents": ["ROOT_ID", "GRID_ID", f"ROW-{i}"],
                "meta": {"chartId": c.chart_id, "uuid": c.uuid, "sliceName": c.title,
                         "width": c.width, "height": c.height}}
    return pos


def _native_filter(dash: Dashboard, f: Filter) -> dict:
    default_mask: dict = {"extraFormData": {}, "filterState": {}, "ownState": {}}
    if f.kind == "time":
        in_scope = [c for c in dash.charts if c.dataset.time_column]
        targets: list[dict] = [{}]
        control: dict = {}
        filter_type = "filter_time"
    elif f.kind == "time_grain":
        in_scope = [c for c in dash.charts if "time_grain_sqla" in c.params]
        if not in_scope:
            raise RedlineError("BUNDLE_INVALID", f"{dash.file}: filter {f.id}: no chart has "
                                                 f"a time grain (params.time_grain_sqla)")
        targets = [{"datasetUuid": in_scope[0].dataset.uuid}]
        control = {}
        filter_type = "filter_timegrain"
        default_mask = {"extraFormData": {"time_grain_sqla": f.default},
                        "filterState": {"value": [f.default]}, "ownState": {}}
    else:
        in_scope = [c for c in dash.charts if c.dataset.has(f.column)]
        if not in_scope:
            raise RedlineError("BUNDLE_INVALID", f"{dash.file}: filter {f.id}: no chart's "
                                                 f"dataset has column {f.column!r}")
        for c in in_scope:
            if "." in c.dataset.calculated.get(f.column, {}).get("sql", ""):
                # PyHive's SQL compiler asserts when a filtered column's expression holds
                # a dot (it reads schema.table.column), and the chart shows an error.
                raise RedlineError("BUNDLE_INVALID",
                                   f"{dash.file}: filter {f.id}: calculated column "
                                   f"{f.column!r} of dataset {c.dataset.name} has a '.' in "
                                   f"its SQL, which a filter cannot use through PyHive")
        # Options come from the first dataset in scope that has the column as a column: a
        # calculated column's options query orders by an alias it selects twice, which
        # Spark refuses as ambiguous (charts may still filter on a calculated column).
        source = next((c.dataset for c in in_scope if f.column in c.dataset.columns), None)
        if source is None:
            raise RedlineError("BUNDLE_INVALID",
                               f"{dash.file}: filter {f.id}: no dataset in its scope has "
                               f"{f.column!r} as a column, only as a calculated one; add it "
                               f"to a SQL dataset's query")
        targets = [{"column": {"name": f.column}, "datasetUuid": source.uuid}]
        control = {"multiSelect": not f.single, "enableEmptyFilter": False,
                   "defaultToFirstItem": f.default_first, "inverseSelection": False,
                   "searchAllOptions": False}
        filter_type = "filter_select"
        if f.default is not None:
            # Set from the start, options or not: a table with no rows yet shows "No
            # results" rather than charts waiting for a first option that never comes.
            default_mask = {"extraFormData": {"filters": [
                                {"col": f.column, "op": "IN", "val": [f.default]}]},
                            "filterState": {"value": [f.default], "label": f.default},
                            "ownState": {}}
    ids = {c.chart_id for c in in_scope}
    extra = {}
    if f.default_first:
        # The charts wait for the filter's first value before they load, as when the
        # option is ticked in Superset's filter editor (else they load unfiltered first).
        extra = {"requiredFirst": True}
    return {"id": filter_id(f.id), "name": f.label, "filterType": filter_type, **extra,
            "type": "NATIVE_FILTER", "targets": targets, "controlValues": control,
            "defaultDataMask": default_mask,
            "cascadeParentIds": [filter_id(f.parent)] if f.parent else [],
            "scope": {"rootPath": ["ROOT_ID"],
                      "excluded": [c.chart_id for c in dash.charts if c.chart_id not in ids]},
            # No "chartsInScope": it would hold the local chart ids, which the importer
            # does not map; Superset works the charts out from the (mapped) scope.
            "tabsInScope": [], "description": f.description}


def _dashboard_file(dash: Dashboard) -> dict:
    return {"dashboard_title": dash.title, "description": dash.description or None,
            "css": "", "slug": dash.slug, "certified_by": None,
            "certification_details": None, "published": True, "uuid": dash.uuid,
            "position": _position(dash),
            "metadata": {"native_filter_configuration": [_native_filter(dash, f)
                                                         for f in dash.filters],
                         "color_scheme": "supersetColors", "refresh_frequency": 0,
                         "expanded_slices": {}, "label_colors": {},
                         "shared_label_colors": [], "timed_refresh_immune_slices": [],
                         "cross_filters_enabled": False, "default_filters": "{}",
                         "chart_configuration": {}},
            "version": EXPORT_VERSION}


def _database_file(thrift_host: str, thrift_port: int) -> dict:
    # The lake over SQL: the Spark Thrift Server speaks HiveServer2, so Superset reaches it
    # through PyHive and its Hive engine spec, logged in as the Thrift Server's user. The
    # URI holds Superset's password mask; ``import_bundle.py`` hands Superset the password
    # at import, so it is never written to the bundle.
    return {"database_name": DATABASE_NAME,
            "sqlalchemy_uri": (f"hive://{THRIFT_USER}:{PASSWORD_MASK}@{thrift_host}:"
                               f"{thrift_port}/default"),
            "cache_timeout": None, "expose_in_sqllab": True, "allow_run_async": False,
            "allow_ctas": False, "allow_cvas": False, "allow_dml": False,
            "allow_file_upload": False, "impersonate_user": False,
            "extra": {"allows_virtual_table_explore": True, "metadata_params": {},
                      "engine_params": {"connect_args": {"auth": "CUSTOM"}},
                      "schemas_allowed_for_file_upload": []},
            "uuid": DATABASE_UUID, "version": EXPORT_VERSION}


def build(out: Path, thrift_host: str, thrift_port: int, spec: Path = SPEC
          ) -> list[Dashboard]:
    """Write the Superset export of every dashboard of ``spec`` into ``out``."""
    datasets = load_datasets(spec)
    dashboards = load_dashboards(spec, datasets)

    def write(rel: str, doc: dict) -> None:
        path = out / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(yaml.safe_dump(doc, sort_keys=False, allow_unicode=True))

    write("metadata.yaml", {"version": EXPORT_VERSION, "type": "Dashboard",
                            "timestamp": "2024-05-01T00:00:00+00:00"})
    write(f"databases/{DATABASE_NAME}.yaml", _database_file(thrift_host, thrift_port))
    for ds in {d.name: d for dash in dashboards for d in dash.datasets}.values():
        write(f"datasets/{DATABASE_NAME}/{ds.name}.yaml", _dataset_file(ds))
    for dash in dashboards:
        for chart in dash.charts:
            write(f"charts/{dash.slug}_{chart.name}.yaml", _chart_file(chart))
        write(f"dashboards/{dash.slug}.yaml", _dashboard_file(dash))
    return dashboards
