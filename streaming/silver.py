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
   append. A re-sent record carries the event time of its first copy, so only the silver
   rows within the event-time spans of the batch's own records are compared, however long
   ago the first copy arrived: a producer retry, a data set replayed again, a gateway
   re-uploading last week's buffer, a stream rebuilt from bronze. Each batch writes its
   on-time records and its late ones (by event day) to separate files
   (``streaming/event_spans.py``), so Delta's ``event_time`` statistics keep that read to
   the files of those spans, not to all of silver. A MERGE would do the same
   insert-if-absent, but MERGE does not honour ``txnAppId``/``txnVersion``; append +
   anti-join keeps both guarantees. The anti-join reads silver as of the batch start, which
   is correct because silver has one writer at a time (the checkpoint lock; `redline
   quarantine replay` takes the same lock).

Every bronze row of a batch ends in exactly one place: silver, quarantine, or counted as a
duplicate of an ``event_id`` already in silver.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from redline import catalog, lake
from redline.config import IngestConfig
from redline.errors import RedlineError
from redline.quality import row_rules
from redline.quality.row_rules import Rule
from redline.schemas.payloads import latest
from redline.streaming import event_spans
from redline.streaming.guards import (
    CheckpointLock,
    LockedQuery,
    explain_failure,
    repair_commit_log,
    require_checkpoint_for,
)
from redline.streaming.parse import MAX_RECORD_BYTES, annotate, classify, dedupe

#: Records more than this many minutes older than their batch's earliest Kafka arrival are
#: late (``ingest.late_after_minutes``): written apart from the on-time ones, by event day.
LATE_AFTER_MINUTES = IngestConfig.late_after_minutes

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
    warned: int = 0
    last_batch_id: int = -1
    last_batch_at: float = 0.0
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, batch_id: int, counts: dict[str, int]) -> None:
        with self.lock:
            self.batches += 1
            for key in ("rows", "silver", "quarantined", "duplicates", "warned"):
                setattr(self, key, getattr(self, key) + counts[key])
            self.last_batch_id = batch_id
            self.last_batch_at = time.time()

    def as_dict(self) -> dict[str, int]:
        return {"batches": self.batches, "rows": self.rows, "silver": self.silver,
                "quarantined": self.quarantined, "duplicates": self.duplicates,
                "warned": self.warned}


def new_events(good: DataFrame, silver_path: str | None,
               found: Sequence[event_spans.Span] | None = None,
               rows: int | None = None) -> tuple[DataFrame, bool]:
    """``good`` without event ids seen twice in it or already in the silver table.

    A re-sent record carries its first copy's event time, so silver is read only within
    the event-time spans of ``good`` (``found``; one span from its min to its max when not
    given), however long ago the first copy arrived; Delta skips the files outside them
    (``event_spans``). ``rows``: the size of ``good`` when known, which picks how repeats
    are looked for. Returns the rows and whether any was removed. The usual batch repeats
    nothing: that is found from the event ids alone, and then ``good`` itself is returned,
    with no join or sort of the batch's full rows.
    """
    existing = None
    if silver_path is not None:
        if found is None:
            found = event_spans.spans(good, None)
        within = event_spans.covering(found)
        if within is not None:
            existing = (good.sparkSession.read.format("delta").load(silver_path)
                        .where(within).select("event_id"))
    if not _repeats_anything(good, existing, rows):
        return good, False
    out = dedupe(good)
    if existing is not None:
        out = out.join(existing, "event_id", "left_anti")
    return out, True


#: A batch of at most this many parsed rows checks its event ids on the driver and
#: broadcasts them to the silver scan: two small jobs instead of two shuffles (a
#: micro-batch at a steady rate is this small).
DRIVER_CHECK_ROWS = 50_000


def _repeats_anything(good: DataFrame, existing: DataFrame | None, rows: int | None
                      ) -> bool:
    """Whether an event id of ``good`` may be there twice or already in ``existing``:
    False proves that none is; True sends the batch to the exact dedupe."""
    from pyspark.sql import functions as F

    ids = good.select("event_id")
    if rows is not None and rows <= DRIVER_CHECK_ROWS:
        seen = [r[0] for r in ids.collect()]
        if len(set(seen)) < len(seen):
            return True
        return bool(seen) and existing is not None and \
            existing.join(F.broadcast(ids), "event_id", "left_semi").limit(1).count() > 0
    # Equal ids have equal 64-bit hashes, so hashes that never repeat prove that the ids
    # never repeat, and shuffling 8-byte hashes costs less than the ids (2M ids: 1.0 s
    # against 1.5 s). A collision (about 1 in 10 million for 2M ids) only sends the batch
    # down the exact path, which finds that nothing repeats.
    hashed = F.xxhash64("event_id").alias("_h")
    hashes = good.select(hashed)
    repeats = hashes.groupBy("_h").count().where(F.col("count") > 1).select("_h")
    if existing is not None:
        repeats = repeats.unionByName(existing.select(hashed).join(hashes, "_h", "left_semi"))
    return repeats.count() > 0  # one job (take(1) may run several)


def _refuse(flagged: DataFrame, failed: Sequence[Rule], violations: dict[str, int],
            topic: str, batch_id: int) -> RedlineError:
    rule = failed[0]
    sample = flagged.where(~rule.holds()).select(
        "kafka_partition", "kafka_offset", "event_id").first()
    return RedlineError(
        "ROW_RULE_FAILED",
        f"row rule {rule.name} ({rule.description}; action fail) is violated by "
        f"{violations[rule.name]:,} record(s) of silver.{topic} batch {batch_id}, e.g. "
        f"event_id {sample.event_id} at Kafka partition {sample.kafka_partition} offset "
        f"{sample.kafka_offset}. Nothing of this batch was written and the stream stopped; "
        f"fix the data or the rule (quality/row_rules.py) and restart: the batch is retried")


def write_batch(batch: DataFrame, batch_id: int, lake_root: str, topic: str, app_id: str,
                stats: BatchStats | None = None, rules: Sequence[Rule] | None = None,
                max_record_bytes: int = MAX_RECORD_BYTES,
                late_after_minutes: float = LATE_AFTER_MINUTES) -> dict[str, int]:
    """Parse one micro-batch of bronze rows, apply row rules, append idempotently.

    Writes, each skipped by Delta when this ``(app_id, batch_id)`` already committed to
    that table: the batch's ``ops.silver_batches`` row first (so a replay never records
    a second, different account of the same batch), then silver, then quarantine. Empty
    writes are skipped: a replay recomputes the same empty result. Silver's new rows are
    written one file set per event-time span (``event_spans``): records more than
    ``late_after_minutes`` older than the batch's first arrival apart, by event day.
    """
    from delta.tables import DeltaTable
    from pyspark.sql import functions as F

    started = datetime.now(UTC).replace(tzinfo=None)
    source = catalog.bronze(topic)
    target = catalog.silver(topic)
    quarantine = catalog.QUARANTINE
    rules = row_rules.rules_for(topic) if rules is None else rules
    spark = batch.sparkSession
    # Parsed once and kept: every count and write below reads this, not the JSON again.
    batch = annotate(batch, latest(topic), max_record_bytes).persist()
    try:
        good, bad, flagged = classify(batch, topic, source.qualified_name, rules)
        violations, dropped, _ = row_rules.tally(flagged, rules)
        failed = row_rules.failures(violations, rules)
        if failed:
            raise _refuse(flagged, failed, violations, topic, batch_id)
        seen = batch.agg(
            F.count(F.lit(1)).alias("n"), F.count("_code").alias("unparsed"),
            F.min("kafka_timestamp").alias("lo"), F.max("kafka_timestamp").alias("hi"),
        ).first()
        silver_path = catalog.location(lake_root, target)
        # The event-time spans of the rows that stay (a year-3000 record is quarantined
        # before it could widen them): what the event-id check reads of silver, and how
        # the new rows are cut into files.
        late = event_spans.late_before(seen.lo, late_after_minutes)
        found = event_spans.spans(good, late)
        fresh, deduped = new_events(
            good, silver_path if DeltaTable.isDeltaTable(spark, silver_path) else None,
            found, int(seen.n) - int(seen.unparsed) - dropped)
        quarantined = int(seen.unparsed) + dropped
        kept = int(seen.n) - quarantined
        if deduped:
            fresh = fresh.persist()
        counts = {"rows": int(seen.n), "silver": fresh.count() if deduped else kept,
                  "quarantined": quarantined,
                  "warned": sum(violations[r.name] for r in rules if r.action == "warn")}
        counts["duplicates"] = counts["rows"] - counts["silver"] - counts["quarantined"]
        metrics = spark.createDataFrame([(
            topic, app_id, batch_id, started, datetime.now(UTC).replace(tzinfo=None),
            counts["rows"], counts["silver"], counts["quarantined"], counts["duplicates"],
            seen.lo, seen.hi,
            [(r.name, r.action, violations[r.name]) for r in rules])],
            catalog.SILVER_BATCHES.schema())
        lake.append(metrics, lake_root, catalog.SILVER_BATCHES,
                    txn=(app_id, batch_id))
        if counts["silver"]:
            # A new optional field of a newer payload version adds its column here.
            lake.append(event_spans.one_file_set_per_span(fresh, found, late), lake_root,
                        target, txn=(app_id, batch_id), merge_schema=True)
        if counts["quarantined"]:
            lake.append(bad, lake_root, quarantine, txn=(app_id, batch_id))
        if deduped:
            fresh.unpersist()
    finally:
        batch.unpersist()
    if stats is not None:
        stats.add(batch_id, counts)
    return counts


#: A silver micro-batch reads about this much of bronze at most (Delta's soft limit: at
#: least one file), about 2M simulator records, so catching up on a long backlog runs in
#: batches the driver can cache instead of one.
MAX_BRONZE_BYTES_PER_BATCH = "256m"


class SilverQuery(LockedQuery):
    """A running silver query with the checkpoint lock it holds and its batch totals."""

    def __init__(self, topic: str, query: StreamingQuery, lock: CheckpointLock,
                 stats: BatchStats):
        super().__init__(topic, query, lock)
        self.stats = stats


def start(spark: SparkSession, lake_root: str, topic: str, available_now: bool,
          trigger_seconds: float = 1.0, max_record_bytes: int = MAX_RECORD_BYTES,
          late_after_minutes: float = LATE_AFTER_MINUTES) -> SilverQuery:
    """Start the silver stream of ``topic`` (bronze must exist); refuses a shared checkpoint."""
    if late_after_minutes < 0:
        raise RedlineError("CONFIG_INVALID", f"ingest.late_after_minutes is "
                           f"{late_after_minutes}; it must be 0 or more")
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
        repair_commit_log(ckpt, name)
        target = catalog.silver(topic)
        if catalog.exists(spark, lake_root, target):
            # A silver table of an older release gets the Kafka timestamp column and its
            # file statistics.
            for change in lake.align_table(spark, lake_root, target):
                print(f"silver.{topic}: {change}", flush=True)
        stats = BatchStats()
        started = threading.Event()
        ident: dict[str, str] = {}

        def each_batch(batch: DataFrame, batch_id: int) -> None:
            if not started.wait(120):
                raise RedlineError("SILVER_START", f"query {name} did not report its id")
            write_batch(batch, batch_id, lake_root, topic,
                        f"redline.silver.{topic}.{ident['id']}", stats,
                        max_record_bytes=max_record_bytes,
                        late_after_minutes=late_after_minutes)

        writer = (spark.readStream.format("delta")
                  .option("maxBytesPerTrigger", MAX_BRONZE_BYTES_PER_BATCH)
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


def drain(spark: SparkSession, lake_root: str, topic: str,
          settings: IngestConfig | None = None, totals: bool = True) -> dict[str, int]:
    """Process everything new in bronze.<topic> into silver and quarantine, then stop:
    the one way from bronze to silver on demand (`redline ingest --available-now`,
    `redline jobs run silver_<topic>`, `redline demo`), the same exactly-once stream and
    checkpoint as continuous ingest. ``settings``: the record size limit and where late
    records begin (default: the configuration's defaults).

    Returns this run's batch totals, plus (``totals``) the table counts afterwards.
    """
    from pyspark.sql import functions as F

    settings = settings or IngestConfig()

    running = start(spark, lake_root, topic, available_now=True,
                    max_record_bytes=settings.max_record_bytes,
                    late_after_minutes=settings.late_after_minutes)
    try:
        running.query.awaitTermination()
        if running.query.exception() is not None:
            raise explain_failure(running.query.exception(), query_name(topic), lake_root)
    finally:
        running.stop()
    source = catalog.bronze(topic)
    out = running.stats.as_dict()
    if not totals:
        return out
    out["silver_total"] = catalog.read(spark, lake_root, catalog.silver(topic)).count() \
        if catalog.exists(spark, lake_root, catalog.silver(topic)) else 0
    quarantine = catalog.QUARANTINE
    out["quarantine_total"] = (
        catalog.read(spark, lake_root, quarantine)
        .where(F.col("source_table") == source.qualified_name).count()
        if catalog.exists(spark, lake_root, quarantine) else 0)
    return out
