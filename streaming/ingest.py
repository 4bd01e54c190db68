"""`redline ingest`: Kafka -> bronze -> silver (+ quarantine), per topic, as streams.

Continuous mode runs a bronze query and a silver query per topic until ``stop`` is set (the
CLI sets it on SIGTERM/SIGINT) or a query fails; a silver query starts as soon as its
bronze table exists. ``available_now`` drains Kafka into bronze, then bronze into silver,
and returns. Either way every query is stopped and its checkpoint lock released on exit.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from redline import catalog, lake
from redline.config import Config
from redline.streaming import bronze, offsets, silver
from redline.streaming.guards import explain_failure
from redline.streaming.kafka_options import explain_login_failure

if TYPE_CHECKING:
    from pyspark.sql import SparkSession


def status_line(bronze_rows: dict[str, int], stats: dict[str, silver.BatchStats],
                elapsed_s: float, lags: dict[str, int | None] | None = None) -> str:
    """One line: uptime, rows/s into silver, and per topic bronze/silver/quarantine rows
    and the Kafka lag (``kafka_lag``; ``?`` before the topic's first trigger)."""
    rows = sum(s.rows for s in stats.values())
    h, rem = divmod(int(elapsed_s), 3600)

    def lag(t: str) -> str:
        if lags is None:
            return ""
        return f" lag={lags[t]:,}" if lags.get(t) is not None else " lag=?"

    return (f"ingest {h:d}:{rem // 60:02d}:{rem % 60:02d} "
            f"{rows / elapsed_s if elapsed_s > 0 else 0:,.0f} rows/s | " + " | ".join(
                f"{t} b={n:,} s={stats[t].silver if t in stats else 0:,} "
                f"q={stats[t].quarantined if t in stats else 0:,}{lag(t)}"
                for t, n in bronze_rows.items()))


def _offsets(value) -> dict[tuple[str, str], int] | None:
    """A Kafka source's offsets as Structured Streaming reports them (a JSON string in
    Spark 4, ``{topic: {partition: offset}}``), by (topic, partition)."""
    doc = json.loads(value) if isinstance(value, str) else value
    if not isinstance(doc, dict):
        return None
    return {(t, p): int(o) for t, parts in doc.items() for p, o in parts.items()}


def kafka_lag(progress) -> int | None:
    """Records Kafka held that the query had not read at its last trigger: over every
    partition, the source's latest offset minus its end offset. None before a trigger.
    (An idle query reports a trigger every 10 s, so the figure stays current.)"""
    if progress is None:
        return None
    total = 0
    try:
        for source in progress["sources"]:
            latest, end = _offsets(source["latestOffset"]), _offsets(source["endOffset"])
            if latest is None or end is None:
                return None
            total += sum(max(0, offset - end.get(k, 0)) for k, offset in latest.items())
    except (KeyError, TypeError, ValueError, AttributeError):
        return None  # a progress of another shape: the status line says "?", ingest goes on
    return total


def run(spark: SparkSession, cfg: Config, lake_root: str, topics: Sequence[str],
        available_now: bool = True, progress: Callable[[str], None] = print,
        stop: threading.Event | None = None, poll_seconds: float = 1.0) -> dict[str, dict]:
    """Run ingest for ``topics``; returns per topic the rows this run put in each layer."""
    catalog.require_topics(topics)  # before any query, lock or checkpoint folder exists
    if available_now:
        rows = bronze.land(spark, cfg, lake_root, topics, available_now=True,
                             progress=progress)
        out = {}
        for t in topics:
            out[t] = {"bronze": rows.get(t, 0)}
            if catalog.exists(spark, lake_root, catalog.bronze(t)):
                stats = silver.drain(spark, lake_root, t, cfg.ingest, totals=False)
                out[t].update({k: stats[k] for k in ("silver", "quarantined", "duplicates")})
        return out

    stop = stop or threading.Event()
    began = time.monotonic()
    bronzes: dict[str, bronze.BronzeQuery] = {}
    silvers: dict[str, silver.SilverQuery] = {}
    bronze_rows = {t: 0 for t in topics}
    seen: dict[str, set] = {t: set() for t in topics}
    # The tables every topic's silver query appends to exist before the queries start:
    # two first appends to a missing table race (DELTA_PROTOCOL_CHANGED), and the query
    # that loses the race stops.
    for shared in (catalog.SILVER_BATCHES, catalog.QUARANTINE):
        if not catalog.exists(spark, lake_root, shared):
            lake.append(spark.createDataFrame([], shared.schema()), lake_root, shared)
    try:
        for t in topics:
            bronzes[t] = bronze.start(spark, cfg, lake_root, t, available_now=False)
        while not stop.is_set():
            for t, b in bronzes.items():
                if b.query.exception() is not None:
                    raise explain_failure(offsets.explain(explain_login_failure(
                        cfg, b.query.exception(), "ingest"), t), f"bronze_{t}", lake_root)
                for p in b.query.recentProgress:
                    if p["batchId"] not in seen[t]:
                        seen[t].add(p["batchId"])
                        bronze_rows[t] += int(p.get("numInputRows", 0))
                if t not in silvers and catalog.exists(spark, lake_root, catalog.bronze(t)):
                    silvers[t] = silver.start(
                        spark, lake_root, t, available_now=False,
                        trigger_seconds=cfg.ingest.silver_trigger_seconds,
                        max_record_bytes=cfg.ingest.max_record_bytes,
                        late_after_minutes=cfg.ingest.late_after_minutes)
            for t, s in silvers.items():
                if s.query.exception() is not None:
                    raise explain_failure(s.query.exception(), silver.query_name(t),
                                          lake_root)
            progress(status_line(bronze_rows, {t: s.stats for t, s in silvers.items()},
                                 time.monotonic() - began,
                                 {t: kafka_lag(b.query.lastProgress) for t, b in bronzes.items()}))
            stop.wait(poll_seconds)
    finally:
        for q in [*silvers.values(), *bronzes.values()]:
            q.stop()
    return {t: {"bronze": bronze_rows[t],
                **({k: v for k, v in silvers[t].stats.as_dict().items()
                    if k in ("silver", "quarantined", "duplicates")} if t in silvers else {})}
            for t in topics}
