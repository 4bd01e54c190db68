"""What changed and why: first-pass yield between two periods, attributed to dimensions.

The KPI is the first-pass yield of station tests: a test is a unit's attempt 1 at a
station (as in gold.first_pass_yield), on the day of that attempt. For a *scope* (the
whole factory ``all``, a line ``PLT-A/L1`` or a station ``PLT-A/L1/S010``) and two
periods, baseline B and current C (inclusive date ranges: ``attribution_baseline`` and
``attribution_current`` of ``redline.config.AnalysisConfig`` when set, else the last 7
days with station results and the 7 before)::

    FPY_p = 1 - F_p / N_p          N_p tests and F_p failed tests of the scope in period p

Every dimension splits the scope's tests into values v (``population`` dimensions:
``line`` and ``station`` inside larger scopes, ``shift``, ``model``, ``firmware_version``
and ``lot:<component>`` from the unit's build record). With the test share
``w_pv = N_pv / N_p`` and the failure rate ``f_pv = F_pv / N_pv`` of a value, the
failure rate of the scope is ``sum_v w_pv f_pv``, and the change of FPY splits exactly
into a mix effect and a rate effect per value (the symmetric, midpoint decomposition)::

    mix_effect_v  = -(w_Cv - w_Bv) * (f_Bv + f_Cv) / 2     the value's share of tests moved
    rate_effect_v = -(f_Cv - f_Bv) * (w_Bv + w_Cv) / 2     the value's own failure rate moved
    contribution_v = mix_effect_v + rate_effect_v = -(F_Cv / N_C - F_Bv / N_B)
    sum over v of contribution_v = FPY_C - FPY_B = fpy_change

(a value absent from one period takes the other period's rate there, so its change is
all mix). ``contribution_share`` is contribution / fpy_change: the part of the move the
value explains. Values of a ``lot:<component>`` dimension cover the tests of units with
a build record only; model and firmware of units without one are ``(unknown)``.

``failure_mode`` dimension ``defect_code`` splits the failures instead of the tests:
contribution = -(D_Cv / N_C - D_Bv / N_B) with D the defect codes v on failed first
tests (rate effect only). It sums to fpy_change when every failed test carries exactly
one code, and says *what* failed rather than *where from*, so it is ranked apart.

``rank`` orders the values of a scope within their ``dimension_kind``: the largest
contribution in the direction of the change first (on a drop, the most negative), ties
broken by the smaller population (fewer tests explain the same move more sharply), then
by name. The top ``population`` row of a scope is its most likely cause.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import TYPE_CHECKING

from redline import catalog
from redline.config import AnalysisConfig
from redline.errors import RedlineError
from redline.jobs.declare import Full, GoldJob
from redline.schemas.tables import KPI_ATTRIBUTION

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame

    from redline.jobs.declare import Inputs, Outputs

UNKNOWN = "(unknown)"
DEFAULT_DAYS = 7


@dataclass(frozen=True)
class Period:
    """An inclusive range of days."""

    start: date
    end: date

    def __post_init__(self) -> None:
        if self.end < self.start:
            raise RedlineError("ATTRIBUTION_PERIOD_INVALID",
                               f"a period ends on or after its start; got start={self.start}"
                               f" end={self.end}: swap them")


def default_periods(last_day: date, days: int = DEFAULT_DAYS) -> tuple[Period, Period]:
    """(baseline, current): the ``days`` days ending ``last_day`` and the ``days`` before."""
    current = Period(last_day - timedelta(days=days - 1), last_day)
    baseline = Period(current.start - timedelta(days=days), current.start - timedelta(days=1))
    return baseline, current


def first_tests(station_results: DataFrame, vehicle_builds: DataFrame,
                baseline: Period, current: Period) -> DataFrame:
    """Attempt-1 tests of the two periods (one per unit and station), with their period and
    build attributes."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    if baseline.end >= current.start and current.end >= baseline.start:
        raise RedlineError("ATTRIBUTION_PERIODS_OVERLAP",
                           f"baseline {baseline} and current {current} overlap; "
                           f"choose disjoint periods")
    day = F.to_date("event_time")
    period = (F.when(day.between(F.lit(baseline.start), F.lit(baseline.end)), "baseline")
               .when(day.between(F.lit(current.start), F.lit(current.end)), "current"))
    # A bound on the event time itself lets Delta skip the files outside both periods.
    first = min(baseline.start, current.start)
    after = max(baseline.end, current.end) + timedelta(days=1)
    in_range = ((F.col("event_time") >= F.lit(first).cast("timestamp"))
                & (F.col("event_time") < F.lit(after).cast("timestamp")))
    tests = (station_results.where((F.col("attempt") == 1) & in_range)
             .withColumn("period", period).where(F.col("period").isNotNull())
             .dropDuplicates(["unit_serial", "plant", "line", "station"])
             .select("unit_serial", "plant", "line", "station", "shift",
                     "period", (F.col("result") != "PASS").alias("failed"),
                     F.when(F.col("result") != "PASS", F.array_distinct(F.coalesce(
                         "defect_codes", F.array().cast("array<string>"))))
                     .otherwise(F.array().cast("array<string>")).alias("defect_codes")))
    latest = Window.partitionBy("vin").orderBy(F.col("event_time").desc(), "event_id")
    tested = tests.select(F.col("unit_serial").alias("vin"))
    builds = (vehicle_builds.join(tested, "vin", "left_semi")
              .withColumn("_n", F.row_number().over(latest))
              .where("_n = 1")
              .select(F.col("vin").alias("unit_serial"), "model", "firmware_version",
                      "components"))
    return tests.join(builds, "unit_serial", "left")


def _scoped(tests: DataFrame) -> DataFrame:
    """Each test once per scope it belongs to (all, its line, its station)."""
    from pyspark.sql import functions as F

    null = F.lit(None).cast("string")
    line = F.concat_ws("/", "plant", "line")
    scopes = F.array(
        F.struct(F.lit("all").alias("scope"), null.alias("scope_plant"),
                 null.alias("scope_line"), null.alias("scope_station"), F.lit(0).alias("lvl")),
        F.struct(line.alias("scope"), F.col("plant").alias("scope_plant"),
                 F.col("line").alias("scope_line"), null.alias("scope_station"),
                 F.lit(1).alias("lvl")),
        F.struct(F.concat_ws("/", "plant", "line", "station").alias("scope"),
                 F.col("plant").alias("scope_plant"), F.col("line").alias("scope_line"),
                 F.col("station").alias("scope_station"), F.lit(2).alias("lvl")))
    return tests.select("*", F.explode(scopes).alias("_s")).select("*", "_s.*").drop("_s")


SCOPE = ("scope", "scope_plant", "scope_line", "scope_station")


def _in(period: str, value: str = "1") -> Column:
    from pyspark.sql import functions as F

    return F.sum(F.when(F.col("period") == period, F.expr(value)).otherwise(0)).cast("long")


def fpy_attribution(station_results: DataFrame, vehicle_builds: DataFrame,
                    baseline: Period, current: Period) -> DataFrame:
    """gold.kpi_attribution rows for FPY between ``baseline`` and ``current``."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    scoped = _scoped(first_tests(station_results, vehicle_builds, baseline, current))
    # ``scope`` alone identifies a scope (its other columns are null for ``all``, and a
    # join on null keys would drop it).
    totals = scoped.groupBy("scope").agg(
        _in("baseline").alias("scope_tests_baseline"),
        _in("current").alias("scope_tests_current"),
        _in("baseline", "CAST(failed AS INT)").alias("_fb"),
        _in("current", "CAST(failed AS INT)").alias("_fc"))

    def pair(dimension: str, value) -> Column:
        return F.struct(F.lit(dimension).alias("dimension"), value.alias("value"))

    dims = F.array(
        pair("line", F.when(F.col("lvl") < 1, F.concat_ws("/", "plant", "line"))),
        pair("station", F.when(F.col("lvl") < 2, F.concat_ws("/", "plant", "line", "station"))),
        pair("shift", F.col("shift")),
        pair("model", F.coalesce("model", F.lit(UNKNOWN))),
        pair("firmware_version", F.coalesce("firmware_version", F.lit(UNKNOWN))))
    lots = F.transform(F.coalesce("components", F.array()),
                       lambda c: F.struct(F.concat(F.lit("lot:"), c["component"])
                                          .alias("dimension"), c["lot"].alias("value")))
    population = (scoped.select(*SCOPE, "period", "failed",
                                F.explode(F.concat(dims, lots)).alias("d"))
                  .where(F.col("d.value").isNotNull())
                  .groupBy(*SCOPE, "d.dimension", "d.value")
                  .agg(_in("baseline").alias("tests_baseline"),
                       _in("current").alias("tests_current"),
                       _in("baseline", "CAST(failed AS INT)").alias("failures_baseline"),
                       _in("current", "CAST(failed AS INT)").alias("failures_current"))
                  .withColumn("dimension_kind", F.lit("population")))
    modes = (scoped.select(*SCOPE, "period", F.explode("defect_codes").alias("value"))
             .groupBy(*SCOPE, "value")
             .agg(_in("baseline").alias("failures_baseline"),
                  _in("current").alias("failures_current"))
             .withColumn("dimension", F.lit("defect_code"))
             .withColumn("dimension_kind", F.lit("failure_mode")))

    nb, nc = F.col("scope_tests_baseline"), F.col("scope_tests_current")
    fpy_b = F.when(nb > 0, 1 - F.col("_fb") / nb)
    fpy_c = F.when(nc > 0, 1 - F.col("_fc") / nc)
    totals = (totals.withColumn("fpy_baseline", fpy_b).withColumn("fpy_current", fpy_c)
              .withColumn("fpy_change", F.col("fpy_current") - F.col("fpy_baseline")))

    valid = (nb > 0) & (nc > 0)
    wb, wc = F.col("tests_baseline") / nb, F.col("tests_current") / nc
    rb_raw = F.col("failures_baseline") / F.col("tests_baseline")
    rc_raw = F.col("failures_current") / F.col("tests_current")
    rb = F.when(F.col("tests_baseline") > 0, rb_raw).otherwise(rc_raw)
    rc = F.when(F.col("tests_current") > 0, rc_raw).otherwise(rb_raw)
    population = (population.join(totals, "scope")
                  .withColumn("mix_effect", F.when(valid, -(wc - wb) * (rb + rc) / 2))
                  .withColumn("rate_effect", F.when(valid, -(rc - rb) * (wb + wc) / 2)))
    modes = (modes.join(totals, "scope")
             .withColumn("tests_baseline", nb).withColumn("tests_current", nc)
             .withColumn("mix_effect", F.when(valid, F.lit(0.0)))
             .withColumn("rate_effect", F.when(valid, -(F.col("failures_current") / nc
                                                        - F.col("failures_baseline") / nb))))
    cols = [c for c in population.columns if c in modes.columns]
    out = (population.select(*cols).unionByName(modes.select(*cols))
           .withColumn("contribution", F.col("mix_effect") + F.col("rate_effect"))
           .withColumn("contribution_share",
                       F.when(F.col("fpy_change") != 0,
                              F.col("contribution") / F.col("fpy_change"))))
    direction = F.when(F.col("fpy_change") > 0, 1.0).otherwise(-1.0)
    order = Window.partitionBy(*SCOPE, "dimension_kind").orderBy(
        # Rounded so that float noise cannot decide between equal contributions.
        F.round(F.col("contribution") * direction, 12).desc_nulls_last(),
        (F.col("tests_baseline") + F.col("tests_current")).asc(), "dimension", "value")
    out = (out.withColumn("rank", F.row_number().over(order))
              .withColumn("kpi", F.lit("fpy"))
              .withColumn("baseline_start", F.lit(baseline.start))
              .withColumn("baseline_end", F.lit(baseline.end))
              .withColumn("current_start", F.lit(current.start))
              .withColumn("current_end", F.lit(current.end)))
    return out.select(*[f.name for f in KPI_ATTRIBUTION.fields])



def configured_periods(settings: AnalysisConfig) -> tuple[Period, Period] | None:
    """(baseline, current) of ``attribution_baseline``/``attribution_current``, or None
    when they are not set."""
    periods = settings.attribution_periods
    if periods is None:
        return None
    (b0, b1), (c0, c1) = periods
    return Period(b0, b1), Period(c0, c1)


def _attribution(t: Inputs) -> Outputs:
    """FPY attribution between the configured periods, else of the last ``DEFAULT_DAYS``
    days with station results against the ``DEFAULT_DAYS`` before."""
    from pyspark.sql import functions as F

    results = t[catalog.silver("station_results")]
    builds = t[catalog.silver("vehicle_builds")]
    configured = configured_periods(t.settings)
    if configured is not None:
        baseline, current = configured
        t.note(baseline=f"{baseline.start}..{baseline.end}",
               current=f"{current.start}..{current.end}", periods="configured")
        return {catalog.KPI_ATTRIBUTION: fpy_attribution(results, builds, baseline, current)}
    last = results.where("attempt = 1").agg(F.max(F.to_date("event_time"))).first()[0]
    if last is None:
        t.note(periods="none: no first-pass station results yet")
        return {catalog.KPI_ATTRIBUTION:
                results.sparkSession.createDataFrame([], KPI_ATTRIBUTION)}
    baseline, current = default_periods(last, DEFAULT_DAYS)
    t.note(baseline=f"{baseline.start}..{baseline.end}",
           current=f"{current.start}..{current.end}")
    return {catalog.KPI_ATTRIBUTION: fpy_attribution(results, builds, baseline, current)}


JOB = GoldJob(
    name="gold_kpi_attribution",
    description="silver.station_results + vehicle_builds -> gold.kpi_attribution "
                "(FPY, the configured periods, else the last 7 days against the 7 before)",
    inputs=(catalog.silver("station_results"), catalog.silver("vehicle_builds")),
    outputs=(catalog.KPI_ATTRIBUTION,),
    transform=_attribution,
    incremental=Full("its periods are the last 7 days of data and the 7 before, or "
                     "configured ones"),
    settings=("attribution_baseline", "attribution_current"),
)
