"""Silver station results -> gold SPC: I-MR control limits and Nelson rule violations.

Every measured characteristic (key: plant, line, station, characteristic) is charted as
an individuals / moving-range (I-MR) chart. Its limits come from a baseline window, the
first ``baseline_points`` points of the key in event-time order (Phase I), and are then
held fixed for every later point (Phase II): a process that drifts after the baseline
moves away from its limits instead of dragging them along.

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
subgroups of ``subgroup_size`` consecutive measurements (n = 5 by default; by count, not
by time: stations see units at an uneven pace, and a time bucket with one unit has no
range). Subgroup k holds points (k-1)n+1 .. kn; a trailing incomplete subgroup is not
charted until it fills. Limits come from the first ``baseline_subgroups`` subgroups
(5 by default: at n = 5 the same 25 measurements as the I-MR baseline) and are then held
fixed, with the published constants for n = 2..10 (``SUBGROUP_CONSTANTS``)::

    X-bar chart: centre Xbarbar, UCL/LCL = Xbarbar +/- A2 Rbar
    R chart:     centre Rbar,    LCL = D3 Rbar, UCL = D4 Rbar
    sigma of a subgroup mean = A2 Rbar / 3  (= Rbar / (d2 sqrt n))

The Nelson rules run on the subgroup means with that sigma (the same rule code);
gold.spc_violations tells the charts apart by ``chart``: 'I' (individuals) or 'XBAR'.
An X-bar violation's ``points`` counts subgroups; its ``event_ids`` are every
measurement in them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from redline import catalog
from redline.errors import RedlineError
from redline.jobs.declare import GoldJob, Tail
from redline.schemas.tables import SPC_POINTS, SPC_SUBGROUPS, SPC_VIOLATIONS

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame, SparkSession

    from redline.jobs.declare import Inputs, Outputs

KEY = ("plant", "line", "station", "characteristic")

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

DEFAULT_BASELINE_POINTS = 25

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
DEFAULT_SUBGROUP_SIZE = 5
DEFAULT_BASELINE_SUBGROUPS = 5

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


def control_limits(points: DataFrame,
                   baseline_points: int = DEFAULT_BASELINE_POINTS) -> DataFrame:
    """Every point of ``measurements`` with its I-MR centre line and limits (gold.spc_points).

    A key with fewer than ``baseline_points`` points has no baseline yet: its points are
    kept with null limits (and no rule can fire on them). A baseline without variation
    (MRbar = 0) gives null sigma and limits for the same reason.
    """

    if not isinstance(baseline_points, int) or isinstance(baseline_points, bool) \
            or baseline_points < 2:
        raise RedlineError(
            "SPC_BASELINE_INVALID",
            f"baseline_points must be an integer >= 2 (one moving range needs two points); "
            f"got {baseline_points!r}")
    pts = with_moving_range(points, baseline_points)
    return apply_limits(pts, baseline_limits(pts, baseline_points))


def with_moving_range(points: DataFrame, baseline_points: int = DEFAULT_BASELINE_POINTS
                      ) -> DataFrame:
    """Numbered points with ``moving_range`` (to the previous point of the key present)
    and ``in_baseline``."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    w = Window.partitionBy(*KEY).orderBy("seq")
    return (points.withColumn("moving_range", F.abs(F.col("value") - F.lag("value").over(w)))
                  .withColumn("in_baseline", F.col("seq") <= baseline_points))


def baseline_limits(points: DataFrame, baseline_points: int = DEFAULT_BASELINE_POINTS
                    ) -> DataFrame:
    """Per key with a full baseline: ``centre`` and ``mr_centre`` (the mean moving range,
    before the zero-variation rule) of ``with_moving_range`` points."""
    from pyspark.sql import functions as F

    return (points.where("in_baseline").groupBy(*KEY)
                  .agg(F.count("*").alias("_n"), F.avg("value").alias("centre"),
                       F.avg("moving_range").alias("mr_centre"))
                  .where(F.col("_n") == baseline_points).drop("_n"))


def apply_limits(points: DataFrame, limits: DataFrame) -> DataFrame:
    """``with_moving_range`` points with the I-MR limits of their key from ``limits`` (key,
    ``centre``, ``mr_centre``; a key missing there has none): gold.spc_points rows."""
    from pyspark.sql import functions as F

    sigma = F.when(F.col("mr_centre") > 0, F.col("mr_centre") / D2)
    out = (points.join(limits.select(*KEY, "centre", "mr_centre"), list(KEY), "left")
              .withColumn("sigma", sigma)
              .withColumn("lcl", F.col("centre") - 3 * F.col("sigma"))
              .withColumn("ucl", F.col("centre") + 3 * F.col("sigma"))
              .withColumn("mr_ucl", F.when(F.col("sigma").isNotNull(),
                                           D4 * F.col("mr_centre")))
              .withColumn("mr_centre", F.when(F.col("sigma").isNotNull(), F.col("mr_centre")))
              .withColumn("z", (F.col("value") - F.col("centre")) / F.col("sigma")))
    return out.select(*[f.name for f in SPC_POINTS.fields])


def xbar_r(points: DataFrame, subgroup_size: int = DEFAULT_SUBGROUP_SIZE,
           baseline_subgroups: int = DEFAULT_BASELINE_SUBGROUPS) -> DataFrame:
    """X-bar/R chart of ``measurements`` points: one row per complete subgroup with its
    mean, range and limits (gold.spc_subgroups; see the module doc).

    A key with fewer than ``baseline_subgroups`` complete subgroups, or whose baseline
    ranges are all zero, has null limits (and no rule can fire on it).
    """

    if (not isinstance(subgroup_size, int) or isinstance(subgroup_size, bool)
            or subgroup_size not in SUBGROUP_CONSTANTS):
        raise RedlineError(
            "SPC_SUBGROUP_INVALID",
            f"subgroup_size must be an integer from {min(SUBGROUP_CONSTANTS)} to "
            f"{max(SUBGROUP_CONSTANTS)} (the sizes with published A2, D3, D4); "
            f"got {subgroup_size!r}")
    if (not isinstance(baseline_subgroups, int) or isinstance(baseline_subgroups, bool)
            or baseline_subgroups < 1):
        raise RedlineError(
            "SPC_BASELINE_INVALID",
            f"baseline_subgroups must be an integer >= 1; got {baseline_subgroups!r}")
    groups = subgroups(points, subgroup_size, baseline_subgroups)
    return apply_subgroup_limits(groups, subgroup_baseline(groups, baseline_subgroups),
                                 subgroup_size)


def subgroups(points: DataFrame, subgroup_size: int = DEFAULT_SUBGROUP_SIZE,
              baseline_subgroups: int = DEFAULT_BASELINE_SUBGROUPS) -> DataFrame:
    """The complete subgroups of numbered points (a subgroup whose points are not all
    given is left out), without limits."""
    from pyspark.sql import functions as F

    n = subgroup_size
    return (points.withColumn("subgroup", F.floor((F.col("seq") - 1) / n).cast("long") + 1)
                  .groupBy(*KEY, "subgroup")
                  .agg(F.count("*").alias("_n"), F.avg("value").alias("xbar"),
                       (F.max("value") - F.min("value")).alias("range"),
                       F.min("event_time").alias("start_time"),
                       F.max("event_time").alias("end_time"),
                       F.array_sort(F.collect_list(F.struct("seq", "event_id")))
                        .alias("_ids"))
                  .where(F.col("_n") == n)
                  .withColumn("event_ids", F.transform("_ids", lambda p: p["event_id"]))
                  .withColumn("subgroup_size", F.lit(n))
                  .withColumn("in_baseline", F.col("subgroup") <= baseline_subgroups))


def subgroup_baseline(groups: DataFrame,
                      baseline_subgroups: int = DEFAULT_BASELINE_SUBGROUPS) -> DataFrame:
    """Per key with a full baseline: ``xbar_centre`` and ``r_centre`` (before the
    zero-range rule) of ``subgroups``."""
    from pyspark.sql import functions as F

    return (groups.where("in_baseline").groupBy(*KEY)
                  .agg(F.count("*").alias("_k"), F.avg("xbar").alias("xbar_centre"),
                       F.avg("range").alias("r_centre"))
                  .where(F.col("_k") == baseline_subgroups).drop("_k"))


def apply_subgroup_limits(groups: DataFrame, limits: DataFrame,
                          subgroup_size: int = DEFAULT_SUBGROUP_SIZE) -> DataFrame:
    """``subgroups`` with the X-bar/R limits of their key from ``limits`` (key,
    ``xbar_centre``, ``r_centre``; a key missing there has none): gold.spc_subgroups."""
    from pyspark.sql import functions as F

    a2, d3, d4, _ = SUBGROUP_CONSTANTS[subgroup_size]
    rbar = F.when(F.col("r_centre") > 0, F.col("r_centre"))
    out = (groups.join(limits.select(*KEY, "xbar_centre", "r_centre"), list(KEY), "left")
                 .withColumn("r_centre", rbar)
                 .withColumn("xbar_centre", F.when(rbar.isNotNull(), F.col("xbar_centre")))
                 .withColumn("xbar_lcl", F.col("xbar_centre") - a2 * F.col("r_centre"))
                 .withColumn("xbar_ucl", F.col("xbar_centre") + a2 * F.col("r_centre"))
                 .withColumn("sigma_xbar", a2 * F.col("r_centre") / 3.0)
                 .withColumn("z", (F.col("xbar") - F.col("xbar_centre")) / F.col("sigma_xbar"))
                 .withColumn("r_lcl", d3 * F.col("r_centre"))
                 .withColumn("r_ucl", d4 * F.col("r_centre")))
    return out.select(*[f.name for f in SPC_SUBGROUPS.fields])


def xbar_violations(subgroups: DataFrame, hits_from: DataFrame | None = None
                    ) -> DataFrame:
    """Nelson rule violations of the X-bar chart of ``xbar_r`` subgroups (chart 'XBAR');
    ``hits_from`` as for ``nelson_violations``."""
    from pyspark.sql import functions as F

    charted = subgroups.select(
        *KEY, F.col("subgroup").alias("seq"), "event_ids", "start_time",
        F.col("end_time").alias("event_time"), F.col("xbar").alias("value"),
        F.col("xbar_centre").alias("centre"), F.col("sigma_xbar").alias("sigma"))
    return nelson_violations(charted, chart=CHART_XBAR, hits_from=hits_from)


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
                      hits_from: DataFrame | None = None) -> DataFrame:
    """Every Nelson rule 1-8 violation episode of ``spc_points`` (gold.spc_violations).

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
    # Files by event-time range: the incremental path (``spc_tail``) replaces the latest
    # points of each series, which then sit in the last files instead of in every file.
    return {
        catalog.SPC_POINTS: control_limits(points).repartitionByRange("event_time"),
        catalog.SPC_SUBGROUPS: xbar_r(points),
        catalog.SPC_VIOLATIONS: lambda out: nelson_violations(out[catalog.SPC_POINTS])
        .unionByName(xbar_violations(out[catalog.SPC_SUBGROUPS])),
    }


def _tail(spark: SparkSession, lake_root: str, results: DataFrame,
          changed: DataFrame) -> dict:
    from redline.jobs import spc_tail

    return spc_tail.run(spark, lake_root, results, changed)


JOB = GoldJob(
    name="gold_spc",
    description="silver.station_results -> gold.spc_points, spc_subgroups, spc_violations",
    inputs=(catalog.silver("station_results"),),
    outputs=(catalog.SPC_POINTS, catalog.SPC_SUBGROUPS, catalog.SPC_VIOLATIONS),
    transform=_spc,
    incremental=Tail(catalog.silver("station_results"), _tail),
)
