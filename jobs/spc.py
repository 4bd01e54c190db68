"""Silver station results -> gold SPC: I-MR control limits and Nelson rule violations.

Every measured characteristic (key: plant, line, station, characteristic) is charted as
an individuals / moving-range (I-MR) chart. Its limits come from a baseline window, the
first ``spc_baseline_points`` points of the key in event-time order, or the points of a
fixed date range (``spc_baseline_dates``) (Phase I), and are then held fixed for every
later point (Phase II): a process that drifts after the baseline moves away from its
limits instead of dragging them along. MRbar averages the moving ranges between two
baseline points. Each row says which baseline its limits came from (``baseline``:
"first 25 points" or "2024-05-01..2024-05-07", and its first and last event time).

The settings (``redline.config.AnalysisConfig``: baselines, subgroup size, the Nelson
rules that are on) reach the transforms as plain values (``Inputs.settings``) and may
differ per series (overrides per characteristic or series, ``series_settings``).

    centre = mean of the baseline values      MRbar = mean of the baseline moving ranges
    sigma  = MRbar / d2 (d2 = 1.128)          UCL/LCL = centre +/- 3 sigma
    MR chart: centre MRbar, UCL = D4 * MRbar (D4 = 3.267)

Nelson rules (L. S. Nelson, 1984), evaluated at every point over the window of points
ending there; z = (value - centre) / sigma:

    1  one point beyond 3 sigma                       |z| > 3
    2  9 points in a row on the same side             all z > 0 or all z < 0
    3  6 points in a row steadily increasing or decreasing (5 rises or 5 falls)
    4  14 points in a row alternating up and down     (13 alternating differences)
    5  2 of 3 points beyond 2 sigma on the same side
    6  4 of 5 points beyond 1 sigma on the same side
    7  15 points in a row within 1 sigma              all |z| < 1
    8  8 points in a row beyond 1 sigma, on both sides of the centre line
       (Nelson's definition: none within 1 sigma and points in both directions; a
       one-sided run of that kind is already caught by rules 5 and 6)

Windows of the same rule that overlap are one violation (an episode): a drift that keeps
9+ points above the centre for 40 points is one rule-2 row spanning those 40 points,
listing their event ids, not 32 overlapping rows.

X-bar/R charts (gold.spc_subgroups). The same points are also cut into rational
subgroups of ``spc_subgroup_size`` consecutive measurements (n = 5 by default; by count,
not by time: stations see units at an uneven pace, and a time bucket with one unit has no
range). Subgroup k holds points (k-1)n+1 .. kn; a trailing incomplete subgroup is not
charted until it fills. Limits come from the first ``spc_baseline_subgroups`` subgroups
(5 by default: at n = 5 the same 25 measurements as the I-MR baseline), or the subgroups
wholly inside the date-range baseline, and are then held fixed, with the published
constants for n = 2..10 (``SUBGROUP_CONSTANTS``)::

    X-bar chart: centre Xbarbar, UCL/LCL = Xbarbar +/- A2 Rbar
    R chart:     centre Rbar,    LCL = D3 Rbar, UCL = D4 Rbar
    sigma of a subgroup mean = A2 Rbar / 3  (= Rbar / (d2 sqrt n))

The Nelson rules run on the subgroup means with that sigma (the same rule code);
gold.spc_violations tells the charts apart by ``chart``: 'I' (individuals) or 'XBAR'.
An X-bar violation's ``points`` counts subgroups; its ``event_ids`` are every
measurement in them.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

from redline import catalog
from redline.config import AnalysisConfig
from redline.errors import RedlineError
from redline.jobs.declare import GoldJob, Tail
from redline.schemas.tables import SPC_POINTS, SPC_SUBGROUPS, SPC_VIOLATIONS

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame, SparkSession

    from redline.jobs.declare import Inputs, Outputs

KEY = ("plant", "line", "station", "characteristic")

DEFAULTS = AnalysisConfig()
"""The analysis settings of a run without configuration (``redline.config``)."""

#: Control-chart constants for moving ranges of two consecutive points.
D2 = 1.128
D4 = 3.267

#: Nelson rule number -> (name, points in its window).
RULES: dict[int, tuple[str, int]] = {
    1: ("1 point beyond 3 sigma", 1),
    2: ("9 points in a row on the same side of the centre line", 9),
    3: ("6 points in a row steadily increasing or decreasing", 6),
    4: ("14 points in a row alternating up and down", 14),
    5: ("2 of 3 points beyond 2 sigma on the same side", 3),
    6: ("4 of 5 points beyond 1 sigma on the same side", 5),
    7: ("15 points in a row within 1 sigma", 15),
    8: ("8 points in a row beyond 1 sigma on both sides", 8),
}

#: Control-chart constants for subgroups of n measurements, n -> (A2, D3, D4, d2), from the
#: published table (ASTM STP-15D; Montgomery, Introduction to Statistical Quality Control,
#: Appendix VI).
SUBGROUP_CONSTANTS: dict[int, tuple[float, float, float, float]] = {
    2: (1.880, 0.0, 3.267, 1.128),
    3: (1.023, 0.0, 2.574, 1.693),
    4: (0.729, 0.0, 2.282, 2.059),
    5: (0.577, 0.0, 2.114, 2.326),
    6: (0.483, 0.0, 2.004, 2.534),
    7: (0.419, 0.076, 1.924, 2.704),
    8: (0.373, 0.136, 1.864, 2.847),
    9: (0.337, 0.184, 1.816, 2.970),
    10: (0.308, 0.223, 1.777, 3.078),
}

#: Values of gold.spc_violations.chart.
CHART_INDIVIDUALS = "I"
CHART_XBAR = "XBAR"


def measurements(station_results: DataFrame, first_pass_only: bool = True) -> DataFrame:
    """One row per measured value, numbered ``seq`` 1, 2, ... per key in event-time order.

    With ``first_pass_only`` (the default) only attempt 1 is charted: a retest measures a
    reworked unit, not the process as it runs. Ties in event time are ordered by event id
    so that the numbering is deterministic.
    """
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    w = Window.partitionBy(*KEY).orderBy("event_time", "event_id")
    return (measured_values(station_results, first_pass_only)
            .withColumn("seq", F.row_number().over(w).cast("long")))


def measured_values(station_results: DataFrame, first_pass_only: bool = True
                    ) -> DataFrame:
    """``measurements`` without ``seq``: the charted values, unnumbered."""
    from pyspark.sql import functions as F

    df = station_results
    if first_pass_only:
        df = df.where(F.col("attempt") == 1)
    return df.select("event_id", "event_time", "unit_serial", "plant", "line", "station",
                     F.explode("measurements").alias("m")).select(
        "plant", "line", "station", F.col("m.characteristic").alias("characteristic"),
        "event_id", "event_time", "unit_serial", F.col("m.value").alias("value"),
        F.col("m.lsl").alias("lsl"), F.col("m.usl").alias("usl"))


def imr_baseline(settings: AnalysisConfig) -> str:
    """What the I-MR limits of a series with ``settings`` (``for_series``) come from: the
    ``baseline`` column of gold.spc_points."""
    dates = settings.baseline_dates
    if dates is not None:
        return f"{dates[0]}..{dates[1]}"
    return f"first {settings.spc_baseline_points} points"


def xbar_baseline(settings: AnalysisConfig) -> str:
    """What the X-bar/R limits of a series with ``settings`` come from: the ``baseline``
    column of gold.spc_subgroups (its subgroup size is in ``subgroup_size``)."""
    dates = settings.baseline_dates
    if dates is not None:
        return f"{dates[0]}..{dates[1]}"
    return (f"first {settings.spc_baseline_subgroups} subgroups of "
            f"{settings.spc_subgroup_size}")


def _settings_struct(s: AnalysisConfig) -> Column:
    from pyspark.sql import functions as F

    dates = s.baseline_dates
    return F.struct(
        F.lit(s.spc_baseline_points).alias("baseline_points"),
        F.lit(s.spc_baseline_subgroups).alias("baseline_subgroups"),
        F.lit(s.spc_subgroup_size).alias("subgroup_size"),
        (F.lit(dates[0]) if dates else F.lit(None).cast("date")).alias("baseline_from"),
        (F.lit(dates[1]) if dates else F.lit(None).cast("date")).alias("baseline_to"),
        F.array(*[F.lit(r) for r in s.rules]).cast("array<int>").alias("rules"),
        F.array(*[F.lit(p) for p in s.periods]).cast("array<string>").alias("periods"),
        F.lit(imr_baseline(s)).alias("imr_baseline"),
        F.lit(xbar_baseline(s)).alias("xbar_baseline"),
        F.lit(s.capability_min_n).alias("capability_min_n"))


def series_settings(settings: AnalysisConfig) -> Column:
    """The settings of each row's series (``AnalysisConfig.for_series`` of its key
    columns) as a struct: ``baseline_points``, ``baseline_subgroups``, ``subgroup_size``,
    ``baseline_from``/``baseline_to`` (null without a date-range baseline), ``rules``,
    ``periods``, the two charts' baseline labels and ``capability_min_n``. Needs the key
    columns only."""
    from functools import reduce

    from pyspark.sql import functions as F

    *overrides, (_, default) = settings.branches()
    expr = _settings_struct(default)
    for parts, s in reversed(overrides):  # least specific first: the most specific wins
        cond = reduce(lambda a, b: a & b,
                      [F.col(k) == v for k, v in zip(KEY[-len(parts):], parts)])
        expr = F.when(cond, _settings_struct(s)).otherwise(expr)
    return expr


def _bad(value: object, ok) -> bool:
    return not isinstance(value, int) or isinstance(value, bool) or not ok(value)


def control_limits(points: DataFrame, baseline_points: int | None = None,
                   settings: AnalysisConfig = DEFAULTS) -> DataFrame:
    """Every point of ``measurements`` with its I-MR centre line and limits (gold.spc_points).

    The baseline of each series comes from ``settings`` (``baseline_points``, when given,
    replaces its ``spc_baseline_points``). A series without a full baseline yet (fewer
    points than the baseline's, or no two points in a date-range baseline) keeps its
    points with null limits and baseline (and no rule can fire on them). A baseline without
    variation (MRbar = 0) gives null sigma and limits for the same reason.
    """
    if baseline_points is not None:
        if _bad(baseline_points, lambda v: v >= 2):
            raise RedlineError(
                "SPC_BASELINE_INVALID",
                f"baseline_points must be an integer >= 2 (one moving range needs two "
                f"points); got {baseline_points!r}")
        settings = replace(settings, spc_baseline_points=baseline_points)
    pts = with_moving_range(points, settings)
    return apply_limits(pts, baseline_limits(pts, settings))


def _in_date_range(day: Column, s: Column) -> Column:
    return (day >= s["baseline_from"]) & (day <= s["baseline_to"])


def with_moving_range(points: DataFrame, settings: AnalysisConfig = DEFAULTS) -> DataFrame:
    """Numbered points with ``moving_range`` (to the previous point of the key present),
    ``in_baseline`` (among the first ``baseline_points``, or in the date range) and
    ``_pair_in_baseline`` (this point and the one before are both in the baseline: the
    moving ranges the baseline's MRbar averages)."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    s = series_settings(settings)
    w = Window.partitionBy(*KEY).orderBy("seq")
    in_baseline = F.when(s["baseline_from"].isNotNull(),
                         _in_date_range(F.to_date("event_time"), s)) \
        .otherwise(F.col("seq") <= s["baseline_points"])
    return (points.withColumn("moving_range", F.abs(F.col("value") - F.lag("value").over(w)))
                  .withColumn("in_baseline", in_baseline)
                  .withColumn("_pair_in_baseline", F.col("in_baseline")
                              & F.coalesce(F.lag("in_baseline").over(w), F.lit(False))))


def baseline_limits(points: DataFrame, settings: AnalysisConfig = DEFAULTS) -> DataFrame:
    """Per key with a full baseline: ``centre`` and ``mr_centre`` (the mean moving range
    between baseline points, before the zero-variation rule) of ``with_moving_range``
    points, with ``baseline`` (what it is) and ``baseline_start``/``_end`` (its first and
    last event time). Full: the first ``baseline_points`` points are all there, or a
    date-range baseline holds at least two points."""
    from pyspark.sql import functions as F

    s = series_settings(settings)
    n = F.col("_n")
    return (points.where("in_baseline").groupBy(*KEY)
                  .agg(F.count("*").alias("_n"), F.avg("value").alias("centre"),
                       F.avg(F.when(F.col("_pair_in_baseline"), F.col("moving_range")))
                       .alias("mr_centre"),
                       F.min("event_time").alias("baseline_start"),
                       F.max("event_time").alias("baseline_end"))
                  .where(F.when(s["baseline_from"].isNotNull(), n >= 2)
                         .otherwise(n == s["baseline_points"]))
                  .withColumn("baseline", s["imr_baseline"]).drop("_n"))


LIMIT_COLUMNS = ("centre", "mr_centre", "baseline", "baseline_start", "baseline_end")
"""Columns of ``baseline_limits``: what a series keeps while its baseline is unchanged."""


def apply_limits(points: DataFrame, limits: DataFrame) -> DataFrame:
    """``with_moving_range`` points with the I-MR limits of their key from ``limits`` (key
    and ``LIMIT_COLUMNS``; a key missing there has none): gold.spc_points rows."""
    from pyspark.sql import functions as F

    sigma = F.when(F.col("mr_centre") > 0, F.col("mr_centre") / D2)
    out = (points.join(limits.select(*KEY, *LIMIT_COLUMNS), list(KEY), "left")
              .withColumn("sigma", sigma)
              .withColumn("lcl", F.col("centre") - 3 * F.col("sigma"))
              .withColumn("ucl", F.col("centre") + 3 * F.col("sigma"))
              .withColumn("mr_ucl", F.when(F.col("sigma").isNotNull(),
                                           D4 * F.col("mr_centre")))
              .withColumn("mr_centre", F.when(F.col("sigma").isNotNull(), F.col("mr_centre")))
              .withColumn("z", (F.col("value") - F.col("centre")) / F.col("sigma")))
    return out.select(*[f.name for f in SPC_POINTS.fields])


def xbar_r(points: DataFrame, subgroup_size: int | None = None,
           baseline_subgroups: int | None = None,
           settings: AnalysisConfig = DEFAULTS) -> DataFrame:
    """X-bar/R chart of ``measurements`` points: one row per complete subgroup with its
    mean, range and limits (gold.spc_subgroups; see the module doc).

    Subgroup size and baseline come from ``settings`` per series; ``subgroup_size`` and
    ``baseline_subgroups``, when given, replace its ``spc_subgroup_size`` and
    ``spc_baseline_subgroups``. A key without a full baseline (fewer than
    ``baseline_subgroups`` complete subgroups, or no complete subgroup in a date-range
    baseline), or whose baseline ranges are all zero, has null limits (and no rule can fire
    on it).
    """
    if subgroup_size is not None:
        if _bad(subgroup_size, lambda v: v in SUBGROUP_CONSTANTS):
            raise RedlineError(
                "SPC_SUBGROUP_INVALID",
                f"subgroup_size must be an integer from {min(SUBGROUP_CONSTANTS)} to "
                f"{max(SUBGROUP_CONSTANTS)} (the sizes with published A2, D3, D4); "
                f"got {subgroup_size!r}")
        settings = replace(settings, spc_subgroup_size=subgroup_size)
    if baseline_subgroups is not None:
        if _bad(baseline_subgroups, lambda v: v >= 1):
            raise RedlineError(
                "SPC_BASELINE_INVALID",
                f"baseline_subgroups must be an integer >= 1; got {baseline_subgroups!r}")
        settings = replace(settings, spc_baseline_subgroups=baseline_subgroups)
    groups = subgroups(points, settings)
    return apply_subgroup_limits(groups, subgroup_baseline(groups, settings))


def subgroups(points: DataFrame, settings: AnalysisConfig = DEFAULTS) -> DataFrame:
    """The complete subgroups of numbered points (a subgroup whose points are not all
    given is left out), each series cut by its own subgroup size, without limits.
    ``in_baseline``: among the first ``baseline_subgroups``, or every point in the date
    range."""
    from pyspark.sql import functions as F

    s = series_settings(settings)
    n = s["subgroup_size"]
    groups = (points.withColumn("subgroup_size", n)
              .withColumn("subgroup",
                          F.floor((F.col("seq") - 1) / F.col("subgroup_size")).cast("long") + 1)
              .groupBy(*KEY, "subgroup_size", "subgroup")
              .agg(F.count("*").alias("_n"), F.avg("value").alias("xbar"),
                   (F.max("value") - F.min("value")).alias("range"),
                   F.min("event_time").alias("start_time"),
                   F.max("event_time").alias("end_time"),
                   F.array_sort(F.collect_list(F.struct("seq", "event_id"))).alias("_ids"))
              .where(F.col("_n") == F.col("subgroup_size"))
              .withColumn("event_ids", F.transform("_ids", lambda p: p["event_id"])))
    in_dates = (_in_date_range(F.to_date("start_time"), s)
                & _in_date_range(F.to_date("end_time"), s))
    return groups.withColumn("in_baseline", F.when(s["baseline_from"].isNotNull(), in_dates)
                             .otherwise(F.col("subgroup") <= s["baseline_subgroups"]))


SUBGROUP_LIMIT_COLUMNS = ("xbar_centre", "r_centre", "baseline", "baseline_start",
                          "baseline_end")
"""Columns of ``subgroup_baseline``."""


def subgroup_baseline(groups: DataFrame, settings: AnalysisConfig = DEFAULTS) -> DataFrame:
    """Per key with a full baseline: ``xbar_centre`` and ``r_centre`` (before the
    zero-range rule) of ``subgroups``, with ``baseline``, ``baseline_start``/``_end``.
    Full: the first ``baseline_subgroups`` subgroups are all there, or a date-range
    baseline holds at least one complete subgroup."""
    from pyspark.sql import functions as F

    s = series_settings(settings)
    k = F.col("_k")
    return (groups.where("in_baseline").groupBy(*KEY)
                  .agg(F.count("*").alias("_k"), F.avg("xbar").alias("xbar_centre"),
                       F.avg("range").alias("r_centre"),
                       F.min("start_time").alias("baseline_start"),
                       F.max("end_time").alias("baseline_end"))
                  .where(F.when(s["baseline_from"].isNotNull(), k >= 1)
                         .otherwise(k == s["baseline_subgroups"]))
                  .withColumn("baseline", s["xbar_baseline"]).drop("_k"))


def _constant(index: int) -> Column:
    """Column of the published constant ``index`` of (A2, D3, D4, d2) for the row's
    ``subgroup_size``."""
    from pyspark.sql import functions as F

    pairs = [x for n, c in sorted(SUBGROUP_CONSTANTS.items()) for x in (F.lit(n), F.lit(c[index]))]
    return F.create_map(*pairs)[F.col("subgroup_size")]


def apply_subgroup_limits(groups: DataFrame, limits: DataFrame) -> DataFrame:
    """``subgroups`` with the X-bar/R limits of their key from ``limits`` (key and
    ``SUBGROUP_LIMIT_COLUMNS``; a key missing there has none), with the constants of each
    subgroup's size: gold.spc_subgroups."""
    from pyspark.sql import functions as F

    a2, d3, d4 = _constant(0), _constant(1), _constant(2)
    rbar = F.when(F.col("r_centre") > 0, F.col("r_centre"))
    out = (groups.join(limits.select(*KEY, *SUBGROUP_LIMIT_COLUMNS), list(KEY), "left")
                 .withColumn("r_centre", rbar)
                 .withColumn("xbar_centre", F.when(rbar.isNotNull(), F.col("xbar_centre")))
                 .withColumn("xbar_lcl", F.col("xbar_centre") - a2 * F.col("r_centre"))
                 .withColumn("xbar_ucl", F.col("xbar_centre") + a2 * F.col("r_centre"))
                 .withColumn("sigma_xbar", a2 * F.col("r_centre") / 3.0)
                 .withColumn("z", (F.col("xbar") - F.col("xbar_centre")) / F.col("sigma_xbar"))
                 .withColumn("r_lcl", d3 * F.col("r_centre"))
                 .withColumn("r_ucl", d4 * F.col("r_centre")))
    return out.select(*[f.name for f in SPC_SUBGROUPS.fields])


def xbar_violations(subgroups: DataFrame, hits_from: DataFrame | None = None,
                    settings: AnalysisConfig = DEFAULTS) -> DataFrame:
    """Nelson rule violations of the X-bar chart of ``xbar_r`` subgroups (chart 'XBAR');
    ``hits_from`` and ``settings`` as for ``nelson_violations``."""
    from pyspark.sql import functions as F

    charted = subgroups.select(
        *KEY, F.col("subgroup").alias("seq"), "event_ids", "start_time",
        F.col("end_time").alias("event_time"), F.col("xbar").alias("value"),
        F.col("xbar_centre").alias("centre"), F.col("sigma_xbar").alias("sigma"))
    return nelson_violations(charted, chart=CHART_XBAR, hits_from=hits_from,
                             settings=settings)


def _rule_conditions(w_base) -> dict[int, Column]:
    """Condition per rule, true at the last point of a window that breaks it."""
    from pyspark.sql import functions as F

    z, d, alt = F.col("z"), F.col("_d"), F.col("_alt")

    def frame(n: int):
        return w_base.rowsBetween(-(n - 1), 0)

    def count_of(cond: Column, n: int) -> Column:
        return F.sum(F.when(cond, 1).otherwise(0)).over(frame(n))

    def full(n: int) -> Column:
        return F.count(F.lit(1)).over(frame(n)) == n

    return {
        1: F.abs(z) > 3,
        2: full(9) & ((count_of(z > 0, 9) == 9) | (count_of(z < 0, 9) == 9)),
        3: (count_of(d > 0, 5) == 5) | (count_of(d < 0, 5) == 5),
        4: count_of(alt, 12) == 12,
        5: full(3) & ((count_of(z > 2, 3) >= 2) | (count_of(z < -2, 3) >= 2)),
        6: full(5) & ((count_of(z > 1, 5) >= 4) | (count_of(z < -1, 5) >= 4)),
        7: full(15) & (count_of(F.abs(z) < 1, 15) == 15),
        8: full(8) & (count_of(F.abs(z) > 1, 8) == 8)
                   & (count_of(z > 1, 8) >= 1) & (count_of(z < -1, 8) >= 1),
    }


def nelson_violations(spc_points: DataFrame, chart: str = CHART_INDIVIDUALS,
                      hits_from: DataFrame | None = None,
                      settings: AnalysisConfig = DEFAULTS) -> DataFrame:
    """Every violation episode of ``spc_points`` of the Nelson rules ``settings`` enable
    for its series (gold.spc_violations).

    Needs the key columns, ``seq``, ``event_id``, ``event_time``, ``value``, ``centre``
    and ``sigma``; points without limits are skipped. A chart whose points stand for
    several events (X-bar) passes ``event_ids`` (an array) instead of ``event_id`` and may
    pass ``start_time`` (the first event of the point; else ``event_time``).

    ``hits_from`` (key, ``rule``, ``from_seq``) keeps only the rule hits at ``seq >=
    from_seq`` of its keys and rules (the episodes from there on: ``spc_tail``); the points
    must then reach back 15 points before each ``from_seq``, the longest rule window.
    """
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    cols = spc_points.columns
    ids = F.col("event_ids") if "event_ids" in cols else F.array(F.col("event_id"))
    first = F.col("start_time") if "start_time" in cols else F.col("event_time")
    pts = (spc_points.where(F.col("sigma").isNotNull() & (F.col("sigma") > 0))
                     .select(*KEY, "seq", ids.alias("_ids"), first.alias("_first"),
                             "event_time", "value",
                             ((F.col("value") - F.col("centre")) / F.col("sigma")).alias("z")))
    w = Window.partitionBy(*KEY).orderBy("seq")
    pts = pts.withColumn("_d", F.col("value") - F.lag("value").over(w))
    pts = pts.withColumn("_alt", F.col("_d") * F.lag("_d").over(w) < 0)
    # Window expressions cannot sit inside explode(): evaluate them into columns first.
    flagged = pts.select(*KEY, "seq", *[F.when(c, F.lit(r)).alias(f"_r{r}")
                                        for r, c in _rule_conditions(w).items()])
    hits = flagged.select(*KEY, "seq", F.explode(F.filter(
        F.array(*[F.col(f"_r{r}") for r in sorted(RULES)]),
        lambda r: r.isNotNull())).alias("rule"))
    if any(set(s.rules) != set(RULES) for _, s in settings.branches()):
        hits = hits.where(F.array_contains(series_settings(settings)["rules"], F.col("rule")))
    if hits_from is not None:
        hits = (hits.join(F.broadcast(hits_from.select(*KEY, "rule", "from_seq")),
                          [*KEY, "rule"])
                    .where(F.col("seq") >= F.col("from_seq")).drop("from_seq"))

    length = F.element_at(F.array(*[F.lit(RULES[r][1]) for r in sorted(RULES)]), F.col("rule"))
    name = F.element_at(F.array(*[F.lit(RULES[r][0]) for r in sorted(RULES)]), F.col("rule"))
    hits = hits.withColumn("_start", F.col("seq") - length + 1)
    # Gaps and islands: a trigger whose window starts after the previous trigger's last
    # point opens a new episode.
    wr = Window.partitionBy(*KEY, "rule").orderBy("seq")
    new = F.coalesce(F.col("_start") > F.lag("seq").over(wr), F.lit(True))
    episodes = (hits.withColumn("_ep", F.sum(F.when(new, 1).otherwise(0)).over(wr))
                    .groupBy(*KEY, "rule", "_ep")
                    .agg(F.min("_start").alias("start_seq"), F.max("seq").alias("end_seq")))
    members = episodes.select(*KEY, "rule", "start_seq", "end_seq",
                              F.explode(F.sequence("start_seq", "end_seq")).alias("seq"))
    out = (members.join(pts.select(*KEY, "seq", "_ids", "_first", "event_time"),
                        [*KEY, "seq"])
                  .groupBy(*KEY, "rule", "start_seq", "end_seq")
                  .agg(F.min("_first").alias("start_time"),
                       F.max("event_time").alias("end_time"),
                       F.count("*").alias("points"),
                       F.array_sort(F.collect_list(F.struct("seq", "_ids"))).alias("_all"))
                  .withColumn("event_ids", F.flatten(F.transform("_all", lambda p: p["_ids"])))
                  .withColumn("chart", F.lit(chart))
                  .withColumn("rule", F.col("rule").cast("int"))
                  .withColumn("rule_name", name))
    return out.select(*[f.name for f in SPC_VIOLATIONS.fields])



def _spc(t: Inputs) -> Outputs:
    points = measurements(t[catalog.silver("station_results")])
    settings = t.settings
    # Files by event-time range: the incremental path (``spc_tail``) replaces the latest
    # points of each series, which then sit in the last files instead of in every file.
    return {
        catalog.SPC_POINTS: control_limits(points, settings=settings)
        .repartitionByRange("event_time"),
        catalog.SPC_SUBGROUPS: xbar_r(points, settings=settings),
        catalog.SPC_VIOLATIONS: lambda out: nelson_violations(
            out[catalog.SPC_POINTS], settings=settings)
        .unionByName(xbar_violations(out[catalog.SPC_SUBGROUPS], settings=settings)),
    }


def _tail(spark: SparkSession, lake_root: str, results: DataFrame, changed: DataFrame,
          settings: AnalysisConfig, settings_changed: bool) -> dict:
    from redline.jobs import spc_tail

    return spc_tail.run(spark, lake_root, results, changed, settings, settings_changed)


#: The analysis settings gold_spc reads: a change recorded between runs is checked
#: series by series (``spc_tail``).
SETTINGS = ("spc_baseline_points", "spc_baseline_subgroups", "spc_baseline_dates",
            "spc_subgroup_size", "spc_rules")

JOB = GoldJob(
    name="gold_spc",
    description="silver.station_results -> gold.spc_points, spc_subgroups, spc_violations",
    inputs=(catalog.silver("station_results"),),
    outputs=(catalog.SPC_POINTS, catalog.SPC_SUBGROUPS, catalog.SPC_VIOLATIONS),
    transform=_spc,
    incremental=Tail(catalog.silver("station_results"), _tail),
    settings=SETTINGS,
)
