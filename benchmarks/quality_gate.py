"""Benchmark: the data-quality gate (Great Expectations on Spark) against one hand-written
``df.agg(...)`` pass over the same table, and against the expectations one by one.

A silver.vehicle_telemetry table of ``--rows`` rows (default 10,000,000) is generated
with Spark (deterministic pseudo-random values, a few nulls and a few out-of-range
readings) and written once as Delta into a scratch lake (``--lake``, reused when it holds
the same rows; ``--fresh`` rebuilds it). On it, 20 expectations of the kinds the gate
uses (not null, unique, value lengths, ranges with and without ``mostly``, the share of
non-null values, row count, means, the max Kafka timestamp, a value set) are checked
three ways, each ``--repeat`` times after one warm-up, round-robin so that a load that
drifts (a shared machine) hits every way alike (median seconds):

a. the gate: ``redline.quality.gate.validate(df, table, expectations)``;
b. by hand: ONE ``df.agg(...)`` computing every metric (null counts, unexpected counts
   per range, row count, means, max) plus one query for uniqueness (rows whose event id
   occurs more than once), deciding pass/fail as GX does; every decision is checked
   against GX's;
c. one by one: a separate GX validation per expectation.

Each way runs on the table as read from Delta ("uncached": what the gate starts from;
``gate.validate_table`` caches it, and GX's Spark datasource persists every batch anyway,
so the gate's time includes building that cache of every column) and on a table cached
and materialised beforehand ("cached"). For every run the
script counts the Spark jobs (job group of the run) and SQL queries (Spark's SQL status
store), the seconds spent inside those queries and what kind each one was, so that it
shows where GX's time goes. Then GX variants (``--variants``), each timed in the same
round-robin: result formats BOOLEAN_ONLY, BASIC, SUMMARY (GX's default), COMPLETE; the
datasource with ``persist=False`` (GX persists every batch by default); "two-phase"
(decide with BOOLEAN_ONLY, then fetch unexpected-value samples with SUMMARY only for the
expectations that failed), also with uniqueness as a distinct count and with
``persist=False``.

Prints a table and the ratios gate / hand-written and one-by-one / hand-written (the
issue's target: the gate costs at most 1.5x the hand-written pass) and writes a JSON
(``benchmarks/results/quality_gate.json``) with every figure and the machine.

    .venv/bin/python benchmarks/quality_gate.py                          # issue size
    .venv/bin/python benchmarks/quality_gate.py --rows 200000 --repeat 1 # a smoke run
"""

from __future__ import annotations

import argparse
import inspect
import json
import logging
import os
import platform
import statistics
import sys
import time
from collections import Counter
from datetime import UTC, date, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TABLE = "silver.vehicle_telemetry"
TARGET_RATIO = 1.5
GENERATOR_VERSION = 1
"""Bump when the generated data changes: a reused scratch table must match it."""
START = date(2026, 1, 5)
DAYS = 90
VEHICLES = 100_000
FRESH_AFTER = "2026-03-30T00:00:00"
"""Freshness-like check: the newest Kafka timestamp is after this (the data's last day
is 2026-04-04)."""

# (GX expectation class, kwargs): exactly 20, the kinds the gate uses. Two of them fail
# on the generated data on purpose (a rare sensor glitch of 255 km/h; hv voltage, new in
# schema v2, is null in the v1 records): a gate that always passes measures nothing.
EXPECTATIONS: list[tuple[str, dict]] = [
    ("ExpectTableRowCountToBeBetween", {"min_value": 1}),
    ("ExpectColumnValuesToNotBeNull", {"column": "event_id"}),
    ("ExpectColumnValuesToBeUnique", {"column": "event_id"}),
    ("ExpectColumnValuesToNotBeNull", {"column": "vin"}),
    ("ExpectColumnValueLengthsToBeBetween", {"column": "vin", "min_value": 1}),
    ("ExpectColumnValuesToNotBeNull", {"column": "event_time"}),
    ("ExpectColumnValuesToBeInSet", {"column": "kafka_topic",
                                     "value_set": ["vehicle_telemetry"]}),
    ("ExpectColumnValuesToBeBetween", {"column": "speed_kph", "min_value": 0.0,
                                       "max_value": 250.0}),
    ("ExpectColumnValuesToBeBetween", {"column": "battery_soc_pct", "min_value": 0.0,
                                       "max_value": 100.0}),
    ("ExpectColumnValuesToBeBetween", {"column": "battery_temp_c", "min_value": -40.0,
                                       "max_value": 80.0, "mostly": 0.95}),
    ("ExpectColumnValuesToBeBetween", {"column": "motor_temp_c", "min_value": -40.0,
                                       "max_value": 150.0, "mostly": 0.95}),
    ("ExpectColumnValuesToBeBetween", {"column": "coolant_temp_c", "min_value": -40.0,
                                       "max_value": 120.0, "mostly": 0.95}),
    ("ExpectColumnValuesToBeBetween", {"column": "odometer_km", "min_value": 0.0,
                                       "max_value": 2_000_000.0}),
    ("ExpectColumnProportionOfNonNullValuesToBeBetween", {"column": "speed_kph",
                                                          "min_value": 0.95}),
    ("ExpectColumnProportionOfNonNullValuesToBeBetween", {"column": "ambient_temp_c",
                                                          "min_value": 0.5}),
    ("ExpectColumnProportionOfNonNullValuesToBeBetween", {"column": "hv_battery_voltage_v",
                                                          "min_value": 0.9}),
    ("ExpectColumnProportionOfNonNullValuesToBeBetween", {"column": "kafka_timestamp",
                                                          "min_value": 0.99}),
    ("ExpectColumnMeanToBeBetween", {"column": "speed_kph", "min_value": 20.0,
                                     "max_value": 90.0}),
    ("ExpectColumnMeanToBeBetween", {"column": "battery_soc_pct", "min_value": 20.0,
                                     "max_value": 80.0}),
    ("ExpectColumnMaxToBeBetween", {"column": "kafka_timestamp", "min_value": FRESH_AFTER}),
]
assert len(EXPECTATIONS) == 20

UNIQUE_AS_DISTINCT = ("ExpectColumnProportionOfUniqueValuesToBeBetween",
                      {"column": "event_id", "min_value": 1.0, "max_value": 1.0})
"""Uniqueness as an aggregate (distinct count / non-null count = 1) instead of GX's
ExpectColumnValuesToBeUnique, which counts each value's rows with a window over the whole
table and then samples the duplicates with a second window query."""

VARIANTS = {
    "boolean_only": "result_format=BOOLEAN_ONLY",
    "basic": "result_format=BASIC",
    "summary": "result_format=SUMMARY (GX's default)",
    "complete": "result_format=COMPLETE",
    "no_persist": "datasource persist=False (SUMMARY)",
    "two_phase": "BOOLEAN_ONLY, then SUMMARY for the failed ones",
    "two_phase_distinct": "two-phase + uniqueness as distinct count",
    "boolean_only_no_persist": "BOOLEAN_ONLY, persist=False",
    "two_phase_no_persist": "two-phase, persist=False",
}
"""GX variants (id: label): what makes GX cheaper without leaving GX."""


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rows", type=int, default=10_000_000,
                   help="silver.vehicle_telemetry rows (default 10,000,000)")
    p.add_argument("--repeat", type=int, default=3,
                   help="timed runs of each way after one warm-up (default 3)")
    p.add_argument("--variant-repeat", type=int, default=1,
                   help="timed runs of each GX variant, after the warm-up the main ways "
                        "already did (default 1)")
    p.add_argument("--modes", default="uncached,cached",
                   help="comma-separated: uncached (the table as read from Delta), cached "
                        "(cached and materialised beforehand) (default both)")
    p.add_argument("--variants", default=",".join(VARIANTS),
                   help="comma-separated GX variants to time, or 'none' (default all: "
                        f"{', '.join(VARIANTS)})")
    p.add_argument("--lake", default="/tmp/redline-bench-quality",
                   help="scratch lake root, reused when it holds --rows rows "
                        "(default /tmp/redline-bench-quality)")
    p.add_argument("--fresh", action="store_true", help="rebuild the scratch table")
    p.add_argument("--out", default=str(ROOT / "benchmarks/results/quality_gate.json"),
                   help="JSON results file")
    p.add_argument("--driver-memory", default="6g", help="Spark driver memory (default 6g)")
    args = p.parse_args(argv)
    args.modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    args.variants = [] if args.variants.strip() == "none" else [
        v.strip() for v in args.variants.split(",") if v.strip()]
    if not set(args.variants) <= set(VARIANTS):
        p.error(f"--variants: some of {', '.join(VARIANTS)}, or none")
    if args.rows < VEHICLES or args.repeat < 1 or args.variant_repeat < 1:
        p.error(f"--rows must be at least {VEHICLES:,}; --repeat and --variant-repeat >= 1")
    if not set(args.modes) <= {"uncached", "cached"} or not args.modes:
        p.error("--modes: uncached, cached or both")
    return args


def _log(msg: str) -> None:
    print(f"[{datetime.now().strftime('%H:%M:%S')}] {msg}", flush=True)


def _machine() -> dict:
    return {"cores": os.cpu_count(), "load_average": list(os.getloadavg()),
            "platform": platform.platform(), "python": sys.version.split()[0]}


# --- the table -----------------------------------------------------------------------------

def _h(salt: int):
    """A uniform [0, 1) number from the row id (deterministic)."""
    from pyspark.sql import functions as F

    return (F.abs(F.xxhash64(F.col("id"), F.lit(salt))) % 1_000_003) / 1_000_003.0


def telemetry(spark, rows: int):
    """``rows`` telemetry readings of VEHICLES vehicles over DAYS days, silver-shaped."""
    from pyspark.sql import functions as F

    base = int(datetime(START.year, START.month, START.day, tzinfo=UTC).timestamp())
    v = F.col("id") % VEHICLES
    t = F.timestamp_seconds(F.lit(base) + (F.col("id") * (DAYS * 86400.0 / rows)).cast("long")
                            + (_h(1) * 600).cast("long"))
    md5 = F.md5(F.col("id").cast("string"))
    uuid = F.concat_ws("-", *[F.substring(md5, a, n) for a, n in
                              ((1, 8), (9, 4), (13, 4), (17, 4), (21, 12))])
    v2 = _h(2) < 0.6  # schema v2 records carry the HV battery voltage

    def nulls(col, share: float, salt: int):
        return F.when(_h(salt) < share, F.lit(None).cast("double")).otherwise(col)

    speed = F.when(_h(3) < 0.00002, F.lit(255.0)).otherwise(F.round(_h(4) * 110, 1))
    return spark.range(0, rows).select(
        uuid.alias("event_id"), t.alias("event_time"),
        F.when(v2, 2).otherwise(1).cast("int").alias("schema_version"),
        F.concat(F.lit("VIN"), F.lpad(v.cast("string"), 9, "0")).alias("vin"),
        F.round((F.col("id") / rows * DAYS) * (30 + v % 50), 1).alias("odometer_km"),
        nulls(speed, 0.002, 5).alias("speed_kph"),
        nulls(F.round(3 + _h(6) * 97, 1), 0.001, 7).alias("battery_soc_pct"),
        # 1% of packs read hot (above the 80 degC range: the range has mostly=0.95)
        F.when(_h(8) < 0.01, F.round(82 + _h(9) * 5, 2))
        .otherwise(F.round(26 + _h(10) * 6, 2)).alias("battery_temp_c"),
        nulls(F.round(68 + _h(11) * 12, 2), 0.005, 12).alias("motor_temp_c"),
        F.round(65 + _h(13) * 6, 2).alias("coolant_temp_c"),
        nulls(F.round(3 + _h(14) * 10, 1), 0.02, 15).alias("ambient_temp_c"),
        F.struct(*[F.round(244 + _h(16 + i) * 12, 1).alias(w)
                   for i, w in enumerate(("fl", "fr", "rl", "rr"))]).alias("tyre_pressure_kpa"),
        F.when(v2, F.round(350 + _h(20) * 50, 1)).otherwise(F.lit(None).cast("double"))
        .alias("hv_battery_voltage_v"),
        F.lit("vehicle_telemetry").alias("kafka_topic"),
        (F.col("id") % 3).cast("int").alias("kafka_partition"),
        (F.col("id") / 3).cast("long").alias("kafka_offset"),
        (t + F.make_interval(secs=(_h(21) * 5).cast("int"))).alias("kafka_timestamp"))


def ensure_table(spark, lake_root: str, rows: int, fresh: bool) -> dict:
    """Write the scratch table unless it is there with the same rows and generator."""
    from redline import catalog, lake

    table = catalog.silver("vehicle_telemetry")
    marker = Path(lake_root) / "_quality_gate_benchmark.json"
    want = {"rows": rows, "generator_version": GENERATOR_VERSION}
    if not fresh and marker.exists() and json.loads(marker.read_text()) == want \
            and catalog.exists(spark, lake_root, table):
        have = catalog.read(spark, lake_root, table).count()
        if have == rows:
            _log(f"reusing {TABLE} at {catalog.location(lake_root, table)} ({have:,} rows)")
            return {"reused": True, "seconds": 0.0}
    _log(f"writing {rows:,} rows of {TABLE} to {catalog.location(lake_root, table)} ...")
    began = time.monotonic()
    Path(lake_root).mkdir(parents=True, exist_ok=True)
    marker.unlink(missing_ok=True)
    lake.overwrite(telemetry(spark, rows), lake_root, table)
    seconds = time.monotonic() - began
    marker.write_text(json.dumps(want))
    _log(f"  written in {seconds:.1f}s")
    return {"reused": False, "seconds": round(seconds, 1)}


# --- where the time goes: Spark jobs and SQL queries of a run --------------------------------

class Probe:
    """Counts the Spark jobs (by job group) and SQL queries a block of code runs."""

    def __init__(self, spark):
        self.spark = spark
        self.sc = spark.sparkContext
        self._store = spark._jsparkSession.sharedState().statusStore()
        self._n = 0

    def _drain(self) -> None:
        try:
            self.sc._jsc.sc().listenerBus().waitUntilEmpty()
        except Exception:  # noqa: BLE001 (older/newer Spark: fall back to a short wait)
            time.sleep(1.0)

    def _last_execution_id(self) -> int:
        self._drain()
        n = self._store.executionsCount()
        if n == 0:
            return -1
        return self._store.executionsList(n - 1, 1).apply(0).executionId()

    def _executions_since(self, after_id: int) -> list:
        n = self._store.executionsCount()
        k = 64
        while True:
            seq = self._store.executionsList(max(0, n - k), k)
            items = [seq.apply(i) for i in range(seq.length())]
            if not items or items[0].executionId() <= after_id or len(items) >= n:
                return [e for e in items if e.executionId() > after_id]
            k *= 2

    @staticmethod
    def _kind(plan: str) -> str:
        """What a query was, from its physical plan."""
        physical = plan.split("== Physical Plan ==")[-1]
        head = physical.strip().splitlines()[0] if physical.strip() else ""
        if "Window" in physical:
            return "window (uniqueness)"
        if "CollectLimit" in head or "TakeOrderedAndProject" in head or "GlobalLimit" in head:
            return "limit (unexpected-value sample)"
        if "InMemoryRelation" in physical and "HashAggregate" not in physical:
            return "cache build"
        if "_delta_log" in physical:
            return "delta log (file skipping)"
        if "HashAggregate" in physical:
            return "grouped aggregate" if "hashpartitioning(" in physical else "aggregate"
        if "LocalTableScan" in head:
            return "local (count from Delta statistics)"
        return "other"

    def run(self, fn):
        """Run ``fn()``; return (its value, seconds, facts about the Spark work)."""
        self._n += 1
        group = f"bench-quality-{self._n}"
        before = self._last_execution_id()
        self.sc.setJobGroup(group, group)
        began = time.perf_counter()
        try:
            value = fn()
        finally:
            seconds = time.perf_counter() - began
            self.sc.setJobGroup("bench-quality-idle", "idle")
        self._drain()
        jobs = len(self.sc.statusTracker().getJobIdsForGroup(group))
        executions = self._executions_since(before)
        kinds: Counter = Counter()
        kind_seconds: Counter = Counter()
        detail = []
        in_queries = 0.0
        file_scans = 0
        for e in executions:
            plan = e.physicalPlanDescription()
            kind = self._kind(plan)
            kinds[kind] += 1
            file_scans += "FileScan parquet" in plan and "InMemoryTableScan" not in plan
            done = e.completionTime()
            if done.isDefined():
                took = (done.get().getTime() - e.submissionTime()) / 1000.0
                in_queries += took
                kind_seconds[kind] += took
                detail.append([kind, round(took, 2)])
        return value, seconds, {"jobs": jobs, "queries": len(executions),
                                "query_seconds": round(in_queries, 2),
                                "queries_reading_files": file_scans,
                                "query_kinds": dict(sorted(kinds.items())),
                                "query_kind_seconds": {k: round(v, 2) for k, v in
                                                       sorted(kind_seconds.items())},
                                "query_list": detail}


# --- way a: the gate ------------------------------------------------------------------------

def _quiet_gx() -> None:
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    logging.getLogger("great_expectations").setLevel(logging.ERROR)


class GXRunner:
    """GX built the way ``gate.validate`` builds it (ephemeral context, Spark datasource,
    dataframe asset, one suite and one ValidationDefinition per run), but once, so that
    variants (result format, persist) and one-by-one runs change one thing at a time."""

    def __init__(self, persist: bool = True):
        _quiet_gx()
        import great_expectations as gx

        self.gx = gx
        self.ctx = gx.get_context(mode="ephemeral")
        self.ctx.variables.progress_bars = {"globally": False}
        asset = (self.ctx.data_sources.add_spark(name="lake", persist=persist)
                 .add_dataframe_asset(name=TABLE))
        self.batch_def = asset.add_batch_definition_whole_dataframe("whole")
        self._n = 0

    def run(self, df, expectations, result_format: str | None = None) -> dict:
        gx = self.gx
        self._n += 1
        name = f"bench-{self._n}"
        suite = gx.ExpectationSuite(name=name)
        for cls_name, kwargs in expectations:
            suite.add_expectation(getattr(gx.expectations, cls_name)(**kwargs))
        suite = self.ctx.suites.add(suite)
        vd = self.ctx.validation_definitions.add(
            gx.ValidationDefinition(name=name, data=self.batch_def, suite=suite))
        try:
            fmt = {"result_format": result_format or "SUMMARY",
                   "partial_unexpected_count": _gate_samples()}
            return vd.run(batch_parameters={"dataframe": df}, result_format=fmt).to_json_dict()
        finally:
            self.ctx.validation_definitions.delete(name)
            self.ctx.suites.delete(name)


def _gate_samples() -> int:
    """Unexpected values the gate asks GX for per expectation (GX's default: 20)."""
    try:
        from redline.quality import gate

        return int(getattr(gate, "SAMPLES", 20))
    except ImportError:
        return 20


def gate_validate():
    """The gate's validate as (df, expectations) -> result dict; falls back to building
    the validation here when it cannot be called the way this script expects."""
    try:
        from redline.quality import gate

        params = list(inspect.signature(gate.validate).parameters.values())
        required = [p for p in params if p.default is inspect.Parameter.empty
                    and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
        if len(required) == 3:
            return (lambda df, exps: gate.validate(df, TABLE, exps)), "redline.quality.gate.validate"
        _log(f"gate.validate{inspect.signature(gate.validate)} is not (df, table, "
             "expectations): building the validation in this script instead")
    except ImportError as exc:
        _log(f"cannot import the gate ({exc}): building the validation in this script")
    return (lambda df, exps: GXRunner().run(df, exps)), "benchmark's own GX validation"


# --- way b: one hand-written pass ------------------------------------------------------------

def _between(value, kw: dict) -> bool:
    lo, hi = kw.get("min_value"), kw.get("max_value")
    if value is None:
        return False
    if isinstance(value, datetime):
        from dateutil.parser import parse

        value = value.replace(tzinfo=None)
        lo = parse(lo).replace(tzinfo=None) if isinstance(lo, str) else lo
        hi = parse(hi).replace(tzinfo=None) if isinstance(hi, str) else hi
    if lo is not None and (value <= lo if kw.get("strict_min") else value < lo):
        return False
    return not (hi is not None and (value >= hi if kw.get("strict_max") else value > hi))


def _mostly(considered: int, unexpected: int, mostly: float) -> bool:
    if considered == 0:
        return True  # vacuously true, as GX
    return (considered - unexpected) / considered >= mostly


def handwritten(df, expectations) -> list[dict]:
    """Every metric of ``expectations`` in ONE ``df.agg`` (plus one window count for
    uniqueness); decide each expectation as GX does. Returns one dict per expectation."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    aggs = {"n": F.count(F.lit(1))}
    unique_cols: list[str] = []

    def nonnull(c: str) -> str:
        aggs.setdefault(f"nonnull:{c}", F.count(F.col(c)))
        return f"nonnull:{c}"

    def bad(key: str, c: str, cond) -> str:
        aggs[key] = F.sum(F.when(F.col(c).isNotNull() & ~cond, 1).otherwise(0))
        return key

    plan = []
    for i, (cls, kw) in enumerate(expectations):
        c = kw.get("column")
        if cls == "ExpectColumnValuesToNotBeNull":
            plan.append((cls, kw, nonnull(c)))
        elif cls == "ExpectColumnValuesToBeUnique":
            nonnull(c)
            unique_cols.append(c)
            plan.append((cls, kw, None))
        elif cls in ("ExpectColumnValuesToBeBetween", "ExpectColumnValueLengthsToBeBetween"):
            x = F.length(F.col(c)) if cls == "ExpectColumnValueLengthsToBeBetween" else F.col(c)
            cond = F.lit(True)
            if kw.get("min_value") is not None:
                cond = cond & (x > kw["min_value"] if kw.get("strict_min")
                               else x >= kw["min_value"])
            if kw.get("max_value") is not None:
                cond = cond & (x < kw["max_value"] if kw.get("strict_max")
                               else x <= kw["max_value"])
            nonnull(c)
            plan.append((cls, kw, bad(f"bad:{i}", c, cond)))
        elif cls == "ExpectColumnValuesToBeInSet":
            nonnull(c)
            plan.append((cls, kw, bad(f"bad:{i}", c, F.col(c).isin(list(kw["value_set"])))))
        elif cls == "ExpectColumnProportionOfNonNullValuesToBeBetween":
            plan.append((cls, kw, nonnull(c)))
        elif cls == "ExpectColumnMeanToBeBetween":
            aggs.setdefault(f"mean:{c}", F.avg(F.col(c)))
            plan.append((cls, kw, f"mean:{c}"))
        elif cls == "ExpectColumnMaxToBeBetween":
            aggs.setdefault(f"max:{c}", F.max(F.col(c)))
            plan.append((cls, kw, f"max:{c}"))
        elif cls == "ExpectTableRowCountToBeBetween":
            plan.append((cls, kw, "n"))
        else:
            raise ValueError(f"no hand-written metric for {cls}")
    keys = list(aggs)
    row = df.agg(*[aggs[k].alias(f"m{j}") for j, k in enumerate(keys)]).collect()[0]
    m = {k: row[f"m{j}"] for j, k in enumerate(keys)}
    for c in unique_cols:
        # Rows whose value occurs more than once, nulls ignored (GX's unexpected count).
        # A count over a window partitioned by the column (shuffle + sort) was the cheapest
        # exact way on 10M distinct event ids: 7.8 s against 11.8 s for groupBy().count()
        # (a hash aggregate that reduces nothing), 20.8 s for distinct().count() and
        # 23.1 s for countDistinct (second of two rounds each, uncached, 2 cores).
        per_value = F.count(F.lit(1)).over(Window.partitionBy(c))
        dup = (df.where(F.col(c).isNotNull()).select((per_value > 1).cast("int").alias("d"))
               .agg(F.sum("d")).collect()[0][0])
        m[f"dup:{c}"] = int(dup or 0)

    n = m["n"]
    out = []
    for cls, kw, key in plan:
        c = kw.get("column")
        mostly = kw.get("mostly", 1.0)
        if cls == "ExpectColumnValuesToNotBeNull":
            observed = n - m[key]
            ok = _mostly(n, observed, mostly)
        elif cls == "ExpectColumnValuesToBeUnique":
            observed = m[f"dup:{c}"]
            ok = _mostly(m[f"nonnull:{c}"], observed, mostly)
        elif key and key.startswith("bad:"):
            observed = int(m[key] or 0)
            ok = n == 0 or _mostly(m[f"nonnull:{c}"], observed, mostly)
        elif cls == "ExpectColumnProportionOfNonNullValuesToBeBetween":
            observed = m[key] / n if n else None
            ok = _between(observed, kw)
        else:
            observed = m[key]
            ok = _between(observed, kw)
        out.append({"expectation": cls, "column": c, "success": bool(ok),
                    "observed": observed if not isinstance(observed, datetime)
                    else observed.isoformat()})
    return out


# --- way c and the comparison ----------------------------------------------------------------

def gx_decisions(result: dict) -> list[dict]:
    out = []
    for r in result["results"]:
        cfg = r["expectation_config"]
        res = r.get("result") or {}
        observed = res.get("observed_value", res.get("unexpected_count"))
        err = (r.get("exception_info") or {}).get("raised_exception")
        out.append({"type": cfg["type"], "column": cfg.get("kwargs", {}).get("column"),
                    "success": bool(r["success"]), "observed": observed,
                    "error": (r["exception_info"].get("exception_message") if err else None)})
    return out


def _snake(cls: str) -> str:
    return "".join("_" + ch.lower() if ch.isupper() else ch for ch in cls).lstrip("_")


def compare(gx_results: list[dict], hand: list[dict], label: str) -> list[str]:
    """Differences between GX's decisions and the hand-written ones (empty: all agree)."""
    by_key: dict[tuple, list[dict]] = {}
    renamed = {_snake(UNIQUE_AS_DISTINCT[0]): "expect_column_values_to_be_unique"}
    for g in gx_results:
        by_key.setdefault((renamed.get(g["type"], g["type"]), g["column"]), []).append(g)
    diffs = []
    for h in hand:
        key = (_snake(h["expectation"]), h["column"])
        found = by_key.get(key) or []
        g = found.pop(0) if found else None
        if g is None:
            diffs.append(f"{label}: {key} has no GX result")
        elif g["error"]:
            diffs.append(f"{label}: {key} raised in GX: {g['error']}")
        elif g["success"] != h["success"]:
            diffs.append(f"{label}: {key} GX success={g['success']} observed={g['observed']}"
                         f" / hand-written success={h['success']} observed={h['observed']}")
    return diffs


def measure(probe: Probe, ways: list[tuple], after) -> dict[str, dict]:
    """Time ``ways`` [(key, label, fn, runs, warm_up)] round-robin: the warm-ups first,
    then round i runs every way that has more than i runs, so that a load that drifts
    (a machine shared with others) hits every way alike. Median seconds per way."""
    for _key, label, fn, _runs, warm_up in ways:
        if warm_up:
            _log(f"  {label}: warm-up ...")
            fn()
            after()
    runs: dict[str, list[dict]] = {key: [] for key, *_ in ways}
    values: dict[str, object] = {}
    for i in range(max(w[3] for w in ways)):
        for key, label, fn, n, _warm_up in ways:
            if i >= n:
                continue
            load = os.getloadavg()[0]
            values[key], seconds, facts = probe.run(fn)
            after()
            runs[key].append({"seconds": round(seconds, 2), "load_average_1m": load, **facts})
            _log(f"  {label}: run {i + 1}/{n} {seconds:.1f}s, {facts['jobs']} Spark jobs, "
                 f"{facts['queries']} SQL queries ({facts['query_seconds']:.1f}s in them) "
                 f"{facts['query_kinds']}")
    out = {}
    for key, label, *_ in ways:
        median = statistics.median(r["seconds"] for r in runs[key])
        pick = min(runs[key], key=lambda r, m=median: abs(r["seconds"] - m))
        out[key] = {"label": label, "seconds": round(median, 2), "runs": runs[key],
                    **{k: v for k, v in pick.items()
                       if k not in ("seconds", "load_average_1m")},
                    "value": values[key]}
    return out


def run_mode(spark, probe: Probe, base_df, mode: str, args, validate, diffs: list[str]) -> dict:
    """The three ways (and the GX variants) on ``base_df``, uncached or cached."""
    if mode == "cached":
        df = base_df.cache()
        _log("caching the table ...")
        began = time.monotonic()
        df.count()
        _log(f"  cached in {time.monotonic() - began:.1f}s")

        def after():
            return None
    else:
        df = base_df

        def after():
            # GX's Spark datasource persists the batch (persist=True) and never unpersists
            # it: drop it, so that every uncached run starts from the table on disk.
            spark.catalog.clearCache()

    runner = GXRunner()
    no_persist = GXRunner(persist=False)
    distinct = [UNIQUE_AS_DISTINCT if c == "ExpectColumnValuesToBeUnique" else (c, kw)
                for c, kw in EXPECTATIONS]

    def two_phase(exps, gx_runner=runner):
        """Decide with BOOLEAN_ONLY (aggregates only); fetch unexpected-value samples for
        the report only for the expectations that failed."""
        first = gx_runner.run(df, exps, "BOOLEAN_ONLY")
        failed = {(r["expectation_config"]["type"],
                   r["expectation_config"]["kwargs"].get("column"))
                  for r in first["results"] if not r["success"]}
        again = [(c, kw) for c, kw in exps if (_snake(c), kw.get("column")) in failed]
        if again:
            gx_runner.run(df, again, "SUMMARY")
        return first

    variant_fns = {
        "boolean_only": lambda: runner.run(df, EXPECTATIONS, "BOOLEAN_ONLY"),
        "basic": lambda: runner.run(df, EXPECTATIONS, "BASIC"),
        "summary": lambda: runner.run(df, EXPECTATIONS, "SUMMARY"),
        "complete": lambda: runner.run(df, EXPECTATIONS, "COMPLETE"),
        "no_persist": lambda: no_persist.run(df, EXPECTATIONS),
        "two_phase": lambda: two_phase(EXPECTATIONS),
        "two_phase_distinct": lambda: two_phase(distinct),
        "boolean_only_no_persist": lambda: no_persist.run(df, EXPECTATIONS, "BOOLEAN_ONLY"),
        "two_phase_no_persist": lambda: two_phase(EXPECTATIONS, no_persist),
    }
    ways = [
        ("gate", "a. gate (gate.validate, 20 in one validation)",
         lambda: validate(df, EXPECTATIONS), args.repeat, True),
        ("handwritten", "b. hand-written df.agg pass",
         lambda: handwritten(df, EXPECTATIONS), args.repeat, True),
        ("one_by_one", "c. one by one (a GX validation each)",
         lambda: [runner.run(df, [e]) for e in EXPECTATIONS], args.repeat, True),
    ] + [(vid, f"GX {VARIANTS[vid]}", variant_fns[vid], args.variant_repeat, False)
         for vid in args.variants]
    _log(f"[{mode}] {len(ways)} ways, round-robin: {args.repeat} timed runs of a, b, c "
         f"after one warm-up each, {args.variant_repeat} of each GX variant")
    res = measure(probe, ways, after)

    out: dict[str, dict] = {k: res[k] for k in ("gate", "handwritten", "one_by_one")}
    hand = out["handwritten"].pop("value")
    gx_dec = gx_decisions(out["gate"].pop("value"))
    diffs += compare(gx_dec, hand, f"{mode}/gate")
    by_key = {(g["type"], g["column"]): g for g in gx_dec}  # GX's order is not the suite's
    out["decisions"] = []
    for h in hand:
        g = by_key.get((_snake(h["expectation"]), h["column"]), {})
        out["decisions"].append({"expectation": h["expectation"], "column": h["column"],
                                 "gx": g.get("success"), "handwritten": h["success"],
                                 "gx_observed": g.get("observed"),
                                 "handwritten_observed": h["observed"]})
    singles = out["one_by_one"].pop("value")
    diffs += compare([d for r in singles for d in gx_decisions(r)], hand, f"{mode}/one-by-one")
    if args.variants:
        out["variants"] = {}
        for vid in args.variants:
            v = res[vid]
            diffs += compare(gx_decisions(v.pop("value")), hand, f"{mode}/{v['label']}")
            out["variants"][vid] = v
    if mode == "cached":
        df.unpersist()
    spark.catalog.clearCache()
    b = out["handwritten"]["seconds"]
    out["gate_over_handwritten"] = round(out["gate"]["seconds"] / b, 2)
    out["one_by_one_over_handwritten"] = round(out["one_by_one"]["seconds"] / b, 2)
    for v in out.get("variants", {}).values():
        v["over_handwritten"] = round(v["seconds"] / b, 2)
    return out


def leaks_cache(spark, validate, df) -> bool:
    """Does the gate's validate leave the DataFrame it was given persisted?"""
    spark.catalog.clearCache()
    validate(df.limit(1000), EXPECTATIONS[:2])
    leaked = not spark._jsparkSession.sharedState().cacheManager().isEmpty()
    spark.catalog.clearCache()
    return leaked


def main(argv=None) -> int:
    args = parse_args(argv)
    machine_start = _machine()
    home = Path(args.lake).parent / (Path(args.lake).name + "-home")
    os.environ.setdefault("REDLINE_HOME", str(home))
    os.environ.setdefault("REDLINE_SPARK_DRIVER_MEMORY", args.driver_memory)
    _quiet_gx()

    from redline import catalog
    from redline.config import load
    from redline.spark import build_session

    _log(f"lake {args.lake}; {args.rows:,} rows; repeat {args.repeat}; modes {args.modes}; "
         f"load average {machine_start['load_average']} on {machine_start['cores']} cores")
    spark = build_session(load("local"), app_name="redline-bench-quality-gate")
    spark.sparkContext.setLogLevel("ERROR")
    began = time.monotonic()
    diffs: list[str] = []
    try:
        table = ensure_table(spark, args.lake, args.rows, args.fresh)
        base_df = catalog.read(spark, args.lake, catalog.silver("vehicle_telemetry"))
        validate, validate_name = gate_validate()
        _log(f"gate under test: {validate_name}")
        probe = Probe(spark)
        leak = leaks_cache(spark, validate, base_df)
        setup = []
        for _ in range(3):
            t0 = time.perf_counter()
            GXRunner()
            setup.append(time.perf_counter() - t0)
        gx_setup_s = round(statistics.median(setup), 2)
        _log(f"GX context + datasource + asset setup (gate.validate does it per call): "
             f"{gx_setup_s:.2f}s")
        modes = {m: run_mode(spark, probe, base_df, m, args, validate, diffs)
                 for m in args.modes}
    finally:
        spark.stop()
    total_s = time.monotonic() - began

    headline = "uncached" if "uncached" in modes else args.modes[0]
    ratio = modes[headline]["gate_over_handwritten"]
    result = {
        "benchmark": "quality_gate", "at": datetime.now(UTC).isoformat(),
        "rows": args.rows, "repeat": args.repeat, "variant_repeat": args.variant_repeat,
        "expectations": [[c, kw] for c, kw in EXPECTATIONS], "gate": validate_name,
        "table": table, "modes": modes, "headline_mode": headline,
        "gate_over_handwritten": ratio,
        "one_by_one_over_handwritten": modes[headline]["one_by_one_over_handwritten"],
        "target_ratio": TARGET_RATIO, "met": ratio <= TARGET_RATIO,
        "decisions_agree": not diffs, "decision_differences": diffs,
        "gate_validate_leaves_dataframe_persisted": leak,
        "gx_setup_seconds": gx_setup_s,
        "total_seconds": round(total_s, 1),
        "machine_start": machine_start, "machine_end": _machine(),
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2, default=str))

    print()
    print(f"{'mode':<10}{'way':<54}{'median s':>9}{'x hand':>8}{'jobs':>6}{'queries':>8}"
          f"{'in q. s':>8}  query kinds")
    for mode, o in modes.items():
        rows = [(o[k]["label"], o[k]) for k in ("gate", "handwritten", "one_by_one")]
        rows += [(f"  {v['label']}", v) for v in o.get("variants", {}).values()]
        b = o["handwritten"]["seconds"]
        for label, r in rows:
            kinds = ", ".join(f"{k} {n}" for k, n in r["query_kinds"].items())
            print(f"{mode:<10}{label:<54}{r['seconds']:>9.2f}{r['seconds'] / b:>8.2f}"
                  f"{r['jobs']:>6}{r['queries']:>8}{r['query_seconds']:>8.1f}  {kinds}")
    print()
    for mode, o in modes.items():
        for key in ("handwritten", "gate", "one_by_one"):
            r = o[key]
            parts = ", ".join(f"{k} {r['query_kinds'][k]} x = {sec:.1f}s"
                              for k, sec in r["query_kind_seconds"].items())
            print(f"where the time goes, {mode}, {r['label']}: {r['seconds']:.1f}s wall, "
                  f"{r['query_seconds']:.1f}s in {r['queries']} SQL queries ({parts}); "
                  f"{max(0.0, r['seconds'] - r['query_seconds']):.1f}s outside queries")
    print()
    for d in diffs:
        print("DECISIONS DIFFER:", d)
    print(f"{args.rows:,} rows, 20 expectations; gate / hand-written ({headline}) = "
          f"{ratio:.2f}x (target <= {TARGET_RATIO}x: {'met' if ratio <= TARGET_RATIO else 'NOT met'});"
          f" one by one / hand-written = {modes[headline]['one_by_one_over_handwritten']:.2f}x")
    for mode, o in modes.items():
        print(f"  {mode}: gate {o['gate_over_handwritten']:.2f}x, one by one "
              f"{o['one_by_one_over_handwritten']:.2f}x")
    print(f"decisions: {'GX and hand-written agree on all 20' if not diffs else 'DIFFER'}; "
          f"gate.validate leaves its DataFrame persisted: {leak}; GX setup per validate "
          f"call {gx_setup_s:.2f}s")
    print(f"load average {machine_start['load_average'][0]:.2f} at start, "
          f"{result['machine_end']['load_average'][0]:.2f} at end on "
          f"{machine_start['cores']} cores; {total_s / 60:.1f} min; results in {out}")
    return 0 if not diffs else 1


if __name__ == "__main__":
    raise SystemExit(main())
