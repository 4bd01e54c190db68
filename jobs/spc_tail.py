"""Gold SPC brought up to date from each series' first changed point: gold_spc's
incremental path.

A series' points are numbered in event-time order and its limits come from its baseline
(``spc``: its first points, or the points of a date range). A new point at the end is
appended; a late point renumbers every point after it. Neither changes the points before
the series' first changed point, nor, once the series has its baselines, its limits. So
for each series with changed silver rows:

- ``kept`` (s0): its points before the first changed (event time, event id), read from
  gold.spc_points. Its limits are kept as stored when the stored baselines (the
  ``baseline`` of gold.spc_points and gold.spc_subgroups, and the subgroup size) are the
  ones its settings give now, and they cannot move: with a count baseline, ``kept``
  covers both baselines (``need`` points: the I-MR baseline and the X-bar baseline
  subgroups); with a date-range baseline, the first changed point is after the range
  (a late point inside or before it changes the baseline's points or subgroups).
  Otherwise the series is recomputed whole: its limits may change.
- Points s0+1, s0+2, ... are numbered from the silver rows from that point on and charted
  against the limits stored for the series (the moving range of point s0+1 takes point
  s0 from gold).
- Subgroups from the first one holding point s0+1: the subgroups before it are complete
  and hold only kept points.
- Nelson episodes: a rule hit at a new point looks back at most 15 points (``RULE_SPAN``),
  so it can only extend an episode that ends 15 points or less before s0. Those episodes
  and all later ones are recomputed, each rule from the first hit of the earliest of them
  (else from s0+1), on the points from 16 points before that (window and lag context).
  The X-bar chart does the same on subgroup numbers.

When the SPC settings changed since the last run (``settings_changed``), every series in
gold is checked as well, changed or not: one whose stored baselines are not the
configured ones is recomputed whole, the others keep their points and limits. The
violations are then recomputed from all of gold's points (the rules that are on may have
changed): a rare event, so simplicity wins over the cost.

Each gold table then has, per series, that tail (or the whole series) replaced in one
Delta commit (``lake.replace_where``: no join with the table, unlike a MERGE).
``tests/unit/test_incremental.py`` and ``test_spc_tail.py`` check the result equals a full
rebuild, late points and changed settings included.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, NamedTuple

from redline import catalog, lake
from redline.config import AnalysisConfig
from redline.jobs import spc
from redline.jobs.spc import KEY, RULES

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

RULE_SPAN = max(length for _, length in RULES.values())
"""Points in the longest Nelson rule window (rule 7: 15)."""
CONTEXT = RULE_SPAN + 1
"""Points before the first recomputed hit that its window and the lags need."""

_KEY_DDL = "plant string, line string, station string, characteristic string"


class _Series(NamedTuple):
    """One series to update and how much of it is kept."""

    plant: str
    line: str
    station: str
    characteristic: str
    t0: Any
    """(event_time, event_id) of its first changed point; None when none changed (a
    series recomputed for its settings)."""
    kept: int
    """Points kept (numbered 1..kept); 0 for a series recomputed whole."""
    kept_groups: int
    """Subgroups kept (1..kept_groups): the complete ones within the kept points."""
    kept_group_points: int
    """Points in the kept subgroups (kept_groups times the subgroup size)."""
    tail: bool
    """False: recomputed whole (its baselines were not full, or not final, before ``t0``,
    or not the configured ones)."""

    @property
    def key(self) -> tuple[str, str, str, str]:
        return self.plant, self.line, self.station, self.characteristic


def _plan(key: tuple, t0: Any, t0_day: Any, points: Any, groups: Any,
          settings: AnalysisConfig) -> _Series | None:
    """How series ``key`` is updated, from its stored state (``points``: ``kept`` and the
    I-MR limits at point 1; ``groups``: the X-bar limits and size of subgroup 1; either
    None when gold has none); None when it needs nothing."""
    s = settings.for_series(*key)
    same = (points is not None and groups is not None
            and points["baseline"] == spc.imr_baseline(s)
            and groups["baseline"] == spc.xbar_baseline(s)
            and groups["subgroup_size"] == s.spc_subgroup_size)
    if t0 is None:
        return None if same else _Series(*key, None, 0, 0, 0, False)
    kept = points["kept"] if points is not None else None
    dates = s.baseline_dates
    if dates is not None:
        final = t0_day > dates[1]
    else:
        final = kept is not None and kept >= max(
            s.spc_baseline_points, s.spc_baseline_subgroups * s.spc_subgroup_size)
    if not (same and final and kept):
        return _Series(*key, t0, 0, 0, 0, False)
    n = s.spc_subgroup_size
    return _Series(*key, t0, kept, kept // n, (kept // n) * n, True)


def run(spark: SparkSession, lake_root: str, silver: DataFrame, changes: DataFrame,
        settings: AnalysisConfig | None = None, settings_changed: bool = False) -> dict:
    """Bring gold SPC up to date with ``changes`` (changed silver.station_results rows)
    given ``silver`` (the table at the version they lead to), with the analysis
    ``settings``; ``settings_changed``: they differ from the last run's. Returns run
    metrics."""
    from pyspark.sql import functions as F

    settings = settings if settings is not None else spc.DEFAULTS
    first_change = (spc.measured_values(changes).groupBy(*KEY)
                    .agg(F.min(F.struct("event_time", "event_id")).alias("t0"))
                    .withColumn("t0_day", F.to_date("t0.event_time")))
    changed = first_change.collect()
    if not changed and not settings_changed:
        return {"mode": "incremental", "keys": 0, "scope_rows": 0}
    tables = {t.name: t for t in (catalog.SPC_POINTS, catalog.SPC_SUBGROUPS,
                                  catalog.SPC_VIOLATIONS)}
    gold = {name: catalog.read(spark, lake_root, t) for name, t in tables.items()}

    # Per series: points kept, and the limits stored with them. After a change of
    # settings every series of gold is looked at, else the changed ones only.
    starts = spark.createDataFrame(changed, first_change.schema)
    how = "left" if settings_changed else "inner"
    before_t0 = F.col("t0").isNull() | (F.struct("event_time", "event_id") < F.col("t0"))
    first = F.col("seq") == 1
    stored = {tuple(r[k] for k in KEY): r for r in (
        gold["spc_points"].join(F.broadcast(starts), list(KEY), how)
        .groupBy(*KEY).agg(F.max(F.when(before_t0, F.col("seq"))).alias("kept"),
                           *[F.max(F.when(first, F.col(c))).alias(c)
                             for c in spc.LIMIT_COLUMNS])
        .collect())}
    stored_groups = {tuple(r[k] for k in KEY): r for r in (
        gold["spc_subgroups"].where(F.col("subgroup") == 1)
        .join(F.broadcast(starts.select(*KEY)), list(KEY), how)
        .select(*KEY, "subgroup_size", *spc.SUBGROUP_LIMIT_COLUMNS).collect())}
    t0s = {tuple(r[k] for k in KEY): (r["t0"], r["t0_day"]) for r in changed}
    keys = sorted(set(t0s) | (set(stored) if settings_changed else set()))
    series = [s for s in (_plan(k, *t0s.get(k, (None, None)), stored.get(k),
                                stored_groups.get(k), settings) for k in keys) if s]
    metrics = {"mode": "incremental", "keys": len(series),
               "whole_series": sum(1 for s in series if not s.tail), "scope_rows": 0}
    if series:
        metrics["scope_rows"] = _update(spark, lake_root, silver, settings, settings_changed,
                                        series, stored, stored_groups, gold, tables,
                                        first_change.schema["t0"].dataType)
    if settings_changed:
        # The rules that are on may have changed: every series' episodes, from gold.
        points = catalog.read(spark, lake_root, tables["spc_points"])
        groups = catalog.read(spark, lake_root, tables["spc_subgroups"])
        lake.overwrite(spc.nelson_violations(points, settings=settings)
                       .unionByName(spc.xbar_violations(groups, settings=settings)),
                       lake_root, tables["spc_violations"])
        metrics["violations"] = "recomputed for every series (settings changed)"
    return metrics


def _update(spark: SparkSession, lake_root: str, silver: DataFrame,
            settings: AnalysisConfig, settings_changed: bool, series: list[_Series],
            stored: dict, stored_groups: dict, gold: dict, tables: dict, t0_type) -> int:
    """Recompute ``series`` (their tails, or whole) and write them; returns the points
    charted (the scope)."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F
    from pyspark.sql import types as T

    bounds = spark.createDataFrame(series, T.StructType([
        *[T.StructField(k, T.StringType()) for k in KEY],
        T.StructField("t0", t0_type),
        T.StructField("kept", T.LongType()), T.StructField("kept_groups", T.LongType()),
        T.StructField("kept_group_points", T.LongType()),
        T.StructField("tail", T.BooleanType())])).cache()
    tails = bounds.where("tail")

    # Nelson hits to recompute, per series, chart and rule: from the first hit of the
    # earliest episode a new hit could extend, else from the first new point.
    reach = {spc.CHART_INDIVIDUALS: "kept", spc.CHART_XBAR: "kept_groups"}
    open_episodes = (gold["spc_violations"].join(F.broadcast(tails), list(KEY))
                     .where(F.col("end_seq") > F.when(
                         F.col("chart") == spc.CHART_INDIVIDUALS, F.col("kept"))
                         .otherwise(F.col("kept_groups")) - RULE_SPAN)
                     .groupBy(*KEY, "chart", "rule").agg(F.min("start_seq").alias("start"))
                     .collect()) if not settings_changed else []
    first_hit = {(*(r[k] for k in KEY), r["chart"], r["rule"]):
                 r["start"] + RULES[r["rule"]][1] - 1 for r in open_episodes}
    hits_from = []
    for s in series:
        for chart, col in reach.items():
            first_new = getattr(s, col) + 1
            for rule in RULES:
                hits_from.append((*s.key, chart, rule,
                                  min(first_hit.get((*s.key, chart, rule), first_new),
                                      first_new)))
    hits_from_df = spark.createDataFrame(hits_from, T.StructType([
        *[T.StructField(k, T.StringType()) for k in KEY], T.StructField("chart", T.StringType()),
        T.StructField("rule", T.IntegerType()), T.StructField("from_seq", T.LongType())]))
    context_from = hits_from_df.groupBy(*KEY).agg(*[
        F.min(F.when(F.col("chart") == chart, F.col("from_seq"))).alias(f"_from_{chart}")
        for chart in reach])

    # New points: the series' silver rows from the first changed one (all of a whole
    # series), numbered after the kept ones; the kept points in the context window.
    in_scope = F.lit(False)
    for s in series:
        on_station = ((F.col("plant") == s.plant) & (F.col("line") == s.line)
                      & (F.col("station") == s.station))
        in_scope = in_scope | (on_station & (F.col("event_time") >= s.t0["event_time"])
                               if s.tail else on_station)
    numbered = Window.partitionBy(*KEY).orderBy("event_time", "event_id")
    fresh = (spc.measured_values(silver.where(in_scope))
             .join(F.broadcast(bounds), list(KEY))
             .where(~F.col("tail") | (F.struct("event_time", "event_id") >= F.col("t0")))
             .withColumn("seq", F.col("kept") + F.row_number().over(numbered))
             .select(*KEY, "event_id", "event_time", "unit_serial", "value", "lsl", "usl",
                     "seq"))
    window = F.least(F.col(f"_from_{spc.CHART_INDIVIDUALS}") - CONTEXT,
                     F.col("kept_group_points") + 1, F.col("kept"))
    context = (gold["spc_points"].join(F.broadcast(tails.join(context_from, list(KEY))),
                                       list(KEY))
               .where((F.col("seq") >= window) & (F.col("seq") <= F.col("kept")))
               .select(*fresh.columns))
    points = spc.with_moving_range(fresh.unionByName(context), settings)
    whole = bounds.where("NOT tail").select(*KEY)
    limit_types = ("centre double, mr_centre double, baseline string, "
                   "baseline_start timestamp, baseline_end timestamp")
    limits = (spc.baseline_limits(points.join(whole, list(KEY)), settings)
              .select(*KEY, *spc.LIMIT_COLUMNS)
              .unionByName(spark.createDataFrame(
                  [(*s.key, *(stored[s.key][c] for c in spc.LIMIT_COLUMNS))
                   for s in series if s.tail], f"{_KEY_DDL}, {limit_types}")))
    # Checkpoints cut the lineage: every step after would re-analyse the whole plan from
    # the silver read (seconds each on a deep plan), and the writes would recompute it.
    charted = spc.apply_limits(points, limits).localCheckpoint()
    new_points = charted.join(F.broadcast(bounds.select(*KEY, "kept")), list(KEY)) \
        .where(F.col("seq") > F.col("kept")).drop("kept")

    groups = spc.subgroups(
        charted.join(F.broadcast(bounds.select(*KEY, "kept_group_points")), list(KEY))
        .where(F.col("seq") > F.col("kept_group_points")).drop("kept_group_points"),
        settings)
    group_types = ("xbar_centre double, r_centre double, baseline string, "
                   "baseline_start timestamp, baseline_end timestamp")
    # Stored r_centre is null where the raw mean was 0, and apply_subgroup_limits nulls
    # both again.
    group_limits = (spc.subgroup_baseline(groups.join(whole, list(KEY)), settings)
                    .select(*KEY, *spc.SUBGROUP_LIMIT_COLUMNS)
                    .unionByName(spark.createDataFrame(
                        [(*s.key, *(stored_groups[s.key][c]
                                    for c in spc.SUBGROUP_LIMIT_COLUMNS))
                         for s in series if s.tail], f"{_KEY_DDL}, {group_types}")))
    new_groups = spc.apply_subgroup_limits(groups, group_limits).localCheckpoint()

    # Per series: its points and subgroups after the kept ones, and its episodes on each
    # chart that may change (ending within RULE_SPAN before the kept ones, or later).
    def tails_of(column: str, bound, chart: str | None = None) -> str:
        return " OR ".join(
            "(" + " AND ".join([*(f"{k} <=> {lake.sql_literal(v)}"
                                  for k, v in zip(KEY, s.key)),
                                *([f"chart = {lake.sql_literal(chart)}"] if chart else []),
                                f"{column} > {bound(s)}"]) + ")"
            for s in series)

    lake.replace_where(new_points, lake_root, tables["spc_points"],
                       tails_of("seq", lambda s: s.kept))
    lake.replace_where(new_groups, lake_root, tables["spc_subgroups"],
                       tails_of("subgroup", lambda s: s.kept_groups))
    frames = [charted, new_groups, bounds]
    if not settings_changed:  # else every series' violations are recomputed after
        group_context = (gold["spc_subgroups"]
                         .join(F.broadcast(tails.join(context_from, list(KEY))), list(KEY))
                         .where((F.col("subgroup")
                                 >= F.col(f"_from_{spc.CHART_XBAR}") - CONTEXT)
                                & (F.col("subgroup") <= F.col("kept_groups")))
                         .select(*new_groups.columns))
        violations = (spc.nelson_violations(
            charted, settings=settings,
            hits_from=hits_from_df.where(F.col("chart") == spc.CHART_INDIVIDUALS))
            .unionByName(spc.xbar_violations(
                new_groups.unionByName(group_context), settings=settings,
                hits_from=hits_from_df.where(F.col("chart") == spc.CHART_XBAR)))
            .localCheckpoint())
        lake.replace_where(violations, lake_root, tables["spc_violations"], " OR ".join([
            tails_of("end_seq", lambda s: s.kept - RULE_SPAN if s.tail else -1,
                     spc.CHART_INDIVIDUALS),
            tails_of("end_seq", lambda s: s.kept_groups - RULE_SPAN if s.tail else -1,
                     spc.CHART_XBAR)]))
        frames.append(violations)
    scope_rows = charted.count()
    for df in frames:
        df.unpersist()
    return scope_rows
