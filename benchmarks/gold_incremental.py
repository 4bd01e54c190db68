"""Benchmark: full rebuild of every gold table, then an incremental run after 1% new data.

Synthetic silver is generated with Spark (``spark.range``), shaped like the simulator's
silver tables: 3 plant lines, 4 stations with one measured characteristic each, about
10% of units retested, ~10,000 field vehicles sending telemetry, builds for every unit,
DTCs and warranty claims in proportion. Then:

1. every gold job runs in full (timed per job);
2. ``--increment`` (1%) new rows are appended to every silver table: most at the next
   day (the data's "now"), ``--late-share`` of them late, with event times on a random
   day of the ``--late-days`` before it (7 by default: a vehicle offline for up to a
   week, a station buffer flushed late; ``--late-days 0`` spreads them over the whole
   history);
3. every gold job runs incrementally (timed per job);
4. one new unit (its station results and build record) and one row of every other
   silver table are appended, on time, and every gold job runs incrementally again: the
   cost of an incremental run that does not shrink with the size of the increment (Delta
   log reads, change-feed reads, commits, Spark job start-up, and the full recomputes of
   the jobs whose outputs are global).

It prints both times and their ratio (the issue's target: the incremental run costs
under 10% of the rebuild) and writes a JSON with the figures, the scale and the machine
(cores, load average at start and end).

    .venv/bin/python benchmarks/gold_incremental.py                # issue sizes
    .venv/bin/python benchmarks/gold_incremental.py --telemetry-rows 200000 \\
        --station-rows 40000                                       # a smoke run
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from datetime import UTC, date, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
START = date(2026, 1, 5)
LINES = (("PLT-A", "L1"), ("PLT-A", "L2"), ("PLT-B", "L1"))
# station, operation, characteristic, unit, lsl, usl, target, sigma, defect code
STATIONS = (("S010", "chassis_bolting", "bolt_torque_nm", "Nm", 45.0, 55.0, 50.0, 1.0,
             "D-TORQUE"),
            ("S020", "coolant_leak_test", "leak_rate_ccm", "ccm", 0.0, 5.0, 2.0, 0.6,
             "D-LEAK"),
            ("S030", "battery_install", "pack_voltage_v", "V", 390.0, 410.0, 400.0, 2.0,
             "D-BM-CELL-IMBALANCE"),
            ("S040", "end_of_line", "insulation_mohm", "MOhm", 100.0, 1000.0, 500.0, 60.0,
             "D-EOL-INSULATION"))
COMPONENTS = (("battery_module", ("VoltCell", "Northpole Energy"), 5),
              ("coolant_pump", ("ThermaFlow", "AquaDyn"), 4),
              ("drive_motor", ("Magnetix",), 2),
              ("inverter", ("Siliconvolt",), 2))
FIRMWARE = ("FW-3.1.4", "FW-3.2.0", "FW-3.2.1")
DTC_CODES = ("P0A1F", "P0AA6", "P0C78", "U0100", "P1E00")
RETEST_EVERY = 10
"""One unit in RETEST_EVERY fails attempt 1 at one station and is retested."""


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--telemetry-rows", type=int, default=10_000_000,
                   help="silver.vehicle_telemetry rows (default 10,000,000)")
    p.add_argument("--station-rows", type=int, default=1_000_000,
                   help="silver.station_results rows, about (default 1,000,000)")
    p.add_argument("--vehicles", type=int, default=10_000,
                   help="field vehicles sending telemetry (default 10,000)")
    p.add_argument("--days", type=int, default=90, help="days of history (default 90)")
    p.add_argument("--increment", type=float, default=0.01,
                   help="new data as a fraction of each table (default 0.01)")
    p.add_argument("--late-share", type=float, default=0.1,
                   help="share of the new rows that are late (default 0.1)")
    p.add_argument("--late-days", type=int, default=7,
                   help="late rows fall on the days before today, up to this many days "
                        "back; 0: anywhere in the history (default 7)")
    p.add_argument("--lake", default=None,
                   help="lake root (default: a new folder under /tmp, removed at the end)")
    p.add_argument("--out", default=str(ROOT / "benchmarks/results/gold_incremental.json"),
                   help="JSON results file")
    p.add_argument("--driver-memory", default="6g", help="Spark driver memory (default 6g)")
    args = p.parse_args(argv)
    if args.telemetry_rows < args.vehicles or args.station_rows < 100:
        p.error("--telemetry-rows must be at least --vehicles and --station-rows >= 100")
    return args


# --- synthetic silver (pure DataFrame builders) ------------------------------------------

def _h(col, salt: int):
    """A uniform [0, 1) number from a row id (deterministic)."""
    from pyspark.sql import functions as F

    return (F.abs(F.xxhash64(col, F.lit(salt))) % 1_000_003) / 1_000_003.0


def _pick(values, u):
    from pyspark.sql import functions as F

    return F.element_at(F.array(*[F.lit(v) for v in values]),
                        (F.floor(u * len(values)) + 1).cast("int"))


def _envelope(df, topic: str, prefix: str):
    from pyspark.sql import functions as F

    return (df.withColumn("event_id", F.concat(F.lit(f"{prefix}-{topic}-"),
                                               F.col("id").cast("string")))
              .withColumn("schema_version", F.lit(1))
              .withColumn("kafka_topic", F.lit(topic))
              .withColumn("kafka_partition", (F.col("id") % 3).cast("int"))
              .withColumn("kafka_offset", F.col("id"))
              .withColumn("kafka_timestamp", F.current_timestamp()))


def _unit_time(unit, units: int, days: int):
    """Build start of a unit: units spread evenly over the days, in three shifts."""
    from pyspark.sql import functions as F

    secs = (unit * (days * 86400.0 / units)).cast("long")
    return F.timestamp_seconds(F.lit(int(datetime(START.year, START.month, START.day,
                                                  tzinfo=UTC).timestamp())) + secs)


def station_results(spark, units: tuple[int, int], unit_total: int, days: int,
                    prefix: str, time_of=None):
    """Results of units [u0, u1): attempt 1 at 4 stations, and a retest for every
    RETEST_EVERY-th unit at the station it failed. ``time_of(unit) -> timestamp``."""
    from pyspark.sql import functions as F

    time_of = time_of or (lambda u: _unit_time(u, unit_total, days))
    u0, u1 = units
    first = spark.range(u0 * 4, u1 * 4).select(
        "id", (F.col("id") / 4).cast("long").alias("unit"), (F.col("id") % 4).alias("s"),
        F.lit(1).alias("attempt"))
    fails = spark.range(u0, u1).where(F.col("id") % RETEST_EVERY == 0).select(
        (F.col("id") + 10**12).alias("id"), F.col("id").alias("unit"),
        ((F.col("id") / RETEST_EVERY).cast("long") % 4).alias("s"), F.lit(2).alias("attempt"))
    rows = first.unionByName(fails)
    st = F.element_at(F.array(*[F.struct(*[F.lit(v).alias(n) for v, n in zip(s, (
        "station", "operation", "characteristic", "unit", "lsl", "usl", "target", "sigma",
        "code"))]) for s in STATIONS]), (F.col("s") + 1).cast("int"))
    failing = ((F.col("unit") % RETEST_EVERY == 0)
               & (F.col("s") == (F.col("unit") / RETEST_EVERY).cast("long") % 4)
               & (F.col("attempt") == 1))
    # Box-Muller from two hashes: a normal deviate per row.
    z = (F.sqrt(-2 * F.log(_h("id", 1) * 0.999 + 0.0005))
         * F.cos(2 * 3.141592653589793 * _h("id", 2)))
    line = F.element_at(F.array(*[F.struct(F.lit(p).alias("plant"), F.lit(ln).alias("line"))
                                  for p, ln in LINES]), (F.col("unit") % 3 + 1).cast("int"))
    t = (time_of(F.col("unit")) + F.make_interval(secs=F.col("s") * 180
                                                     + (F.col("attempt") - 1) * 900))
    hour = F.hour(time_of(F.col("unit")))
    df = (rows.withColumn("st", st).withColumn("ln", line)
          .withColumn("value", F.when(failing, F.col("st.usl") + F.col("st.sigma") * 2)
                      .otherwise(F.col("st.target") + F.col("st.sigma") * z))
          .select("id", t.alias("event_time"),
                  F.concat(F.lit("VIN"), F.lpad(F.col("unit").cast("string"), 9, "0"))
                  .alias("unit_serial"),
                  "ln.plant", "ln.line", F.col("st.station").alias("station"),
                  F.col("st.operation").alias("operation"),
                  F.when(hour < 6, "C").when(hour < 14, "A").when(hour < 22, "B")
                  .otherwise("C").alias("shift"),
                  F.col("attempt").cast("int").alias("attempt"),
                  F.when(failing, "FAIL").otherwise("PASS").alias("result"),
                  F.array(F.struct(F.col("st.characteristic").alias("characteristic"),
                                   F.round("value", 4).alias("value"),
                                   F.col("st.unit").alias("unit"), F.col("st.lsl").alias("lsl"),
                                   F.col("st.usl").alias("usl"),
                                   F.col("st.target").alias("target"))).alias("measurements"),
                  F.when(failing, F.array(F.col("st.code")))
                  .otherwise(F.array().cast("array<string>")).alias("defect_codes"),
                  F.round(F.lit(40.0) + _h("id", 3) * 50, 1).alias("cycle_time_s")))
    return _envelope(df, "station_results", prefix)


def vehicle_builds(spark, units: tuple[int, int], unit_total: int, days: int, prefix: str,
                   time_of=None):
    from pyspark.sql import functions as F

    time_of = time_of or (lambda u: _unit_time(u, unit_total, days))
    u = F.col("id")
    comps = F.array(*[F.struct(
        F.lit(c).alias("component"),
        _pick(sups, _h("id", 10 + i)).alias("supplier"),
        F.concat(F.lit(f"LOT-{c[:2].upper()}-"),
                 (F.floor(_h("id", 20 + i) * lots)).cast("string")).alias("lot"))
        for i, (c, sups, lots) in enumerate(COMPONENTS)])
    line = F.element_at(F.array(*[F.struct(F.lit(p).alias("plant"), F.lit(ln).alias("line"))
                                  for p, ln in LINES]), (u % 3 + 1).cast("int"))
    t = time_of(u) + F.make_interval(secs=F.lit(1200))
    df = spark.range(*units).select(
        "id", t.alias("event_time"),
        F.concat(F.lit("VIN"), F.lpad(u.cast("string"), 9, "0")).alias("vin"),
        _pick(("Volta S", "Volta X"), _h("id", 4)).alias("model"),
        line.plant.alias("plant"), line.line.alias("line"), F.to_date(t).alias("build_date"),
        _pick(FIRMWARE, _h("id", 5)).alias("firmware_version"), comps.alias("components"))
    return _envelope(df, "vehicle_builds", prefix)


def vehicle_telemetry(spark, ids: tuple[int, int], vehicles: int, per_vehicle: int,
                      days: int, prefix: str, time_of=None):
    """Reading k of vehicle v (id = k * vehicles + v), evenly over the days after day 3
    (the field vehicles are the first units built)."""
    from pyspark.sql import functions as F

    v = F.col("id") % vehicles
    k = (F.col("id") / vehicles).cast("long")
    span = (days - 4) * 86400.0
    base = int(datetime(START.year, START.month, START.day, tzinfo=UTC).timestamp())
    default_t = F.timestamp_seconds(F.lit(base + 4 * 86400)
                                    + (k * (span / per_vehicle)).cast("long")
                                    + (_h("id", 6) * 600).cast("long"))
    t = time_of(F.col("id")) if time_of else default_t
    days_in = (F.unix_timestamp(t) - base) / 86400.0
    df = spark.range(*ids).select(
        "id", t.alias("event_time"),
        F.concat(F.lit("VIN"), F.lpad(v.cast("string"), 9, "0")).alias("vin"),
        F.round(days_in * (30 + (v % 50)), 1).alias("odometer_km"),
        F.round(_h("id", 7) * 110, 1).alias("speed_kph"),
        F.round(3 + _h("id", 8) * 97, 1).alias("battery_soc_pct"),
        F.round(26 + _h("id", 9) * 6, 2).alias("battery_temp_c"),
        F.round(68 + _h("id", 11) * 12, 2).alias("motor_temp_c"),
        F.round(65 + _h("id", 12) * 6, 2).alias("coolant_temp_c"),
        F.round(3 + _h("id", 13) * 10, 1).alias("ambient_temp_c"),
        F.struct(*[F.round(244 + _h("id", 14 + i) * 12, 1).alias(w)
                   for i, w in enumerate(("fl", "fr", "rl", "rr"))]).alias("tyre_pressure_kpa"),
        F.lit(None).cast("double").alias("hv_battery_voltage_v"))  # v1 records
    return _envelope(df, "vehicle_telemetry", prefix)


def _spread_time(first_day: int, days: int, salt: int):
    """An event time spread evenly (by a hash of ``id``) from day ``first_day`` to ``days``."""
    from pyspark.sql import functions as F

    base = int(datetime(START.year, START.month, START.day, tzinfo=UTC).timestamp())
    return F.timestamp_seconds(F.lit(base + first_day * 86400)
                               + (_h("id", salt) * (days - first_day) * 86400).cast("long"))


def _some_vin(vehicles: int, salt: int):
    """The VIN of one of ``vehicles`` vehicles, picked by a hash of ``id``."""
    from pyspark.sql import functions as F

    return F.concat(F.lit("VIN"), F.lpad((F.floor(_h("id", salt) * vehicles)).cast("string"),
                                         9, "0"))


def vehicle_dtc(spark, ids: tuple[int, int], vehicles: int, days: int, prefix: str,
                time_of=None):
    from pyspark.sql import functions as F

    t = time_of(F.col("id")) if time_of else _spread_time(4, days, 30)
    df = spark.range(*ids).select(
        "id", t.alias("event_time"), _some_vin(vehicles, 31).alias("vin"),
        _pick(DTC_CODES, _h("id", 32)).alias("dtc_code"),
        F.lit("MEDIUM").alias("severity"), F.lit("BECM").alias("ecu"),
        _pick(FIRMWARE, _h("id", 33)).alias("firmware_version"),
        F.round(_h("id", 34) * 5000, 1).alias("odometer_km"))
    return _envelope(df, "vehicle_dtc", prefix)


def warranty_claims(spark, ids: tuple[int, int], vehicles: int, days: int, prefix: str,
                    time_of=None):
    from pyspark.sql import functions as F

    t = time_of(F.col("id")) if time_of else _spread_time(10, days, 40)
    df = spark.range(*ids).select(
        "id", t.alias("event_time"),
        F.concat(F.lit("WC-"), F.col("id").cast("string")).alias("claim_id"),
        _some_vin(vehicles, 41).alias("vin"),
        _pick([c for c, _, _ in COMPONENTS], _h("id", 42)).alias("component"),
        F.to_date(t).alias("failure_date"), F.round(_h("id", 43) * 5000, 1).alias("mileage_km"),
        F.round(300 + _h("id", 44) * 2200, 2).alias("cost_eur"),
        F.lit("component failure").alias("description"))
    return _envelope(df, "warranty_claims", prefix)


# --- the benchmark ------------------------------------------------------------------------

def _machine() -> dict:
    return {"cores": os.cpu_count(), "load_average": list(os.getloadavg()),
            "platform": platform.platform(), "python": sys.version.split()[0]}


def _log(msg: str) -> None:
    print(f"[{datetime.now().strftime('%H:%M:%S')}] {msg}", flush=True)


def _scale(args) -> dict:
    units = -(-args.station_rows * RETEST_EVERY // (4 * RETEST_EVERY + 1))  # at least the rows
    return {"telemetry_rows": args.telemetry_rows, "station_rows_target": args.station_rows,
            "units": units, "vehicles": args.vehicles, "days": args.days,
            "builds": units, "dtc_rows": max(100, args.telemetry_rows // 200),
            "claim_rows": max(20, args.vehicles // 20), "increment": args.increment,
            "late_share": args.late_share, "late_days": args.late_days}


def generate(spark, lake_root: str, s: dict, part: str) -> dict[str, int]:
    """Write the base silver (``part='base'``), the increment (``'increment'``) or one
    on-time row per table after it (``'one_row'``); return the rows in each table."""
    from pyspark.sql import functions as F

    from redline import catalog, lake

    days, inc = s["days"], s["increment"]
    late = 0.0 if part == "one_row" else s["late_share"]
    base_ts = int(datetime(START.year, START.month, START.day, tzinfo=UTC)
                  .timestamp())
    now_day = base_ts + days * 86400  # the day after the history: "today"

    def new_time(salt: int):
        """Most new rows today, ``late`` of them on a random earlier day."""
        def t(col):
            u = _h(col, salt)
            back = s["late_days"] if 0 < s["late_days"] < days - 4 else days - 5
            late_t = now_day - back * 86400 + _h(col, salt + 1) * back * 86400
            today_t = now_day + _h(col, salt + 2) * 86400 * 0.99
            return F.timestamp_seconds(F.when(u < late, late_t).otherwise(today_t)
                                       .cast("long"))
        return t

    per_vehicle = s["telemetry_rows"] // s["vehicles"]
    if part == "base":
        units = (0, s["units"])
        frames = {
            "station_results": station_results(spark, units, s["units"], days, "b"),
            "vehicle_builds": vehicle_builds(spark, units, s["units"], days, "b"),
            "vehicle_telemetry": vehicle_telemetry(
                spark, (0, per_vehicle * s["vehicles"]), s["vehicles"], per_vehicle, days,
                "b"),
            "vehicle_dtc": vehicle_dtc(spark, (0, s["dtc_rows"]), s["vehicles"], days, "b"),
            "warranty_claims": warranty_claims(spark, (0, s["claim_rows"]), s["vehicles"],
                                               days, "b"),
        }
    else:
        def ids(first: int, increment: int) -> tuple[int, int]:
            """Id range of the increment, or of the one row after it."""
            return ((first, first + increment) if part == "increment"
                    else (first + increment, first + increment + 1))

        new_units = ids(s["units"], max(1, int(s["units"] * inc)))
        prefix = "i" if part == "increment" else "o"
        frames = {
            "station_results": station_results(spark, new_units, s["units"], days, prefix,
                                               time_of=new_time(50)),
            "vehicle_builds": vehicle_builds(spark, new_units, s["units"], days, prefix,
                                             time_of=new_time(50)),
            "vehicle_telemetry": vehicle_telemetry(
                spark, ids(per_vehicle * s["vehicles"], int(s["telemetry_rows"] * inc)),
                s["vehicles"], per_vehicle, days, prefix, time_of=new_time(60)),
            "vehicle_dtc": vehicle_dtc(
                spark, ids(s["dtc_rows"], max(1, int(s["dtc_rows"] * inc))), s["vehicles"],
                days, prefix, time_of=new_time(70)),
            "warranty_claims": warranty_claims(
                spark, ids(s["claim_rows"], max(1, int(s["claim_rows"] * inc))),
                s["vehicles"], days, prefix, time_of=new_time(80)),
        }
    written = {}
    for topic, df in frames.items():
        began = time.monotonic()
        lake.append(df, lake_root, catalog.silver(topic))
        written[topic] = catalog.read(spark, lake_root, catalog.silver(topic)).count()
        _log(f"  silver.{topic}: {written[topic]:,} rows in total "
             f"({time.monotonic() - began:.1f}s)")
    return written


def run_gold(spark, lake_root: str, full: bool) -> dict[str, dict]:
    from redline.jobs.runner import JOBS
    from redline.jobs.runner import run as run_job

    gold = list(JOBS.values())
    out = {}
    for i, job in enumerate(gold, 1):
        _log(f"  [{i}/{len(gold)}] {job.name} ...")
        began = time.monotonic()
        metrics = run_job(spark, lake_root, job, "benchmark", full)
        seconds = round(time.monotonic() - began, 2)
        out[job.name] = {"seconds": seconds, "mode": metrics.get("mode"),
                         "metrics": {k: str(v) for k, v in metrics.items()}}
        _log(f"  [{i}/{len(gold)}] {job.name}: {seconds:.1f}s mode={metrics.get('mode')}"
             f" {'keys=' + str(metrics['keys']) if 'keys' in metrics else ''}")
    return out


def main(argv=None) -> int:
    args = parse_args(argv)
    machine_start = _machine()
    own_lake = args.lake is None
    lake_root = args.lake or tempfile.mkdtemp(prefix="redline-bench-", dir="/tmp")
    home = Path(lake_root).parent / (Path(lake_root).name + "-home")
    os.environ.setdefault("REDLINE_HOME", str(home))
    os.environ.setdefault("REDLINE_SPARK_DRIVER_MEMORY", args.driver_memory)

    from redline.config import load
    from redline.spark import build_session

    scale = _scale(args)
    _log(f"lake {lake_root}; scale {scale}; load average {machine_start['load_average']}")
    cfg = load("local")
    spark = build_session(cfg, app_name="redline-bench-gold-incremental")
    spark.sparkContext.setLogLevel("ERROR")
    began = time.monotonic()
    try:
        _log("generating silver ...")
        base_rows = generate(spark, lake_root, scale, "base")
        gen_s = time.monotonic() - began
        _log("full rebuild of every gold table ...")
        t0 = time.monotonic()
        full = run_gold(spark, lake_root, full=True)
        full_s = time.monotonic() - t0
        _log(f"full rebuild: {full_s:.1f}s; appending {args.increment:.1%} new data ...")
        total_rows = generate(spark, lake_root, scale, "increment")
        _log("incremental run ...")
        t0 = time.monotonic()
        incr = run_gold(spark, lake_root, full=False)
        incr_s = time.monotonic() - t0
        _log(f"incremental run: {incr_s:.1f}s; appending one new unit and one row of every "
             f"other table ...")
        generate(spark, lake_root, scale, "one_row")
        _log("incremental run on one new record (the fixed cost of an incremental run) ...")
        t0 = time.monotonic()
        one = run_gold(spark, lake_root, full=False)
        one_s = time.monotonic() - t0
    finally:
        spark.stop()
        if own_lake:
            shutil.rmtree(lake_root, ignore_errors=True)
            shutil.rmtree(home, ignore_errors=True)
    ratio = incr_s / full_s
    result = {
        "benchmark": "gold_incremental", "at": datetime.now(UTC).isoformat(),
        "scale": scale, "silver_rows_base": base_rows, "silver_rows_after_increment":
        {t: total_rows[t] for t in total_rows},
        "new_rows": {t: total_rows[t] - base_rows[t] for t in total_rows},
        "generate_seconds": round(gen_s, 1), "full_seconds": round(full_s, 1),
        "incremental_seconds": round(incr_s, 1), "ratio": round(ratio, 4),
        "target_ratio": 0.10, "one_record_seconds": round(one_s, 1),
        "one_record_ratio": round(one_s / full_s, 4),
        "jobs": {n: {"full": full[n], "incremental": incr[n], "one_record": one[n]}
                 for n in full},
        "machine_start": machine_start, "machine_end": _machine(),
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2))

    print()
    print(f"{'job':<26}{'full s':>9}{'incr s':>9}{'ratio':>8}{'1 rec s':>9}"
          "  incremental mode")
    for n in full:
        f, i, o = full[n]["seconds"], incr[n]["seconds"], one[n]["seconds"]
        print(f"{n:<26}{f:>9.1f}{i:>9.1f}{i / f if f else 0:>8.2f}{o:>9.1f}"
              f"  {incr[n]['mode']}")
    print(f"{'all gold jobs':<26}{full_s:>9.1f}{incr_s:>9.1f}{ratio:>8.2f}{one_s:>9.1f}")
    print(f"\nsilver: {base_rows['vehicle_telemetry']:,} telemetry and "
          f"{base_rows['station_results']:,} station rows, then "
          f"+{result['new_rows']['vehicle_telemetry']:,} / "
          f"+{result['new_rows']['station_results']:,}")
    print(f"incremental / full = {ratio:.1%} (target < 10%); after one new record: "
          f"{one_s / full_s:.1%} (the part that does not shrink with the increment); "
          f"load average "
          f"{machine_start['load_average'][0]:.2f} at start, "
          f"{result['machine_end']['load_average'][0]:.2f} at end on "
          f"{machine_start['cores']} cores; results in {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
