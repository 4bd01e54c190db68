"""Incremental gold jobs: recompute only the keys that new silver rows touch.

Silver tables record their Delta change data feed (CDF). For every gold job, its latest
successful row in ``ops.job_runs`` holds, per input, the Delta version that run consumed
up to (its watermark; one commit records the run and its watermark). A run then does one
of:

- ``unchanged``: no input has a new version; nothing is read or written.
- ``incremental`` (jobs with a ``Keyed`` spec): the changed silver rows (CDF, versions
  after the watermark) give the *affected keys* of the outputs (e.g. plant, line, station
  and day for first-pass yield). The job's own pure transform runs on the silver rows of
  those keys only, and exactly those keys are replaced in each gold table in one Delta
  commit (``lake.replace_keys``). A late event (an old event time arriving now) simply
  makes an old key affected, so late data needs no special case.
- ``full``: the job's ordinary rebuild; on the first run, with ``--full``, when an input
  was recreated or its CDF does not cover the range needed, when an output is missing,
  when the affected keys hold most of the input rows (``REBUILD_ABOVE_SCOPE_SHARE``:
  replacing nearly every key costs more than a rebuild), and for jobs whose outputs are
  global (their reason is declared in ``SPECS`` and
  recorded in the run's metrics).

Rows that belong together in a transform (a unit's retests decide the KPIs of the day of
its first test) are declared as an *entity*: a changed row affects the keys of every row
of its entity, and an affected key is recomputed from every row of every entity that has
a row in it. Recomputing a key from a superset of its rows is harmless (the result is
filtered to the affected keys); from a subset would be wrong, hence the closure.

Keyed (incremental by key):

- gold_first_pass_yield: key (plant, line, station, day); entity unit at a station.
- gold_manufacturing_kpis: key (plant, line, day) for station and line KPIs; entity unit
  on a line (rework, scrap and the line's first day span stations and days).
- gold_capability: key (plant, line, station, period_start), daily periods.

From the first changed point (``Tail``):

- gold_spc: a series' points, subgroups and Nelson episodes from its first changed point
  on are recomputed and replaced, the points before it kept (``spc_tail``): a new point
  is an append, a late one renumbers the points after it, and limits change only while
  the baseline fills (then the series is recomputed whole).

Full recompute, because every row depends on data-wide values:

- gold_vehicle_features: as-of dates are anchored at the day after the last telemetry day
  and spaced by the data's date range; a new day moves every as-of date.
- gold_reliability: censoring times, vehicles in service and the months at risk are
  relative to the observation end (the last event day).
- gold_kpi_attribution: its two periods are the last 7 days of data and the 7 before.
- gold_defect_pareto: shares and ranks are over all defects of each Pareto.
- gold_dimensions: small tables, and dim_station's first/last seen and characteristics
  span each station's whole history (every increment touches every station).
- gold_mtbf: every unit's time in service runs to the observation end.

A job without a spec here (a new job) is recomputed in full on every run.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Mapping, Sequence

from redline import catalog, lake
from redline.jobs import capability, gold_fpy, manufacturing_kpis, spc, spc_tail

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

MODES = ("full", "incremental", "unchanged")
CONSUMED = "_consumed_versions"
"""Key of a run's result holding the input versions it read (input table -> version): the
runner records them as the run's inputs in ops.job_runs, where the next run finds its
watermarks."""
_CDF_COLUMNS = ("_change_type", "_commit_version", "_commit_timestamp")


@dataclass(frozen=True)
class Source:
    """How the rows of one silver input map to keys of the job's outputs."""

    table: str
    """Qualified name of the silver table."""
    key: Callable[["DataFrame"], "DataFrame"]
    """Adds the key columns (named as in the outputs) to rows of the table, one key per
    row."""
    entity: tuple[str, ...] = ()
    """Columns that tie rows together in the transform (see the module doc); empty when a
    key's output depends on the rows of that key only."""


@dataclass(frozen=True)
class Keyed:
    """A job that can recompute a subset of its output keys."""

    key: tuple[str, ...]
    """Key columns, present in every output table."""
    sources: tuple[Source, ...]
    """One per input table of the job."""
    transform: Callable[[Mapping[str, "DataFrame"]], dict[str, "DataFrame"]]
    """Silver rows in scope by table -> output rows by gold table (the job's pure
    transforms; rows of keys outside the affected ones are dropped)."""


@dataclass(frozen=True)
class Tail:
    """A job with its own incremental path (SPC: ``spc_tail``), given the changed rows of
    its one input."""

    table: str
    """Qualified name of the silver input."""
    update: Callable[["SparkSession", str, "DataFrame", "DataFrame"], dict]
    """(spark, lake root, the input at the version read, its changed rows) -> metrics,
    with ``mode``; writes the outputs."""


@dataclass(frozen=True)
class FullOnly:
    """A job that recomputes in full whenever an input changed."""

    reason: str


Spec = Keyed | Tail | FullOnly


def _day(df: "DataFrame") -> "DataFrame":
    from pyspark.sql import functions as F

    return df.withColumn("day", F.to_date("event_time"))


def _period_day(df: "DataFrame") -> "DataFrame":
    from pyspark.sql import functions as F

    return df.withColumn("period_start", F.to_date("event_time"))


def _kpis(scope: Mapping[str, "DataFrame"]) -> dict[str, "DataFrame"]:
    results = scope["silver.station_results"]
    stations = manufacturing_kpis.station_kpis(results)
    return {"gold.station_kpis": stations,
            "gold.line_kpis": manufacturing_kpis.line_kpis(results, stations)}


SPECS: dict[str, Spec] = {
    "gold_first_pass_yield": Keyed(
        ("plant", "line", "station", "day"),
        (Source("silver.station_results", _day,
                entity=("unit_serial", "plant", "line", "station")),),
        lambda s: {"gold.first_pass_yield":
                   gold_fpy.first_pass_yield(s["silver.station_results"])}),
    "gold_manufacturing_kpis": Keyed(
        ("plant", "line", "day"),
        (Source("silver.station_results", _day, entity=("unit_serial", "plant", "line")),),
        _kpis),
    "gold_capability": Keyed(
        ("plant", "line", "station", "period_start"),
        (Source("silver.station_results", _period_day),),
        lambda s: {"gold.capability": capability.capability(
            spc.measurements(s["silver.station_results"]), "day")}),
    "gold_spc": Tail("silver.station_results", spc_tail.run),
    "gold_vehicle_features": FullOnly(
        "as-of dates are anchored at the last telemetry day and spaced by the date range"),
    "gold_reliability": FullOnly(
        "censoring, vehicles in service and months at risk are relative to the last "
        "event day"),
    "gold_kpi_attribution": FullOnly("its periods are the last 7 days of data and the 7 "
                                     "before"),
    "gold_defect_pareto": FullOnly("shares and ranks are over all defects of each Pareto"),
    "gold_dimensions": FullOnly("small tables; station first/last seen span all history"),
    "gold_mtbf": FullOnly("time in service of every unit runs to the last event day"),
}


# --- edges ------------------------------------------------------------------------------

def _version(spark: "SparkSession", lake_root: str, name: str) -> int | None:
    return lake.table_version(spark, lake_root, catalog.get(name))


def watermarks(spark: "SparkSession", lake_root: str, job: str) -> dict[str, int]:
    """Input table -> the Delta version the last successful run of ``job`` consumed: the
    input versions of its latest SUCCEEDED row in ops.job_runs (the runner records the
    versions a run read, so the run and its watermark are one commit)."""
    from pyspark.sql import functions as F

    table = catalog.get("ops.job_runs")
    if not catalog.exists(spark, lake_root, table):
        return {}
    last = (catalog.read(spark, lake_root, table)
            .where((F.col("job") == job) & (F.col("status") == "SUCCEEDED")
                   & F.col("metrics")["mode"].isin(*MODES))
            .orderBy(F.col("ended_at").desc()).select("inputs").first())
    if last is None:
        return {}
    return {i.table: i.version for i in last.inputs if i.version is not None}


def _read_at(spark: "SparkSession", lake_root: str, name: str, version: int) -> "DataFrame":
    return (spark.read.format("delta").option("versionAsOf", version)
            .load(catalog.location(lake_root, catalog.get(name))))


def _changes(spark: "SparkSession", lake_root: str, name: str, after: int, upto: int
             ) -> "DataFrame":
    """Rows changed in versions (after, upto] of ``name`` (inserted, deleted, both images
    of updates: each can change an output), without the CDF columns."""
    df = (spark.read.format("delta").option("readChangeFeed", "true")
          .option("startingVersion", after + 1).option("endingVersion", upto)
          .load(catalog.location(lake_root, catalog.get(name))))
    return df.drop(*_CDF_COLUMNS)


def _semi(df: "DataFrame", keys: "DataFrame", columns: Sequence[str]) -> "DataFrame":
    """Rows of ``df`` whose ``columns`` equal a row of ``keys`` (nulls equal nulls)."""
    from functools import reduce

    from pyspark.sql import functions as F

    k = keys.select(*[F.col(c).alias(f"_s_{c}") for c in columns])
    cond = reduce(lambda a, b: a & b,
                  [F.col(c).eqNullSafe(F.col(f"_s_{c}")) for c in columns])
    return df.join(k, cond, "left_semi")


# --- the run ----------------------------------------------------------------------------

def run(spark: "SparkSession", lake_root: str, job: str, spec: Spec,
        inputs: Sequence[str], outputs: Sequence[str],
        full_run: Callable[["SparkSession", str], dict], full: bool = False) -> dict:
    """Run ``job`` incrementally by ``spec`` where it can, else ``full_run``. Metrics say
    the mode and why; ``CONSUMED`` holds the input versions read, for the runner to
    record."""
    from pyspark.errors import AnalysisException

    clock = _Phases()
    turned_on = []
    for name in inputs:
        table = catalog.get(name)
        if catalog.exists(spark, lake_root, table) and \
                lake.enable_change_data_feed(spark, lake_root, table):
            turned_on.append(name)
    # Versions are taken before reading: rows committed meanwhile are next run's changes.
    now = {name: _version(spark, lake_root, name) for name in inputs}
    marks = {} if full else watermarks(spark, lake_root, job)
    reason = None
    if full:
        reason = "full rebuild requested"
    elif any(v is None for v in now.values()):
        reason = "an input table does not exist yet"
    elif set(marks) != set(inputs):
        reason = "first run (no watermark)"
    elif any(marks[t] > now[t] for t in inputs):
        reason = "an input table was recreated (its version went back)"
    elif not all(catalog.exists(spark, lake_root, catalog.get(t)) for t in outputs):
        reason = "an output table is missing"
    elif all(marks[t] == now[t] for t in inputs):
        return {"mode": "unchanged", CONSUMED: now}
    elif isinstance(spec, FullOnly):
        reason = spec.reason
    clock.lap("plan")
    changes: dict[str, "DataFrame"] = {}
    changed_rows = 0
    if reason is None:
        for name in inputs:
            if marks[name] == now[name]:
                continue
            try:
                changes[name] = _changes(spark, lake_root, name, marks[name], now[name])
                changed_rows += changes[name].count()
            except AnalysisException as exc:
                first_line = str(exc).strip().splitlines()[0][:300]
                reason = (f"change data feed of {name} unavailable for versions "
                          f"{marks[name] + 1}..{now[name]}: {first_line}")
                break
    clock.lap("changes")
    if reason is not None:
        out = dict(full_run(spark, lake_root) or {})
        out.update(mode="full", reason=reason)
        clock.lap("rebuild")
    elif isinstance(spec, Tail):
        out = spec.update(spark, lake_root, _read_at(spark, lake_root, spec.table,
                                                     now[spec.table]), changes[spec.table])
        out["changed_rows"] = changed_rows
        clock.lap("write")
    else:
        out = _run_keyed(spark, lake_root, spec, now, changes, clock)
        out["changed_rows"] = changed_rows
        if out["mode"] == "full":  # the scope was most of the input: a rebuild is cheaper
            out.update(full_run(spark, lake_root) or {})
            clock.lap("rebuild")
    if turned_on:
        out["cdf_enabled"] = ",".join(turned_on)
    out[CONSUMED] = now
    clock.lap("record")
    out["seconds_by_phase"] = clock.summary()
    return out


class _Phases:
    """Wall-clock seconds per phase of a run, for its metrics."""

    def __init__(self) -> None:
        self._last = time.monotonic()
        self._laps: list[tuple[str, float]] = []

    def lap(self, name: str) -> None:
        now = time.monotonic()
        self._laps.append((name, now - self._last))
        self._last = now

    def summary(self) -> str:
        return " ".join(f"{n}={s:.1f}" for n, s in self._laps)


#: A keyed run whose affected keys hold more than this share of the input rows rebuilds
#: instead: a MERGE replacing most of a table costs more than overwriting it (SPC, whose
#: key is a whole series, is the usual case: a day of new results touches every series).
REBUILD_ABOVE_SCOPE_SHARE = 0.5


def _run_keyed(spark: "SparkSession", lake_root: str, spec: Keyed, versions: dict[str, int],
               changes: dict[str, "DataFrame"], clock: "_Phases") -> dict:
    key = list(spec.key)
    silver = {s.table: _read_at(spark, lake_root, s.table, versions[s.table])
              for s in spec.sources}
    affected = None
    for src in spec.sources:
        if src.table not in changes:
            continue
        changed = changes[src.table]
        keys = src.key(changed).select(*key)
        if src.entity:
            touched = changed.select(*src.entity).distinct()
            keys = keys.unionByName(
                src.key(_semi(silver[src.table], touched, src.entity)).select(*key))
        affected = keys if affected is None else affected.unionByName(keys)
    if affected is None:
        return {"mode": "incremental", "keys": 0, "scope_rows": 0}
    # Few keys (aggregates of the changes): hold them on the driver, broadcast them.
    rows = affected.distinct().collect()
    keys_df = spark.createDataFrame(rows, affected.schema)
    clock.lap("keys")
    if not rows:
        return {"mode": "incremental", "keys": 0, "scope_rows": 0}
    scope = {}
    for src in spec.sources:
        in_keys = _semi(src.key(silver[src.table]), keys_df, key)
        if src.entity:
            entities = in_keys.select(*src.entity).distinct()
            scope[src.table] = _semi(silver[src.table], entities, src.entity)
        else:
            scope[src.table] = in_keys.select(*silver[src.table].columns)
        scope[src.table] = scope[src.table].cache()
    scope_rows = sum(df.count() for df in scope.values())
    input_rows = sum(silver[t].count() for t in silver)
    clock.lap("scope")
    if scope_rows > REBUILD_ABOVE_SCOPE_SHARE * input_rows:
        for df in scope.values():
            df.unpersist()
        return {"mode": "full", "keys": len(rows), "scope_rows": scope_rows,
                "input_rows": input_rows,
                "reason": f"the changes touch {len(rows):,} keys holding {scope_rows:,} of "
                          f"{input_rows:,} input rows (over "
                          f"{REBUILD_ABOVE_SCOPE_SHARE:.0%}): rebuilding costs less than "
                          f"replacing them key by key"}
    written = {}
    for name, df in spec.transform(scope).items():
        table = catalog.get(name)
        lake.replace_keys(_semi(df, keys_df, key), lake_root, table, keys_df, key)
        written[name] = _last_commit_rows(spark, lake_root, table)
    clock.lap("write")
    for df in scope.values():
        df.unpersist()
    return {"mode": "incremental", "keys": len(rows), "scope_rows": scope_rows,
            "input_rows": input_rows,
            **{f"rows_{n.split('.', 1)[1]}": v for n, v in written.items()}}


def _last_commit_rows(spark: "SparkSession", lake_root: str, table: catalog.Table) -> str:
    """'inserted/deleted' rows of the table's last commit (a MERGE)."""
    m = (lake.last_commit(spark, lake_root, table) or (None, {}))[1]
    return f"+{m.get('numTargetRowsInserted', '?')}/-{m.get('numTargetRowsDeleted', '?')}"
