"""Incremental floor: the least an incremental run of every gold job can cost here.

An incremental run of the gold jobs does, whatever the size of the increment, at least
this per job: find its watermark in ops.job_runs, read the change data feed of an input,
write each of its output tables (one Delta commit each, replacing the affected keys) and
record the run (an append to ops.job_runs). This script times each of those steps with
the project's own functions (``incremental.watermarks``, ``incremental._changes``,
``lake.replace_where``, ``lake.replace_keys``, the run record ``runs.recorded``) on a small
gold table (first-pass yield, 1,080 rows) changing one key per write, ``--repeat``
times each, and adds them up for the gold jobs of the runner (their count and their
output tables, from ``jobs/runner.py``), with the cheaper of the two writes:

    floor = outputs x write + jobs x (watermark + change feed + run record)

Compared with 10% of the full rebuild measured by ``gold_incremental.py`` (its JSON,
``--rebuild-json``): a floor above that budget means no incremental design that keeps
one Delta table per gold output and records its runs reaches the 10% target on this
machine at that scale. Figures go to ``benchmarks/results/incremental_floor.json``.

    .venv/bin/python benchmarks/incremental_floor.py [--repeat 7]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
KEY = ("plant", "line", "station", "day")


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--repeat", type=int, default=7,
                   help="timed repetitions of each step, after one warm-up (default 7)")
    p.add_argument("--rebuild-json",
                   default=str(ROOT / "benchmarks/results/gold_incremental.json"),
                   help="gold_incremental.py results holding the full rebuild time")
    p.add_argument("--out", default=str(ROOT / "benchmarks/results/incremental_floor.json"),
                   help="JSON results file")
    args = p.parse_args(argv)
    if args.repeat < 1:
        p.error("--repeat must be at least 1")
    return args


def _machine() -> dict:
    return {"cores": os.cpu_count(), "load_average": list(os.getloadavg()),
            "platform": platform.platform(), "python": sys.version.split()[0]}


def _shown(path: Path) -> str:
    """``path`` relative to the repository when it is inside it (results stay portable)."""
    try:
        return str(path.resolve().relative_to(ROOT))
    except ValueError:
        return str(path)


def _fpy_rows(days: int = 90) -> list[tuple]:
    start = date(2026, 1, 5)
    return [(start + timedelta(d), plant, line, station, 100, 95, 0.95)
            for d in range(days)
            for plant, line in (("PLT-A", "L1"), ("PLT-A", "L2"), ("PLT-B", "L1"))
            for station in ("S010", "S020", "S030", "S040")]


def _timed(step, repeat: int) -> dict:
    """Seconds of ``step(i)`` for i = 0 (warm-up, not counted), 1..repeat."""
    step(0)
    seconds = []
    for i in range(1, repeat + 1):
        began = time.monotonic()
        step(i)
        seconds.append(time.monotonic() - began)
    return {"median": round(statistics.median(seconds), 3), "min": round(min(seconds), 3),
            "max": round(max(seconds), 3)}


def measure(spark, lake_root: str, repeat: int) -> dict[str, dict]:
    from pyspark.sql import functions as F

    from redline import catalog, lake, runs
    from redline.jobs import incremental

    table = catalog.FIRST_PASS_YIELD
    schema = table.schema()
    lake.overwrite(spark.createDataFrame(_fpy_rows(), schema), lake_root, table)
    lake.enable_change_data_feed(spark, lake_root, table)

    def one_key(i: int):
        """The row of one (plant, line, station, day) key, with a new count."""
        day = date(2026, 1, 5) + timedelta(i % 90)
        return spark.createDataFrame([(day, "PLT-A", "L1", "S010", 100 + i, 90, 0.9)],
                                     schema), day

    def write_replace_where(i: int) -> None:
        df, day = one_key(i)
        lake.replace_where(df, lake_root, table,
                           f"plant = 'PLT-A' AND line = 'L1' AND station = 'S010' "
                           f"AND day = DATE'{day.isoformat()}'")

    def write_replace_keys(i: int) -> None:
        df, _ = one_key(i)
        lake.replace_keys(df, lake_root, table, df.select(*KEY), KEY)

    def change_feed(i: int) -> None:
        v = lake.table_version(spark, lake_root, table)
        incremental._changes(spark, lake_root, table, v - 1, v).count()

    def record(i: int) -> None:
        runs.recorded(spark, lake_root, "bench_noop", "bench", (), (), lambda: {"rows": 0})

    def watermark(i: int) -> None:
        incremental.watermarks(spark, lake_root, "gold_first_pass_yield")

    steps = {"write: replace_where (one key)": write_replace_where,
             "write: replace_keys, a MERGE (one key)": write_replace_keys,
             "change feed: read one commit": change_feed,
             "run record: ops.job_runs append": record,
             "watermark: ops.job_runs query": watermark}
    out = {}
    for label, step in steps.items():
        out[label] = _timed(step, repeat)
        print(f"  {label:<42} median {out[label]['median']:.3f}s "
              f"(min {out[label]['min']:.3f}, max {out[label]['max']:.3f})", flush=True)
    rows = catalog.read(spark, lake_root, table).where(F.col("station") == "S010").count()
    assert rows == 270, f"one key per write should keep 270 S010 rows, found {rows}"
    return out


def main(argv=None) -> int:
    args = parse_args(argv)
    machine_start = _machine()
    lake_root = tempfile.mkdtemp(prefix="redline-floor-", dir="/tmp")
    os.environ.setdefault("REDLINE_HOME", lake_root + "-home")

    from redline.config import load
    from redline.jobs.runner import JOBS
    from redline.spark import build_session

    gold = list(JOBS)
    outputs = sum(len(j.outputs) for j in JOBS.values())
    spark = build_session(load("local"), app_name="redline-bench-incremental-floor")
    spark.sparkContext.setLogLevel("ERROR")
    print(f"timing each step {args.repeat} times (after a warm-up) in {lake_root} ...",
          flush=True)
    try:
        steps = measure(spark, lake_root, args.repeat)
    finally:
        spark.stop()
        shutil.rmtree(lake_root, ignore_errors=True)
        shutil.rmtree(lake_root + "-home", ignore_errors=True)

    write = min(steps["write: replace_where (one key)"]["median"],
                steps["write: replace_keys, a MERGE (one key)"]["median"])
    per_job = sum(steps[s]["median"] for s in ("change feed: read one commit",
                                                "run record: ops.job_runs append",
                                                "watermark: ops.job_runs query"))
    floor = outputs * write + len(gold) * per_job
    result = {"benchmark": "incremental_floor", "at": datetime.now(UTC).isoformat(),
              "repeat": args.repeat, "steps_seconds": steps, "gold_jobs": len(gold),
              "gold_outputs": outputs, "write_seconds": write,
              "per_job_seconds": round(per_job, 3), "floor_seconds": round(floor, 1),
              "machine_start": machine_start, "machine_end": _machine()}
    rebuild = Path(args.rebuild_json)
    if rebuild.exists():
        full = json.loads(rebuild.read_text())["full_seconds"]
        result.update(rebuild_seconds=full, rebuild_from=_shown(rebuild),
                      budget_seconds=round(0.1 * full, 1),
                      floor_share_of_rebuild=round(floor / full, 4))
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2))

    print(f"\n{len(gold)} gold jobs, {outputs} output tables: floor = {outputs} x "
          f"{write:.2f}s + {len(gold)} x {per_job:.2f}s = {floor:.1f}s")
    if "budget_seconds" in result:
        print(f"full rebuild {result['rebuild_seconds']:.1f}s ({rebuild.name}): the 10% "
              f"budget is {result['budget_seconds']:.1f}s; the floor is "
              f"{result['floor_share_of_rebuild']:.1%} of the rebuild")
    else:
        print(f"no {rebuild} to compare with: run benchmarks/gold_incremental.py first")
    print(f"load average {machine_start['load_average'][0]:.2f} at start, "
          f"{result['machine_end']['load_average'][0]:.2f} at end on "
          f"{machine_start['cores']} cores; results in {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
