"""The dashboards spec (dashboards/spec) and the Superset export built from it.

Every column and metric a chart names must exist in its dataset: a typo there only shows
as an error tile in the browser, so it is caught here, in milliseconds.
"""

from __future__ import annotations

import shutil
import uuid

import pytest
import yaml

from redline import catalog
from redline.dashboards import bundle
from redline.errors import RedlineError

DASHBOARDS = bundle.load_dashboards()


def _columns_named(params: dict) -> set[str]:
    """Every dataset column the chart's params refer to."""
    names: set[str] = set()
    for key in ("x_axis", "column"):
        if isinstance(params.get(key), str):
            names.add(params[key])
    for key in ("groupby", "groupby_b", "all_columns"):
        value = params.get(key) or []
        names.update([value] if isinstance(value, str) else value)
    for key in ("adhoc_filters", "adhoc_filters_b"):
        names.update(f["subject"] for f in params.get(key) or [])
    for col in params.get("order_by_cols") or []:
        names.add(yaml.safe_load(col)[0])
    return names


def _metrics_named(params: dict) -> set[str]:
    names = set(params.get("metrics") or []) | set(params.get("metrics_b") or [])
    for key in ("metric", "timeseries_limit_metric"):
        if params.get(key):
            names.add(params[key])
    return names


def test_five_dashboards_with_the_slugs_links_use():
    assert {d.slug: d.title for d in DASHBOARDS} == {
        "manufacturing-quality": "Manufacturing quality", "spc": "SPC",
        "field-reliability": "Field reliability", "fleet-risk": "Fleet risk",
        "data-health": "Data health"}
    spc = next(d for d in DASHBOARDS if d.slug == "spc")
    # Alert links preset these filters by id (dashboards/links.py).
    assert [bundle.filter_id(f.id) for f in spc.filters if f.kind == "select"] == [
        "NATIVE_FILTER-series"]


@pytest.mark.parametrize("chart", [c for d in DASHBOARDS for c in d.charts],
                         ids=lambda c: c.name)
def test_every_chart_names_columns_and_metrics_of_its_dataset(chart):
    ds = chart.dataset
    missing_columns = {c for c in _columns_named(chart.params) if not ds.has(c)}
    assert not missing_columns, f"{chart.title}: not columns of {ds.name}: {missing_columns}"
    missing_metrics = _metrics_named(chart.params) - set(ds.metrics)
    assert not missing_metrics, f"{chart.title}: not metrics of {ds.name}: {missing_metrics}"
    for col in (chart.params.get("column_config") or {}):
        assert ds.has(col), f"{chart.title}: column_config for unknown column {col}"


def test_table_datasets_take_their_columns_from_the_catalog():
    datasets = bundle.load_datasets()
    fpy = datasets["first_pass_yield"]
    assert fpy.table is catalog.FIRST_PASS_YIELD
    assert list(fpy.columns) == [f.name for f in catalog.FIRST_PASS_YIELD.schema().fields]
    assert fpy.columns["day"] == "DATE" and fpy.columns["units"] == "BIGINT"
    # A SQL dataset over a table: that table's columns and the ones its SQL adds.
    points = datasets["spc_chart_points"]
    assert points.tables == [catalog.SPC_POINTS, catalog.SPC_VIOLATIONS] or set(
        points.tables) == {catalog.SPC_POINTS, catalog.SPC_VIOLATIONS}
    assert set(points.columns) == {f.name for f in catalog.SPC_POINTS.schema().fields
                                   if f.dataType.simpleString() != "array<string>"} | {"rules", "series"}


def test_build_writes_an_importable_export_with_stable_ids(tmp_path):
    built = bundle.build(tmp_path / "a", "127.0.0.1", 10001)
    bundle.build(tmp_path / "b", "127.0.0.1", 10001)
    files = sorted(p.relative_to(tmp_path / "a") for p in (tmp_path / "a").rglob("*.yaml"))
    assert [(tmp_path / "a" / f).read_text() for f in files] == [
        (tmp_path / "b" / f).read_text() for f in files]  # same spec, same export
    database = yaml.safe_load((tmp_path / "a/databases/redline_lake.yaml").read_text())
    # Logged in as the Thrift Server's user; the password is Superset's mask, filled in at
    # import (never written to the bundle).
    assert database["sqlalchemy_uri"] == "hive://redline:XXXXXXXXXX@127.0.0.1:10001/default"
    assert database["extra"]["engine_params"] == {"connect_args": {"auth": "CUSTOM"}}
    assert not database["allow_dml"] and not database["allow_file_upload"]
    assert len(list((tmp_path / "a/charts").glob("*.yaml"))) == sum(
        len(d.charts) for d in built)
    spc = yaml.safe_load((tmp_path / "a/dashboards/spc.yaml").read_text())
    charts = {n["meta"]["chartId"]: n["meta"]["sliceName"] for n in spc["position"].values()
              if isinstance(n, dict) and n.get("type") == "CHART"}
    assert len(charts) == 6
    filters = {f["id"]: f for f in spc["metadata"]["native_filter_configuration"]}
    series = filters["NATIVE_FILTER-series"]
    assert series["cascadeParentIds"] == []
    assert series["controlValues"]["multiSelect"] is False
    assert series["requiredFirst"] is True
    assert series["scope"]["excluded"] == []  # every SPC chart has the column
    assert filters["NATIVE_FILTER-date"]["filterType"] == "filter_time"
    uuids = [yaml.safe_load(p.read_text())["uuid"] for p in (tmp_path / "a").rglob("*.yaml")
             if "uuid" in yaml.safe_load(p.read_text())]
    assert len(uuids) == len(set(uuids))
    for u in uuids:
        uuid.UUID(u)


def _built_filter(tmp_path, slug: str, filter_name: str) -> tuple[dict, dict]:
    """(chart id -> title, the native filter ``filter_name``) of dashboard ``slug`` as
    built."""
    bundle.build(tmp_path, "h", 1)
    doc = yaml.safe_load((tmp_path / f"dashboards/{slug}.yaml").read_text())
    names = {n["meta"]["chartId"]: n["meta"]["sliceName"] for n in doc["position"].values()
             if isinstance(n, dict) and n.get("type") == "CHART"}
    return names, next(f for f in doc["metadata"]["native_filter_configuration"]
                       if f["id"] == bundle.filter_id(filter_name))


def test_filters_leave_out_charts_without_their_column(tmp_path):
    names, plant = _built_filter(tmp_path, "manufacturing-quality", "plant")
    # The Paretos and the attribution have no plant column.
    assert {names[i] for i in plant["scope"]["excluded"]} == {
        "Defect Pareto by defect code", "Defect Pareto by station",
        "Defects by supplier lot, per part and station",
        "What changed and why"}


def test_the_kpi_filter_picks_the_attribution_kpi_fpy_first(tmp_path):
    names, kpi = _built_filter(tmp_path, "manufacturing-quality", "kpi")
    assert {names[i] for i in set(names) - set(kpi["scope"]["excluded"])} == {
        "What changed and why"}
    assert kpi["controlValues"]["multiSelect"] is False
    # FPY from the start, not "the first option": the chart must not wait for options an
    # empty table never gives.
    assert kpi["controlValues"]["defaultToFirstItem"] is False and "requiredFirst" not in kpi
    assert kpi["defaultDataMask"]["extraFormData"] == {"filters": [
        {"col": "kpi", "op": "IN", "val": ["fpy"]}]}
    assert kpi["defaultDataMask"]["filterState"]["value"] == ["fpy"]


def test_select_filter_options_come_from_a_real_column(tmp_path):
    """Superset orders a filter's options by the alias of the column it selects twice:
    Spark resolves that for a column, not for a calculated one. The SPC series is
    calculated in most datasets but a column of the I chart's query: its options come
    from there."""
    _, series = _built_filter(tmp_path, "spc", "series")
    datasets = bundle.load_datasets()
    assert series["targets"] == [{"column": {"name": "series"},
                                  "datasetUuid": datasets["spc_chart_points"].uuid}]
    assert "series" in datasets["spc_points"].calculated


def test_period_filter_sets_the_time_grain_of_the_trends_only(tmp_path):
    names, period = _built_filter(tmp_path, "manufacturing-quality", "period")
    assert period["filterType"] == "filter_timegrain"
    # A day until a viewer picks a week or a month.
    assert period["defaultDataMask"]["extraFormData"] == {"time_grain_sqla": "P1D"}
    assert period["defaultDataMask"]["filterState"] == {"value": ["P1D"]}
    in_scope = set(names) - set(period["scope"]["excluded"])
    assert {names[i] for i in in_scope} == {"FPY and RTY with units, by period",
                                             "DPMO by period",
                                             "Scrap and rework rate by period"}


def test_time_filter_reaches_both_queries_of_a_mixed_chart(tmp_path):
    bundle.build(tmp_path, "h", 1)
    chart = yaml.safe_load((tmp_path / "charts/spc_i_chart.yaml").read_text())
    for key in ("adhoc_filters", "adhoc_filters_b"):
        assert {"subject": "event_time", "operator": "TEMPORAL_RANGE"}.items() <= next(
            f for f in chart["params"][key] if f["operator"] == "TEMPORAL_RANGE").items()


@pytest.mark.parametrize("edit, message", [
    (("spc.yaml", "dataset: spc_points\n", "dataset: no_such_dataset\n"),
     "dataset 'no_such_dataset' is not in datasets.yaml"),
    (("spc.yaml", "  - - name: mr_chart\n", "  - - name: mr_chart\n      colour: red\n"),
     r"unknown key\(s\) \['colour'\]"),
    (("datasets.yaml", "table: gold.first_pass_yield", "table: gold.no_such_table"),
     "'gold.no_such_table' is not a catalog table"),
    (("spc.yaml", "title: SPC\n", "title: [SPC\n"), "is not valid YAML"),
    (("datasets.yaml", 'sql: "concat_ws(\'/\', plant', 'sql: "concat_ws(\'.\', plant'),
     "filter series: calculated column 'series' of dataset spc_points has a '.'"),
    (("manufacturing_quality.yaml", "default: P1D}", "default: P2D}"),
     "filter period: default is one of P1D, P1W, P1M, not 'P2D'"),
])
def test_a_bad_spec_fails_naming_the_file_and_key(tmp_path, edit, message):
    spec = tmp_path / "spec"
    shutil.copytree(bundle.SPEC, spec)
    name, old, new = edit
    text = (spec / name).read_text()
    assert old in text
    (spec / name).write_text(text.replace(old, new, 1))
    with pytest.raises(RedlineError, match=message):
        bundle.build(tmp_path / "out", "h", 1, spec)


def test_placeholder_view_has_the_tables_columns_and_no_rows(spark):
    from redline.services.thrift import placeholder_sql

    table = catalog.REVIEW_QUEUE
    statements = placeholder_sql(table)
    assert statements[0] == "CREATE DATABASE IF NOT EXISTS gold"
    view = statements[1].replace(table.qualified_name, "placeholder_review_queue", 1) \
        .replace("CREATE VIEW IF NOT EXISTS", "CREATE OR REPLACE TEMPORARY VIEW")
    spark.sql(view)
    df = spark.table("placeholder_review_queue")
    assert [(f.name, f.dataType) for f in df.schema.fields] == [
        (f.name, f.dataType) for f in table.schema().fields]
    assert df.count() == 0
