"""Gold SPC brought up to date from each series' first changed point: gold_spc's
incremental path.

A series' points are numbered in event-time order and its limits come from its first
points (``spc``). A new point at the end is appended; a late point renumbers every point
after it. Neither changes the points before the series' first changed point, nor, once the
series has its baselines, its limits. So for each series with changed silver rows:

- ``kept`` (s0): its points before the first changed (event time, event id), read from
  gold.spc_points. A series with fewer than ``need`` points there (the I-MR baseline and
  the X-bar baseline subgroups) is recomputed whole: its limits may change.
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

Each gold table then has, per series, that tail (or the whole series) replaced in one
Delta commit (``lake.replace_where``: no join with the table, unlike a MERGE). ``tests/unit/test_incremental.py``
checks the result equals a full rebuild, late points included.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, NamedTuple

from redline import catalog, lake
from redline.jobs import spc
from redline.jobs.spc import KEY, RULES

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

RULE_SPAN = max(length for _, length in RULES.values())
"""Points in the longest Nelson rule window (rule 7: 15)."""
CONTEXT = RULE_SPAN + 1
"""Points before the first recomputed hit that its window and the lags need."""


class _Series(NamedTuple):
    """One changed series and how much of it is kept."""

    plant: str
    line: str
    station: str
    characteristic: str
    t0: Any
    """(event_time, event_id) of its first changed point."""
    kept: int
    """Points kept (numbered 1..kept); 0 for a series recomputed whole."""
    kept_groups: int
    """Subgroups kept (1..kept_groups): the complete ones within the kept points."""
    tail: bool
    """False: recomputed whole (its baselines were not full before ``t0``)."""

    @property
    def key(self) -> tuple[str, str, str, str]:
        return self.plant, self.line, self.station, self.characteristic


def run(spark: SparkSession, lake_root: str, silver: DataFrame, changes: DataFrame,
        baseline_points: int = spc.DEFAULT_BASELINE_POINTS,
        subgroup_size: int = spc.DEFAULT_SUBGROUP_SIZE,
        baseline_subgroups: int = spc.DEFAULT_BASELINE_SUBGROUPS) -> dict:
    """Bring gold SPC up to date with ``changes`` (changed silver.station_results rows)
    given ``silver`` (the table at the version they lead to). Returns run metrics."""
    from pyspark.sql import functions as F
    from pyspark.sql import types as T

    first_change = (spc.measured_values(changes).groupBy(*KEY)
                    .agg(F.min(F.struct("event_time", "event_id")).alias("t0")))
    changed = first_change.collect()
    if not changed:
        return {"mode": "incremental", "keys": 0, "scope_rows": 0}
    starts = spark.createDataFrame(changed, first_change.schema)
    n = subgroup_size
    need = max(baseline_points, baseline_subgroups * n)
    tables = {t.name: t for t in (catalog.SPC_POINTS, catalog.SPC_SUBGROUPS,
                                  catalog.SPC_VIOLATIONS)}
    gold = {name: catalog.read(spark, lake_root, t) for name, t in tables.items()}

    # Per series: points kept, and the limits stored with them.
    before_t0 = F.struct("event_time", "event_id") < F.col("t0")
    state = {tuple(r[k] for k in KEY): r for r in (
        gold["spc_points"].join(F.broadcast(starts), list(KEY))
        .groupBy(*KEY).agg(F.max(F.when(before_t0, F.col("seq"))).alias("kept"),
                           F.max(F.when(F.col("seq") == 1, F.col("centre"))).alias("centre"),
                           F.max(F.when(F.col("seq") == 1, F.col("mr_centre")))
                           .alias("mr_centre"))
        .collect())}
    series = []
    for r in changed:
        key = tuple(r[k] for k in KEY)
        kept = state[key]["kept"] if key in state else None
        tail = kept is not None and kept >= need
        series.append(_Series(*key, r["t0"], kept if tail else 0, (kept // n) if tail else 0,
                              tail))
    bounds = spark.createDataFrame(series, T.StructType([
        *[T.StructField(k, T.StringType()) for k in KEY],
        T.StructField("t0", first_change.schema["t0"].dataType),
        T.StructField("kept", T.LongType()), T.StructField("kept_groups", T.LongType()),
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
                     .collect())
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
    from pyspark.sql import Window

    numbered = Window.partitionBy(*KEY).orderBy("event_time", "event_id")
    fresh = (spc.measured_values(silver.where(in_scope))
             .join(F.broadcast(bounds), list(KEY))
             .where(~F.col("tail") | (F.struct("event_time", "event_id") >= F.col("t0")))
             .withColumn("seq", F.col("kept") + F.row_number().over(numbered))
             .select(*KEY, "event_id", "event_time", "unit_serial", "value", "lsl", "usl",
                     "seq"))
    window = F.least(F.col(f"_from_{spc.CHART_INDIVIDUALS}") - CONTEXT,
                     F.col("kept_groups") * n + 1, F.col("kept"))
    context = (gold["spc_points"].join(F.broadcast(tails.join(context_from, list(KEY))),
                                       list(KEY))
               .where((F.col("seq") >= window) & (F.col("seq") <= F.col("kept")))
               .select(*fresh.columns))
    points = spc.with_moving_range(fresh.unionByName(context), baseline_points)
    limits = (spc.baseline_limits(points.join(bounds.where("NOT tail").select(*KEY),
                                              list(KEY)), baseline_points)
              .unionByName(spark.createDataFrame(
                  [(*s.key, state[s.key]["centre"], state[s.key]["mr_centre"])
                   for s in series if s.tail],
                  "plant string, line string, station string, characteristic string, "
                  "centre double, mr_centre double")))
    # Checkpoints cut the lineage: every step after would re-analyse the whole plan from
    # the silver read (seconds each on a deep plan), and the writes would recompute it.
    charted = spc.apply_limits(points, limits).localCheckpoint()
    new_points = charted.join(F.broadcast(bounds.select(*KEY, "kept")), list(KEY)) \
        .where(F.col("seq") > F.col("kept")).drop("kept")

    groups = spc.subgroups(
        charted.join(F.broadcast(bounds.select(*KEY, "kept_groups")), list(KEY))
        .where(F.col("seq") > F.col("kept_groups") * n).drop("kept_groups"),
        n, baseline_subgroups)
    group_limits = (spc.subgroup_baseline(groups.join(bounds.where("NOT tail").select(*KEY),
                                                      list(KEY)), baseline_subgroups)
                    .unionByName(gold["spc_subgroups"].where(F.col("subgroup") == 1)
                                 .join(F.broadcast(tails.select(*KEY)), list(KEY))
                                 .select(*KEY, F.col("xbar_centre"),
                                         # stored r_centre is null where the raw mean was 0,
                                         # and apply_subgroup_limits nulls both again
                                         F.col("r_centre"))))
    new_groups = spc.apply_subgroup_limits(groups, group_limits, n).localCheckpoint()
    group_context = (gold["spc_subgroups"]
                     .join(F.broadcast(tails.join(context_from, list(KEY))), list(KEY))
                     .where((F.col("subgroup") >= F.col(f"_from_{spc.CHART_XBAR}") - CONTEXT)
                            & (F.col("subgroup") <= F.col("kept_groups")))
                     .select(*new_groups.columns))
    violations = (spc.nelson_violations(
        charted, hits_from=hits_from_df.where(F.col("chart") == spc.CHART_INDIVIDUALS))
        .unionByName(spc.xbar_violations(
            new_groups.unionByName(group_context),
            hits_from=hits_from_df.where(F.col("chart") == spc.CHART_XBAR)))
        .localCheckpoint())

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
    lake.replace_where(violations, lake_root, tables["spc_violations"], " OR ".join([
        tails_of("end_seq", lambda s: s.kept - RULE_SPAN if s.tail else -1,
                 spc.CHART_INDIVIDUALS),
        tails_of("end_seq", lambda s: s.kept_groups - RULE_SPAN if s.tail else -1,
                 spc.CHART_XBAR)]))
    scope_rows = charted.count()
    for df in (charted, new_groups, violations, bounds):
        df.unpersist()
    return {"mode": "incremental", "keys": len(series),
            "whole_series": sum(1 for s in series if not s.tail),
            "scope_rows": scope_rows}
