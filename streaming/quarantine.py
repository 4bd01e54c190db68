"""The quarantine table: list what was set aside, and replay it after a schema or rule fix.

A replay re-parses the ORIGINAL bytes from bronze (joined back by Kafka coordinates; the
quarantine's ``raw_value`` is a string copy that cannot hold invalid UTF-8 faithfully)
with today's schemas and row rules. Records that now parse and pass every rule are
appended to silver unless their ``event_id`` is already there, then deleted from the
quarantine; a record that still fails stays with its original reason. A crash between the two
steps is safe: the next replay finds those records again, the anti-join on ``event_id``
keeps silver free of duplicates, and the delete completes. A second replay with no new fix
finds nothing to land and changes nothing. Replay takes the silver query's checkpoint lock,
so it never runs while the silver stream of that topic is writing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from redline import catalog, lake
from redline.errors import RedlineError
from redline.quality import row_rules
from redline.schemas.payloads import PAYLOADS, latest
from redline.streaming import silver
from redline.streaming.guards import CheckpointLock
from redline.streaming.parse import annotate, classify

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

    from redline.query import Reader


def topic_of(table: str) -> str:
    """``station_results``, ``bronze.station_results`` or ``silver.station_results`` -> topic."""
    name = table.split(".", 1)[1] if table.startswith(("bronze.", "silver.")) else table
    if name not in PAYLOADS:
        raise RedlineError(
            "TABLE_UNKNOWN",
            f"--table {table!r} is not a topic or its bronze/silver table; topics: "
            f"{', '.join(sorted(PAYLOADS))}")
    return name


def list_rows(spark: SparkSession, lake_root: str, table: str | None = None,
              limit: int = 50) -> list[dict]:
    """Newest quarantined records first (optionally of one topic), as plain dicts."""
    from pyspark.sql import functions as F

    qt = catalog.QUARANTINE
    if not catalog.exists(spark, lake_root, qt):
        return []
    df = catalog.read(spark, lake_root, qt)
    if table:
        df = df.where(F.col("source_table") == catalog.bronze(topic_of(table)).qualified_name)
    df = df.orderBy(F.col("quarantined_at").desc(), "kafka_partition", "kafka_offset")
    return [r.asDict(recursive=True) for r in df.limit(limit).collect()]


def list_rows_sql(reader: Reader, table: str | None = None, limit: int = 50) -> list[dict]:
    """``list_rows`` through SQL (``redline.query``: the Thrift Server when it runs)."""
    qt = catalog.QUARANTINE
    if not reader.has(qt):
        return []
    where = ""
    if table:
        where = " WHERE source_table = " + lake.sql_literal(
            catalog.bronze(topic_of(table)).qualified_name)
    return reader.query(
        f"SELECT * FROM {qt.qualified_name}{where} "
        f"ORDER BY quarantined_at DESC, kafka_partition, kafka_offset LIMIT {int(limit)}").rows


def replay(spark: SparkSession, lake_root: str, table: str | None = None
           ) -> dict[str, dict[str, int]]:
    """Re-parse quarantined records of ``table`` (default: every topic); see module doc."""
    from pyspark.sql import functions as F

    qt = catalog.QUARANTINE
    named = topic_of(table) if table else None  # a bad name is an error, data or not
    if not catalog.exists(spark, lake_root, qt):
        return {}
    quarantined = catalog.read(spark, lake_root, qt)
    if named:
        topics = [named]
    else:
        sources = {r.source_table for r in quarantined.select("source_table").distinct().collect()}
        topics = [t for t in PAYLOADS if catalog.bronze(t).qualified_name in sources]
    return {t: _replay_topic(spark, lake_root, t, F) for t in topics}


def _replay_topic(spark: SparkSession, lake_root: str, topic: str, F) -> dict[str, int]:
    from delta.tables import DeltaTable

    source = catalog.bronze(topic)
    target = catalog.silver(topic)
    qt = catalog.QUARANTINE
    with CheckpointLock(silver.checkpoint(lake_root, topic), f"quarantine_replay_{topic}"):
        coords = (catalog.read(spark, lake_root, qt)
                  .where(F.col("source_table") == source.qualified_name)
                  .select(F.col("kafka_topic").alias("topic"),
                          F.col("kafka_partition").alias("partition"),
                          F.col("kafka_offset").alias("offset")).distinct())
        bronze = catalog.read(spark, lake_root, source).join(
            coords, ["topic", "partition", "offset"], "left_semi").persist()
        try:
            good, bad, flagged = classify(annotate(bronze, latest(topic)), topic,
                                          source.qualified_name)
            rules = row_rules.rules_for(topic)
            failed = row_rules.failures(row_rules.violation_counts(flagged, rules), rules)
            if failed:
                # A fail rule refuses these rows in the stream; replay keeps them set aside.
                good = good.where(" AND ".join(f"({r.expression})" for r in failed))
            good = good.persist()
            silver_path = catalog.location(lake_root, target)
            fresh, _ = silver.new_events(
                good, silver_path if DeltaTable.isDeltaTable(spark, silver_path) else None)
            fresh = fresh.persist()
            counts = {"replayed": bronze.count(), "parsed": good.count(),
                      "landed": fresh.count(), "still_bad": bad.count()}
            counts["duplicates"] = counts["parsed"] - counts["landed"]
            if counts["landed"]:
                lake.append(fresh, lake_root, target, merge_schema=True)
            if counts["parsed"]:
                landed = good.select("kafka_topic", "kafka_partition", "kafka_offset")
                (DeltaTable.forPath(spark, catalog.location(lake_root, qt)).alias("q")
                 .merge(landed.alias("g"),
                        f"q.source_table = '{source.qualified_name}' "
                        "AND q.kafka_topic = g.kafka_topic "
                        "AND q.kafka_partition = g.kafka_partition "
                        "AND q.kafka_offset = g.kafka_offset")
                 .whenMatchedDelete().execute())
            fresh.unpersist()
            good.unpersist()
        finally:
            bronze.unpersist()
    return counts
