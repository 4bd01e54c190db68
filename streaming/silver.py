"""Bronze -> silver as a stream: one query per topic, silver + quarantine from one foreachBatch.

Exactly-once, and why it holds across crashes
---------------------------------------------
Structured Streaming replays a micro-batch whose commit did not reach the checkpoint (the
process died after writing, before committing). Each batch therefore writes in a way that
a replay cannot double:

1. Both appends (silver rows, quarantine rows) carry Delta's idempotent-write options
   ``txnAppId`` = ``redline.silver.<topic>.<query id>`` and ``txnVersion`` = the batch id.
   Delta records the pair in the table's log in the same commit as the data and skips a
   write whose version it has already seen for that app id, so a replayed batch is a
   no-op on each table even if the crash fell between the two appends. The query id lives
   in the checkpoint, so it is stable across restarts and new for a new checkpoint (a
   fresh checkpoint never has its batches 0..n skipped as "already written" by another
   query's history).
2. ``event_id`` is deduplicated within the batch (first delivery wins, by Kafka
   coordinates) and against silver itself with a left-anti join on ``event_id`` before the
   append. That covers a producer retry that reached Kafka twice, a batch rebuilt by the
   batch job, and a quarantine replay, none of which a txn version can see. A MERGE would
   do the same insert-if-absent, but MERGE does not honour ``txnAppId``/``txnVersion``;
   append + anti-join keeps both guarantees. The anti-join reads silver as of the batch
   start, which is correct because silver has one writer at a time (the checkpoint lock;
   `redline quarantine replay` takes the same lock).

Every bronze row of a batch ends in exactly one place: silver, quarantine, or counted as a
duplicate of an ``event_id`` already in silver.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from redline import catalog, lake
from redline.errors import RedlineError
from redline.jobs.silver import classify, dedupe, split
from redline.schemas.payloads import latest
from redline.streaming.guards import CheckpointLock, require_checkpoint_for

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession
    from pyspark.sql.streaming import StreamingQuery


def query_name(topic: str) -> str:
    return f"silver_{topic}"


def checkpoint(lake_root: str, topic: str) -> str:
    return catalog.checkpoint(lake_root, f"silver/{topic}")


@dataclass
class BatchStats:
    """Running totals of one silver query in this process."""

    batches: int = 0
    rows: int = 0
    silver: int = 0
    quarantined: int = 0
    duplicates: int = 0
    last_batch_id: int = -1
    last_batch_at: float = 0.0
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def as_dict(self) -> dict[str, int]:
        return {"batches": self.batches, "rows": self.rows, "silver": self.silver,
                "quarantined": self.quarantined, "duplicates": self.duplicates}


def new_events(good: "DataFrame", silver_path: str | None) -> "DataFrame":
    """``good`` without event ids seen twice in it or already in the silver table."""
    out = dedupe(good)
    if silver_path is not None:
        spark = good.sparkSession
        existing = spark.read.format("delta").load(silver_path).select("event_id")
        out = out.join(existing, "event_id", "left_anti")
    return out


def write_batch(batch: "DataFrame", batch_id: int, lake_root: str, topic: str, app_id: str,
                stats: BatchStats | None = None) -> dict[str, int]:
    """Parse one micro-batch of bronze rows and append silver + quarantine idempotently."""
    from delta.tables import DeltaTable

    source = catalog.bronze(topic)
    target = catalog.silver(topic)
    quarantine = catalog.get("silver.quarantine")
    spark = batch.sparkSession
    # Persisted once parsed: each row's JSON is parsed once, not once per check (see
    # ``classify``); the map form and the raw bytes are not needed after classification.
    batch = classify(batch, latest(topic)).drop("_m", "key", "value").persist()
    try:
        good, bad = split(batch, latest(topic), source.qualified_name)
        silver_path = catalog.location(lake_root, target)
        fresh = new_events(good, silver_path if DeltaTable.isDeltaTable(spark, silver_path)
                           else None).persist()
        bad = bad.persist()
        counts = {"rows": batch.count(), "silver": fresh.count(), "quarantined": bad.count()}
        counts["duplicates"] = counts["rows"] - counts["silver"] - counts["quarantined"]
        # Silver first, then quarantine; each skipped by Delta if this batch id already
        # committed to it (a replay after a crash between or after the two writes).
        lake.append(fresh, lake_root, target, txn=(app_id, batch_id))
        lake.append(bad, lake_root, quarantine, txn=(app_id, batch_id))
        fresh.unpersist()
        bad.unpersist()
    finally:
        batch.unpersist()
    if stats is not None:
        with stats.lock:
            stats.batches += 1
            stats.rows += counts["rows"]
            stats.silver += counts["silver"]
            stats.quarantined += counts["quarantined"]
            stats.duplicates += counts["duplicates"]
            stats.last_batch_id = batch_id
            stats.last_batch_at = time.time()
    return counts


@dataclass
class SilverQuery:
    """A running silver query with the checkpoint lock it holds and its batch totals."""

    topic: str
    query: "StreamingQuery"
    lock: CheckpointLock
    stats: BatchStats

    def stop(self) -> None:
        try:
            if self.query.isActive:
                self.query.stop()
        finally:
            self.lock.release()


def start(spark: "SparkSession", lake_root: str, topic: str, available_now: bool,
          trigger_seconds: float = 2.0) -> SilverQuery:
    """Start the silver stream of ``topic`` (bronze must exist); refuses a shared checkpoint."""
    source = catalog.bronze(topic)
    if not catalog.exists(spark, lake_root, source):
        raise RedlineError(
            "TABLE_EMPTY",
            f"{source.qualified_name} has no data yet at {catalog.location(lake_root, source)}; "
            f"run `redline ingest` first")
    ckpt = checkpoint(lake_root, topic)
    name = query_name(topic)
    lock = CheckpointLock(ckpt, name).acquire()
    try:
        require_checkpoint_for(spark, ckpt, lake_root, catalog.silver(topic), name)
        stats = BatchStats()
        started = threading.Event()
        ident: dict[str, str] = {}

        def each_batch(batch: "DataFrame", batch_id: int) -> None:
            if not started.wait(120):
                raise RedlineError("SILVER_START", f"query {name} did not report its id")
            write_batch(batch, batch_id, lake_root, topic,
                        f"redline.silver.{topic}.{ident['id']}", stats)

        writer = (spark.readStream.format("delta")
                  .load(catalog.location(lake_root, source))
                  .writeStream.queryName(name)
                  .option("checkpointLocation", ckpt)
                  .foreachBatch(each_batch))
        writer = (writer.trigger(availableNow=True) if available_now
                  else writer.trigger(processingTime=f"{trigger_seconds} seconds"))
        query = writer.start()
        ident["id"] = str(query.id)
        started.set()
    except BaseException:
        lock.release()
        raise
    return SilverQuery(topic, query, lock, stats)


def run_available_now(spark: "SparkSession", lake_root: str, topic: str,
                      totals: bool = True) -> dict[str, int]:
    """Process everything new in bronze.<topic> into silver and quarantine, then stop.

    Returns this run's batch totals, plus (``totals``) the table counts afterwards.
    """
    from pyspark.sql import functions as F

    running = start(spark, lake_root, topic, available_now=True)
    try:
        running.query.awaitTermination()
        if running.query.exception() is not None:
            raise running.query.exception()
    finally:
        running.stop()
    source = catalog.bronze(topic)
    out = running.stats.as_dict()
    if not totals:
        return out
    out["silver_total"] = catalog.read(spark, lake_root, catalog.silver(topic)).count() \
        if catalog.exists(spark, lake_root, catalog.silver(topic)) else 0
    quarantine = catalog.get("silver.quarantine")
    out["quarantine_total"] = (
        catalog.read(spark, lake_root, quarantine)
        .where(F.col("source_table") == source.qualified_name).count()
        if catalog.exists(spark, lake_root, quarantine) else 0)
    return out
