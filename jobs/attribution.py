"""What changed and why: each manufacturing KPI between two periods, attributed to dimensions.

The KPIs are those of gold.station_kpis and gold.line_kpis (jobs/manufacturing_kpis.py),
over *unit-stations*: a unit counted at a station on the day of its attempt 1 there (its
later attempts, on whatever day, decide rework and scrap). ``kpi`` names the KPI of a
row. For a *scope* (the whole factory ``all``, a line ``PLT-A/L1`` or a station
``PLT-A/L1/S010``) and two periods, baseline B and current C (inclusive date ranges:
``attribution_baseline`` and ``attribution_current`` of ``redline.config.AnalysisConfig``
when set, else the last 7 days with station results and the 7 before), four KPIs are
ratios of sums over the scope's unit-stations in period p, *units* U_p (the denominator)
and *events* E_p (the numerator)::

    kpi           units U           events E                     KPI_p
    fpy           unit-stations     failed first tests           1 - E_p / U_p
    scrap_rate    unit-stations     scrapped unit-stations       E_p / U_p
    rework_rate   unit-stations     reworked unit-stations       E_p / U_p
    dpmo          opportunities     defects                      1e6 * E_p / U_p

that is KPI_p = a + s * E_p / U_p with s = -1 (a = 1) for FPY, 1e6 for DPMO, else 1.
``scope_units_*`` are U_p, ``kpi_baseline``/``kpi_current`` the KPI and ``kpi_change`` =
KPI_C - KPI_B.

Every dimension splits the scope's unit-stations into values v (``population``
dimensions: ``line`` and ``station`` inside larger scopes, ``shift``, ``model``,
``firmware_version`` and ``lot:<component>`` from the unit's build record). With the
share ``w_pv = U_pv / U_p`` (of unit-stations; of opportunities for DPMO) and the rate
``r_pv = E_pv / U_pv`` of a value (``units_*`` and ``events_*`` are U_pv and E_pv),
``E_p / U_p = sum_v w_pv r_pv``, and the change of the KPI splits exactly into a mix
effect and a rate effect per value (the symmetric, midpoint decomposition), in the KPI's
own unit (yield; DPMO)::

    mix_effect_v  = s * (w_Cv - w_Bv) * (r_Bv + r_Cv) / 2    the value's share moved
    rate_effect_v = s * (r_Cv - r_Bv) * (w_Bv + w_Cv) / 2    the value's own rate moved
    contribution_v = mix_effect_v + rate_effect_v = s * (E_Cv / U_C - E_Bv / U_B)
    sum over v of contribution_v = KPI_C - KPI_B = kpi_change

(a value absent from one period takes the other period's rate there, so its change is
all mix). ``contribution_share`` is contribution / kpi_change: the part of the move the
value explains. Values of a ``lot:<component>`` dimension cover the unit-stations of
units with a build record only; model and firmware of units without one are
``(unknown)``.

``failure_mode`` dimension ``defect_code`` splits the events instead of the units: with
D_pv the events whose attempt 1 carried code v (failed first tests, scrapped or reworked
unit-stations; for DPMO the defects of code v), contribution = s * (D_Cv / U_C -
D_Bv / U_B) (rate effect only; codes with no event in either period have no row). It
sums to kpi_change for DPMO (a defect is one distinct code), and for the others when
every event carries exactly one code; it says *what* failed rather than *where from*,
so it is ranked apart.

``rty``, the rolled throughput yield, is a product, not a ratio. Its rows have line
scopes only (a station's RTY is its FPY; a product over the stations of every line is
no yield that a unit meets). With y_ps the FPY of the line's station s over period p
(1, no factor, when s has no first tests in p)::

    RTY_p = prod over s of y_ps

and the dimension ``station`` splits its change exactly with the logarithmic mean
(LMDI)::

    contribution_s = L * (ln y_Cs - ln y_Bs)      L = (RTY_C - RTY_B) / (ln RTY_C - ln RTY_B)

(L = RTY when RTY_C = RTY_B); as ln RTY_p = sum_s ln y_ps, the contributions sum to
RTY_C - RTY_B. A station at FPY 0 makes its period's RTY 0 and its log undefined: when
one period's RTY is 0, the change is split equally among the stations at FPY 0 in that
period (the limit of LMDI's usual replacement of 0 by a small epsilon); when both are 0
the change and every contribution are 0. An RTY row is a ``population`` row with
mix_effect 0 and rate_effect = contribution; its units and events are the station's
first tests and failed first tests.

``rank`` orders the values of a KPI and scope within their ``dimension_kind``: the
largest contribution in the direction of the change first (on a drop, the most
negative; on a rise of DPMO, scrap or rework, the most positive), ties broken by the
smaller population (fewer units explain the same move more sharply), then by name. The
top ``population`` row of a KPI and scope is its most likely cause.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import TYPE_CHECKING

from redline import catalog
from redline.config import AnalysisConfig
from redline.errors import RedlineError
from redline.jobs.declare import Full, GoldJob
from redline.jobs.manufacturing_kpis import unit_results
from redline.schemas.tables import KPI_ATTRIBUTION

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

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


@dataclass(frozen=True)
class RatioKpi:
    """A KPI that is a ratio of sums over unit-stations: ``offset + scale * events / units``
    (the module doc's table)."""

    name: str
    """Its ``kpi`` value."""
    events: str
    """SQL over a unit-station (a row of ``unit_stations``): what it adds to the numerator."""
    units: str
    """SQL over a unit-station: what it adds to the denominator."""
    mode: str
    """SQL predicate over a unit-station: whether its attempt-1 defect codes are events of
    the KPI (the ``defect_code`` split)."""
    scale: float = 1.0
    offset: float = 0.0


RATIOS = (
    RatioKpi("fpy", events="CAST(NOT first_pass AS INT)", units="1", mode="NOT first_pass",
             scale=-1.0, offset=1.0),
    RatioKpi("dpmo", events="defects", units="opportunities", mode="true", scale=1e6),
    RatioKpi("scrap_rate", events="CAST(scrapped AS INT)", units="1", mode="scrapped"),
    RatioKpi("rework_rate", events="CAST(reworked AS INT)", units="1", mode="reworked"),
)
RTY = "rty"
KPIS = (*(k.name for k in RATIOS), RTY)


def unit_stations(station_results: DataFrame, vehicle_builds: DataFrame,
                  baseline: Period, current: Period) -> DataFrame:
    """The unit-stations (``manufacturing_kpis.unit_results``) whose attempt 1 falls in one
    of the two periods, with their period and build attributes."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    if baseline.end >= current.start and current.end >= baseline.start:
        raise RedlineError("ATTRIBUTION_PERIODS_OVERLAP",
                           f"baseline {baseline} and current {current} overlap; "
                           f"choose disjoint periods")
    day = F.col("day")
    period = (F.when(day.between(F.lit(baseline.start), F.lit(baseline.end)), "baseline")
               .when(day.between(F.lit(current.start), F.lit(current.end)), "current"))
    # A bound on the event time itself lets Delta skip the files before both periods;
    # retests after them are kept, as they decide rework and scrap.
    first = min(baseline.start, current.start)
    after = max(baseline.end, current.end) + timedelta(days=1)
    in_range = ((F.col("event_time") >= F.lit(first).cast("timestamp"))
                & ((F.col("attempt") > 1)
                   | (F.col("event_time") < F.lit(after).cast("timestamp"))))
    units = (unit_results(station_results.where(in_range))
             .withColumn("period", period).where(F.col("period").isNotNull()))
    latest = Window.partitionBy("vin").orderBy(F.col("event_time").desc(), "event_id")
    tested = units.select(F.col("unit_serial").alias("vin"))
    builds = (vehicle_builds.join(tested, "vin", "left_semi")
              .withColumn("_n", F.row_number().over(latest))
              .where("_n = 1")
              .select(F.col("vin").alias("unit_serial"), "model", "firmware_version",
                      "components"))
    return units.join(builds, "unit_serial", "left")


def _scoped(tests: DataFrame) -> DataFrame:
    """Each unit-station once per scope it belongs to (all, its line, its station)."""
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
PERIODS = ("baseline", "current")


def _in(period: str, value: str = "1") -> Column:
    from pyspark.sql import functions as F

    return F.sum(F.when(F.col("period") == period, F.expr(value)).otherwise(0)).cast("long")


def _sums(**columns: Callable[[RatioKpi], str]) -> list[Column]:
    """Aggregates ``<kpi>__<column>_<period>``: per ratio KPI and period, the sum of the
    SQL that ``columns[column]`` gives for the KPI."""
    return [_in(p, sql(k)).alias(f"{k.name}__{c}_{p}")
            for k in RATIOS for c, sql in columns.items() for p in PERIODS]


def _by_kpi(df: DataFrame, keep: Sequence[str], *columns: str) -> DataFrame:
    """One row per ratio KPI of each row of ``df`` (laid out by ``_sums``): ``keep``,
    ``kpi``, its ``_scale`` and ``_offset``, and ``<column>_<period>`` of ``columns``."""
    from pyspark.sql import functions as F

    rows = F.array(*[F.struct(F.lit(k.name).alias("kpi"), F.lit(k.scale).alias("_scale"),
                              F.lit(k.offset).alias("_offset"),
                              *[F.col(f"{k.name}__{c}_{p}").alias(f"{c}_{p}")
                                for c in columns for p in PERIODS])
                     for k in RATIOS])
    return df.select(*keep, F.explode(rows).alias("_k")).select(*keep, "_k.*")


def _rty(stations: DataFrame) -> DataFrame:
    """RTY rows of the line scopes from their FPY ``station`` rows (the module doc)."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    line = Window.partitionBy("scope")
    out = stations
    for p in PERIODS:
        units, events = F.col(f"units_{p}"), F.col(f"events_{p}")
        y = F.when(units > 0, 1 - events / units)
        out = (out.withColumn(f"_y_{p}", y)
               .withColumn(f"_ln_{p}", F.when(y > 0, F.log(y)).otherwise(0.0))
               .withColumn(f"_zeros_{p}",
                           F.sum(F.when(y == 0, 1).otherwise(0)).over(line))
               .withColumn(f"_rty_{p}", F.when(
                   F.col(f"scope_units_{p}") > 0,
                   F.when(F.col(f"_zeros_{p}") > 0, F.lit(0.0))
                    .otherwise(F.exp(F.sum(f"_ln_{p}").over(line))))))
    rb, rc = F.col("_rty_baseline"), F.col("_rty_current")
    change = rc - rb
    d_ln = F.sum(F.col("_ln_current") - F.col("_ln_baseline")).over(line)
    # The logarithmic mean of the two RTYs; its limit where they (nearly) agree.
    mean = F.when(F.abs(d_ln) > 1e-12, change / d_ln).otherwise((rb + rc) / 2)
    contribution = (
        F.when((rb > 0) & (rc > 0), mean * (F.col("_ln_current") - F.col("_ln_baseline")))
         .when(rc == 0, F.when(F.col("_y_current") == 0, change / F.col("_zeros_current"))
                         .otherwise(0.0))
         .when(rb == 0, F.when(F.col("_y_baseline") == 0, change / F.col("_zeros_baseline"))
                         .otherwise(0.0)))
    valid = (F.col("scope_units_baseline") > 0) & (F.col("scope_units_current") > 0)
    return (out.withColumn("kpi", F.lit(RTY))
               .withColumn("kpi_baseline", rb).withColumn("kpi_current", rc)
               .withColumn("kpi_change", change)
               .withColumn("mix_effect", F.when(valid, F.lit(0.0)))
               .withColumn("rate_effect", F.when(valid, contribution)))


def kpi_attribution(station_results: DataFrame, vehicle_builds: DataFrame,
                    baseline: Period, current: Period) -> DataFrame:
    """gold.kpi_attribution rows of every KPI between ``baseline`` and ``current``."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    scoped = _scoped(unit_stations(station_results, vehicle_builds, baseline, current))
    # ``scope`` alone identifies a scope (its other columns are null for ``all``, and a
    # join on null keys would drop it).
    totals = _by_kpi(scoped.groupBy("scope").agg(*_sums(scope_units=lambda k: k.units,
                                                        _events=lambda k: k.events)),
                     ["scope"], "scope_units", "_events")

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
    population = _by_kpi(
        scoped.select("*", F.explode(F.concat(dims, lots)).alias("d"))
        .where(F.col("d.value").isNotNull())
        .groupBy(*SCOPE, "d.dimension", "d.value")
        .agg(*_sums(units=lambda k: k.units, events=lambda k: k.events)),
        [*SCOPE, "dimension", "value"], "units", "events"
    ).withColumn("dimension_kind", F.lit("population"))
    modes = _by_kpi(
        scoped.select("*", F.explode("defect_codes").alias("value"))
        .groupBy(*SCOPE, "value")
        .agg(*_sums(events=lambda k: f"CAST({k.mode} AS INT)")),
        [*SCOPE, "value"], "events"
    ).where("events_baseline + events_current > 0")
    modes = (modes.withColumn("dimension", F.lit("defect_code"))
             .withColumn("dimension_kind", F.lit("failure_mode")))

    nb, nc = F.col("scope_units_baseline"), F.col("scope_units_current")
    scale, offset = F.col("_scale"), F.col("_offset")
    kpi_b = F.when(nb > 0, offset + scale * F.col("_events_baseline") / nb)
    kpi_c = F.when(nc > 0, offset + scale * F.col("_events_current") / nc)
    totals = (totals.withColumn("kpi_baseline", kpi_b).withColumn("kpi_current", kpi_c)
              .withColumn("kpi_change", F.col("kpi_current") - F.col("kpi_baseline"))
              .drop("_scale", "_offset"))

    valid = (nb > 0) & (nc > 0)
    wb, wc = F.col("units_baseline") / nb, F.col("units_current") / nc
    rb_raw = F.col("events_baseline") / F.col("units_baseline")
    rc_raw = F.col("events_current") / F.col("units_current")
    rb = F.when(F.col("units_baseline") > 0, rb_raw).otherwise(rc_raw)
    rc = F.when(F.col("units_current") > 0, rc_raw).otherwise(rb_raw)
    population = population.join(totals, ["kpi", "scope"])
    rty = _rty(population.where((F.col("kpi") == "fpy") & (F.col("dimension") == "station")
                                & F.col("scope_station").isNull()
                                & F.col("scope_line").isNotNull()))
    population = (population
                  .withColumn("mix_effect", F.when(valid, scale * (wc - wb) * (rb + rc) / 2))
                  .withColumn("rate_effect", F.when(valid, scale * (rc - rb) * (wb + wc) / 2)))
    modes = (modes.join(totals, ["kpi", "scope"])
             .withColumn("units_baseline", nb).withColumn("units_current", nc)
             .withColumn("mix_effect", F.when(valid, F.lit(0.0)))
             .withColumn("rate_effect", F.when(valid, scale * (F.col("events_current") / nc
                                                               - F.col("events_baseline") / nb))))
    cols = [c for c in population.columns if c in modes.columns and c in rty.columns
            and not c.startswith("_")]
    out = (population.select(*cols).unionByName(modes.select(*cols))
           .unionByName(rty.select(*cols))
           .withColumn("contribution", F.col("mix_effect") + F.col("rate_effect"))
           .withColumn("contribution_share",
                       F.when(F.col("kpi_change") != 0,
                              F.col("contribution") / F.col("kpi_change"))))
    direction = F.when(F.col("kpi_change") > 0, 1.0).otherwise(-1.0)
    order = Window.partitionBy("kpi", *SCOPE, "dimension_kind").orderBy(
        # Rounded so that float noise cannot decide between equal contributions.
        F.round(F.col("contribution") * direction, 12).desc_nulls_last(),
        (F.col("units_baseline") + F.col("units_current")).asc(), "dimension", "value")
    out = (out.withColumn("rank", F.row_number().over(order))
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
    """KPI attribution between the configured periods, else of the last ``DEFAULT_DAYS``
    days with station results against the ``DEFAULT_DAYS`` before."""
    from pyspark.sql import functions as F

    results = t[catalog.silver("station_results")]
    builds = t[catalog.silver("vehicle_builds")]
    configured = configured_periods(t.settings)
    if configured is not None:
        baseline, current = configured
        t.note(baseline=f"{baseline.start}..{baseline.end}",
               current=f"{current.start}..{current.end}", periods="configured")
        return {catalog.KPI_ATTRIBUTION: kpi_attribution(results, builds, baseline, current)}
    last = results.where("attempt = 1").agg(F.max(F.to_date("event_time"))).first()[0]
    if last is None:
        t.note(periods="none: no first-pass station results yet")
        return {catalog.KPI_ATTRIBUTION:
                results.sparkSession.createDataFrame([], KPI_ATTRIBUTION)}
    baseline, current = default_periods(last, DEFAULT_DAYS)
    t.note(baseline=f"{baseline.start}..{baseline.end}",
           current=f"{current.start}..{current.end}")
    return {catalog.KPI_ATTRIBUTION: kpi_attribution(results, builds, baseline, current)}


JOB = GoldJob(
    name="gold_kpi_attribution",
    description="silver.station_results + vehicle_builds -> gold.kpi_attribution "
                "(FPY, DPMO, scrap, rework, RTY; the configured periods, else the last 7 "
                "days against the 7 before)",
    inputs=(catalog.silver("station_results"), catalog.silver("vehicle_builds")),
    outputs=(catalog.KPI_ATTRIBUTION,),
    transform=_attribution,
    incremental=Full("its periods are the last 7 days of data and the 7 before, or "
                     "configured ones"),
    settings=("attribution_baseline", "attribution_current"),
)
