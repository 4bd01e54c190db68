"""Kafka -> bronze Delta: the raw record and its coordinates, append-only, checkpointed.

One streaming query per topic; exactly-once comes from the Delta sink plus the query's
checkpoint. ``failOnDataLoss`` stays on: offsets that vanished (retention passed, topic
recreated) stop the query loudly instead of skipping data.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from redline import catalog
from redline.config import Config
from redline.streaming import offsets
from redline.streaming.guards import (
    CheckpointLock,
    LockedQuery,
    explain_failure,
    repair_commit_log,
    require_checkpoint_for,
)
from redline.streaming.kafka_options import explain_login_failure, spark_options, topic_name

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession
    from pyspark.sql.streaming import StreamingQuery


def to_bronze(kafka_records: DataFrame) -> DataFrame:
    """Kafka source rows -> the bronze schema (pure: works on a batch or a stream)."""
    from pyspark.sql import functions as F

    return kafka_records.select(
        F.col("key"), F.col("value"), F.col("topic"), F.col("partition"), F.col("offset"),
        F.col("timestamp").alias("kafka_timestamp"),
        F.current_timestamp().alias("ingest_time"))


def checkpoint(lake_root: str, topic: str) -> str:
    return catalog.checkpoint(lake_root, f"bronze/{topic}")


class BronzeQuery(LockedQuery):
    """A running bronze query and the checkpoint lock it holds until ``stop``."""


def bronze_record(spark: SparkSession, lake_root: str, topic: str
                  ) -> Callable[[int, int], offsets.Record | None]:
    """(partition, offset) -> (Kafka timestamp ms, value) of that record in bronze."""
    from pyspark.sql import functions as F

    def at(partition: int, offset: int) -> offsets.Record | None:
        table = catalog.bronze(topic)
        if not catalog.exists(spark, lake_root, table):
            return None
        row = (catalog.read(spark, lake_root, table)
               .where((F.col("partition") == partition) & (F.col("offset") == offset))
               .select(F.unix_millis("kafka_timestamp").alias("ms"), "value").first())
        if row is None:
            return None
        return int(row.ms), (bytes(row.value) if row.value is not None else None)

    return at


def start(spark: SparkSession, cfg: Config, lake_root: str, topic: str,
          available_now: bool) -> BronzeQuery:
    """Start the bronze query of ``topic`` under its checkpoint lock and guards."""
    ckpt = checkpoint(lake_root, topic)
    lock = CheckpointLock(ckpt, f"bronze_{topic}").acquire()
    try:
        require_checkpoint_for(spark, ckpt, lake_root, catalog.bronze(topic), f"bronze_{topic}")
        repair_commit_log(ckpt, f"bronze_{topic}")
        offsets.require_no_gap(cfg, ckpt, topic_name(cfg, topic),
                               bronze_record(spark, lake_root, topic))
        query = start_bronze_query(spark, cfg, lake_root, topic, available_now)
    except BaseException:
        lock.release()
        raise
    return BronzeQuery(topic, query, lock)


def kafka_source(spark: SparkSession, cfg: Config, topic: str,
                 max_offsets: int | None = None) -> DataFrame:
    """The Kafka stream that bronze reads (also used by the benchmark's other sinks)."""
    reader = spark.readStream.format("kafka")
    for key, value in spark_options(cfg, user="ingest").items():
        reader = reader.option(key, value)
    return (reader.option("subscribe", topic_name(cfg, topic))
            .option("startingOffsets", "earliest")
            .option("failOnDataLoss", "true")
            .option("maxOffsetsPerTrigger", max_offsets or cfg.ingest.max_offsets_per_trigger)
            .load())


def start_bronze_query(spark: SparkSession, cfg: Config, lake_root: str, topic: str,
                       available_now: bool, max_offsets: int | None = None
                       ) -> StreamingQuery:
    """The bare query; callers go through ``start`` (lock and checkpoint guards)."""
    table = catalog.bronze(topic)
    source = kafka_source(spark, cfg, topic, max_offsets)
    writer = (to_bronze(source).writeStream.format("delta")
              .queryName(f"bronze_{topic}")
              .outputMode("append")
              .option("checkpointLocation", checkpoint(lake_root, topic)))
    writer = (writer.trigger(availableNow=True) if available_now
              else writer.trigger(processingTime=f"{cfg.ingest.bronze_trigger_seconds} seconds"))
    return writer.start(catalog.location(lake_root, table))


def land(spark: SparkSession, cfg: Config, lake_root: str, topics: Sequence[str],
         available_now: bool = True, progress: Callable[[str], None] = print) -> dict[str, int]:
    """Land the Kafka records of ``topics`` in bronze; with ``available_now`` return when
    caught up.

    Returns rows written per topic in this run.
    """
    running: dict[str, BronzeQuery] = {}
    try:
        for t in topics:
            running[t] = start(spark, cfg, lake_root, t, available_now)
    except BaseException:
        for r in running.values():
            r.stop()
        raise
    queries = {t: r.query for t, r in running.items()}
    rows = {t: 0 for t in topics}
    seen: dict[str, set] = {t: set() for t in topics}
    try:
        while True:
            active = [t for t, q in queries.items() if q.isActive]
            for t, q in queries.items():
                for p in q.recentProgress:
                    if p["batchId"] not in seen[t]:
                        seen[t].add(p["batchId"])
                        rows[t] += int(p.get("numInputRows", 0))
                if q.exception() is not None:
                    raise explain_failure(offsets.explain(explain_login_failure(
                        cfg, q.exception(), "ingest"), t), f"bronze_{t}", lake_root)
            progress("bronze: " + ", ".join(f"{t}={n:,}" for t, n in rows.items())
                     + ("" if available_now else f" ({len(active)} queries running)"))
            if not active:
                break
            time.sleep(2.0)
    finally:
        for r in running.values():
            r.stop()
    for t, q in queries.items():
        for p in q.recentProgress:
            if p["batchId"] not in seen[t]:
                seen[t].add(p["batchId"])
                rows[t] += int(p.get("numInputRows", 0))
    return rows
