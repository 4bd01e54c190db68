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
  was recreated or its CDF does not cover the range needed, when an output is missing or
  lacks columns of its schema, when the analysis settings the job reads changed since its
  last run (``GoldJob.settings``; a ``Tail`` job's update is told instead),
  when the affected keys hold most of the input rows (``REBUILD_ABOVE_SCOPE_SHARE``:
  replacing nearly every key costs more than a rebuild), and for jobs whose outputs are
  global (their reason is declared with the job and
  recorded in the run's metrics).

Rows that belong together in a transform (a unit's retests decide the KPIs of the day of
its first test) are declared as an *entity*: a changed row affects the keys of every row
of its entity, and an affected key is recomputed from every row of every entity that has
a row in it. Recomputing a key from a superset of its rows is harmless (the result is
filtered to the affected keys); from a subset would be wrong, hence the closure.

Each job declares its strategy in its ``JOB`` (``jobs/declare.py``): ``Keyed`` (key and
entities per input), ``Tail`` (its own update from the first changed point: SPC's
``spc_tail``) or ``Full`` with the reason every row depends on data-wide values; a job
that declares none is ``Full``. ``redline jobs list`` shows each job's strategy.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING

from redline import catalog, lake
from redline.catalog import Table
from redline.config import AnalysisConfig
from redline.jobs.declare import Full, GoldJob, Inputs, Keyed, Tail
from redline.runs import CONSUMED

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

MODES = ("full", "incremental", "unchanged")
_CDF_COLUMNS = ("_change_type", "_commit_version", "_commit_timestamp")


def day(df: DataFrame) -> DataFrame:
    """Rows keyed by the day of their event time (``day``)."""
    from pyspark.sql import functions as F

    return df.withColumn("day", F.to_date("event_time"))


# --- edges ------------------------------------------------------------------------------

SETTINGS = "settings"
"""Metric of a run holding the fingerprint of the analysis settings its job reads."""


def _last_run(spark: SparkSession, lake_root: str, job: str):
    from pyspark.sql import functions as F

    if not catalog.exists(spark, lake_root, catalog.JOB_RUNS):
        return None
    return (catalog.read(spark, lake_root, catalog.JOB_RUNS)
            .where((F.col("job") == job) & (F.col("status") == "SUCCEEDED")
                   & F.col("metrics")["mode"].isin(*MODES))
            .orderBy(F.col("ended_at").desc()).select("inputs", "metrics").first())


def watermarks(spark: SparkSession, lake_root: str, job: str) -> dict[str, int]:
    """Input table -> the Delta version the last successful run of ``job`` consumed: the
    input versions of its latest SUCCEEDED row in ops.job_runs (the runner records the
    versions a run read, so the run and its watermark are one commit)."""
    return _marks(_last_run(spark, lake_root, job))


def _marks(last) -> dict[str, int]:
    if last is None:
        return {}
    return {i.table: i.version for i in last.inputs if i.version is not None}


def _read_at(spark: SparkSession, lake_root: str, table: Table, version: int
             ) -> DataFrame:
    return (spark.read.format("delta").option("versionAsOf", version)
            .load(catalog.location(lake_root, table)))


def _changes(spark: SparkSession, lake_root: str, table: Table, after: int, upto: int
             ) -> DataFrame:
    """Rows changed in versions (after, upto] of ``table`` (inserted, deleted, both images
    of updates: each can change an output), without the CDF columns."""
    df = (spark.read.format("delta").option("readChangeFeed", "true")
          .option("startingVersion", after + 1).option("endingVersion", upto)
          .load(catalog.location(lake_root, table)))
    return df.drop(*_CDF_COLUMNS)


def _semi(df: DataFrame, keys: DataFrame, columns: Sequence[str]) -> DataFrame:
    """Rows of ``df`` whose ``columns`` equal a row of ``keys`` (nulls equal nulls)."""
    from functools import reduce

    from pyspark.sql import functions as F

    k = keys.select(*[F.col(c).alias(f"_s_{c}") for c in columns])
    cond = reduce(lambda a, b: a & b,
                  [F.col(c).eqNullSafe(F.col(f"_s_{c}")) for c in columns])
    return df.join(k, cond, "left_semi")


def computed(job: GoldJob, inputs: Inputs) -> dict[Table, DataFrame]:
    """The job's outputs as DataFrames, derived outputs computed from the DataFrames of
    the outputs before them (nothing is written)."""
    out: dict[Table, DataFrame] = {}
    for table, df in job.transform(inputs).items():
        out[table] = df(dict(out)) if callable(df) else df
    return out


# --- the run ----------------------------------------------------------------------------

def run(spark: SparkSession, lake_root: str, job: GoldJob,
        full_run: Callable[[], dict], full: bool = False,
        settings: AnalysisConfig | None = None) -> dict:
    """Run ``job`` incrementally by its strategy where it can, else ``full_run``. Metrics
    say the mode and why; ``CONSUMED`` holds the input versions read, for the runner to
    record, and ``SETTINGS`` the fingerprint of the analysis ``settings`` the job reads
    (``GoldJob.settings``): when it differs from the last run's, a run follows even without
    new input rows (``Keyed`` and ``Full`` jobs rebuild; a ``Tail`` update is told)."""
    from pyspark.errors import AnalysisException

    strategy = job.incremental
    settings = settings if settings is not None else AnalysisConfig()
    fingerprint = settings.fingerprint(job.settings) if job.settings else None
    inputs = job.inputs
    clock = _Phases()
    turned_on = []
    for table in inputs:
        if catalog.exists(spark, lake_root, table) and \
                lake.enable_change_data_feed(spark, lake_root, table):
            turned_on.append(table.qualified_name)
    # Versions are taken before reading: rows committed meanwhile are next run's changes.
    now = {t: lake.table_version(spark, lake_root, t) for t in inputs}
    consumed = {t.qualified_name: v for t, v in now.items()}
    last = None if full else _last_run(spark, lake_root, job.name)
    recorded = _marks(last)
    marks = {t: recorded[t.qualified_name] for t in inputs if t.qualified_name in recorded}
    settings_changed = fingerprint is not None and last is not None and \
        last.metrics.get(SETTINGS) != fingerprint
    stamp = {SETTINGS: fingerprint} if fingerprint is not None else {}
    reason = None
    if full:
        reason = "full rebuild requested"
    elif any(v is None for v in now.values()):
        reason = "an input table does not exist yet"
    elif set(recorded) != {t.qualified_name for t in inputs}:
        reason = "first run (no watermark)"
    elif any(marks[t] > now[t] for t in inputs):
        reason = "an input table was recreated (its version went back)"
    elif not all(catalog.exists(spark, lake_root, t) for t in job.outputs):
        reason = "an output table is missing"
    elif all(marks[t] == now[t] for t in inputs) and not settings_changed:
        return {"mode": "unchanged", CONSUMED: consumed, **stamp}
    elif any(set(t.schema().fieldNames()) - set(catalog.read(spark, lake_root, t).columns)
             for t in job.outputs):
        reason = "an output table lacks columns of its schema (written by an older release)"
    elif settings_changed and not isinstance(strategy, Tail):
        reason = (f"analysis settings it reads changed since the last run "
                  f"({', '.join(job.settings)})")
    elif isinstance(strategy, Full):
        reason = strategy.reason
    clock.lap("plan")
    changes: dict[Table, DataFrame] = {}
    changed_rows = 0
    if reason is None:
        for table in inputs:
            if marks[table] == now[table]:
                continue
            try:
                changes[table] = _changes(spark, lake_root, table, marks[table], now[table])
                changed_rows += changes[table].count()
            except AnalysisException as exc:
                first_line = str(exc).strip().splitlines()[0][:300]
                reason = (f"change data feed of {table.qualified_name} unavailable for "
                          f"versions {marks[table] + 1}..{now[table]}: {first_line}")
                break
    clock.lap("changes")
    if reason is not None:
        out = dict(full_run() or {})
        out.update(mode="full", reason=reason)
        clock.lap("rebuild")
    elif isinstance(strategy, Tail):
        table = _read_at(spark, lake_root, strategy.table, now[strategy.table])
        out = strategy.update(spark, lake_root, table,
                              changes.get(strategy.table, table.limit(0)), settings,
                              settings_changed)
        out["changed_rows"] = changed_rows
        if settings_changed:
            out["settings_changed"] = ",".join(job.settings)
        clock.lap("write")
    else:
        out = _run_keyed(spark, lake_root, job, now, changes, clock, settings)
        out["changed_rows"] = changed_rows
        if out["mode"] == "full":  # the scope was most of the input: a rebuild is cheaper
            out.update(full_run() or {})
            clock.lap("rebuild")
    if turned_on:
        out["cdf_enabled"] = ",".join(turned_on)
    out.update(stamp)
    out[CONSUMED] = consumed
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


def _run_keyed(spark: SparkSession, lake_root: str, job: GoldJob,
               versions: Mapping[Table, int], changes: Mapping[Table, DataFrame],
               clock: _Phases, settings: AnalysisConfig) -> dict:
    spec = job.incremental
    assert isinstance(spec, Keyed)
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
    input_rows = sum(df.count() for df in silver.values())
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
    inputs = Inputs(scope, settings)
    try:
        for table, df in computed(job, inputs).items():
            lake.replace_keys(_semi(df, keys_df, key), lake_root, table, keys_df, key)
            written[table.name] = _last_commit_rows(spark, lake_root, table)
    finally:
        inputs.release()
    clock.lap("write")
    for df in scope.values():
        df.unpersist()
    return {"mode": "incremental", "keys": len(rows), "scope_rows": scope_rows,
            "input_rows": input_rows, **{f"rows_{n}": v for n, v in written.items()}}


def _last_commit_rows(spark: SparkSession, lake_root: str, table: Table) -> str:
    """'inserted/deleted' rows of the table's last commit (a MERGE)."""
    m = (lake.last_commit(spark, lake_root, table) or (None, {}))[1]
    return f"+{m.get('numTargetRowsInserted', '?')}/-{m.get('numTargetRowsDeleted', '?')}"
