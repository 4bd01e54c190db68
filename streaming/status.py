"""`redline ingest status`: per topic, how far behind Kafka the lake is and how it is going.

Everything is read from durable state, so it works while `redline ingest` runs in another
process and after it stopped: Kafka's end offsets, the bronze and silver checkpoints, the
``ops.silver_batches`` metrics and the quarantine table.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from redline import catalog
from redline.config import Config
from redline.streaming import bronze, offsets, silver
from redline.streaming.guards import LOCK_FILE
from redline.streaming.kafka_options import topic_name

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

    from redline.query import Reader

#: Rows/s is measured over the silver batches that ended in this many seconds.
RATE_WINDOW_S = 300


@dataclass
class TopicStatus:
    topic: str
    kafka_end: int = 0
    bronze_position: int = 0
    kafka_lag: int = 0
    bronze_last_batch_at: str | None = None
    bronze_versions_behind: int | None = None
    """Bronze commits the silver stream has not processed yet."""
    silver_last_batch: int | None = None
    silver_last_batch_at: str | None = None
    silver_rows_per_s: float = 0.0
    silver_batches: int = 0
    rows_in: int = 0
    rows_silver: int = 0
    rows_quarantined: int = 0
    rows_duplicate: int = 0
    rule_violations: dict[str, int] = field(default_factory=dict)
    quarantine: dict[str, int] = field(default_factory=dict)
    running: bool = False
    data_loss: list[str] = field(default_factory=list)


def _iso(ts: datetime | float | None) -> str | None:
    if ts is None:
        return None
    if isinstance(ts, (int, float)):
        ts = datetime.fromtimestamp(ts, UTC)
    return ts.replace(microsecond=0).isoformat()


def _locked(checkpoint: str) -> bool:
    from redline.services.base import pid_alive

    path = Path(checkpoint.removeprefix("file:")) / LOCK_FILE
    try:
        owner = json.loads(path.read_text())
    except (OSError, ValueError):
        return False
    return bool(pid_alive(int(owner.get("pid", 0))))


def _silver_source_version(checkpoint: str) -> int | None:
    """First bronze version the silver stream has not finished (Delta source offset)."""
    found = offsets.committed_batch(checkpoint)
    return None if found is None else int(found[1].get("reservoirVersion", 0))


def _stream_status(cfg: Config, lake_root: str, topic: str) -> TopicStatus:
    """What Kafka and the checkpoints say about ``topic`` (no lake table is read)."""
    st = TopicStatus(topic)
    kafka_topic = topic_name(cfg, topic)
    b_ckpt, s_ckpt = bronze.checkpoint(lake_root, topic), silver.checkpoint(lake_root, topic)
    position = offsets.kafka_position(b_ckpt, kafka_topic) or {}
    states = offsets.partition_states(cfg, kafka_topic, position)
    st.kafka_end = sum(s.end for s in states)
    st.bronze_position = sum(position.values())
    st.kafka_lag = sum(s.lag for s in states)
    st.data_loss = offsets.gaps(kafka_topic, position, states)
    commits = Path(b_ckpt.removeprefix("file:")) / "commits"
    if commits.is_dir():
        stamps = [p.stat().st_mtime for p in commits.iterdir() if p.name.isdigit()]
        st.bronze_last_batch_at = _iso(max(stamps)) if stamps else None
    st.running = _locked(b_ckpt) or _locked(s_ckpt)
    return st


def _versions_behind(lake_root: str, topic: str, latest: int) -> int:
    """Bronze commits up to version ``latest`` that the silver stream has not processed."""
    todo = _silver_source_version(silver.checkpoint(lake_root, topic))
    return latest + 1 if todo is None else max(0, latest - todo + 1)


def topic_status(spark: SparkSession, cfg: Config, lake_root: str, topic: str
                 ) -> TopicStatus:
    from delta.tables import DeltaTable
    from pyspark.sql import functions as F

    st = _stream_status(cfg, lake_root, topic)
    bronze_path = catalog.location(lake_root, catalog.bronze(topic))
    if DeltaTable.isDeltaTable(spark, bronze_path):
        latest = DeltaTable.forPath(spark, bronze_path).history(1).first().version
        st.bronze_versions_behind = _versions_behind(lake_root, topic, latest)

    batches_t = catalog.SILVER_BATCHES
    if catalog.exists(spark, lake_root, batches_t):
        batches = catalog.read(spark, lake_root, batches_t).where(F.col("topic") == topic)
        tot = batches.agg(
            F.count(F.lit(1)).alias("n"), F.sum("input_rows").alias("rows"),
            F.sum("silver_rows").alias("silver"), F.sum("quarantined_rows").alias("q"),
            F.sum("duplicate_rows").alias("dup"), F.max("ended_at").alias("last")).first()
        if tot.n:
            st.silver_batches, st.rows_in = int(tot.n), int(tot.rows)
            st.rows_silver, st.rows_quarantined = int(tot.silver), int(tot.q)
            st.rows_duplicate = int(tot.dup)
            last = batches.orderBy(F.col("ended_at").desc()).first()
            st.silver_last_batch, st.silver_last_batch_at = int(last.batch_id), _iso(last.ended_at)
            recent = batches.where(
                F.col("ended_at") >= F.lit(last.ended_at) - F.expr(
                    f"INTERVAL {RATE_WINDOW_S} SECONDS")).agg(
                F.sum("input_rows").alias("rows"), F.min("started_at").alias("lo"),
                F.max("ended_at").alias("hi")).first()
            span = (recent.hi - recent.lo).total_seconds()
            st.silver_rows_per_s = round(recent.rows / span, 1) if span > 0 else 0.0
            st.rule_violations = {
                r.rule: int(r.rows) for r in batches.select(F.explode("rule_violations")
                                                            .alias("v"))
                .groupBy(F.col("v.rule").alias("rule")).agg(F.sum("v.rows").alias("rows"))
                .collect() if r.rows}

    qt = catalog.QUARANTINE
    if catalog.exists(spark, lake_root, qt):
        st.quarantine = {
            r.reason_code: int(r["count"]) for r in catalog.read(spark, lake_root, qt)
            .where(F.col("source_table") == catalog.bronze(topic).qualified_name)
            .groupBy("reason_code").count().collect()}
    return st


def status(spark: SparkSession, cfg: Config, lake_root: str, topics: Sequence[str]
           ) -> list[TopicStatus]:
    return [topic_status(spark, cfg, lake_root, t) for t in topics]


def status_sql(reader: Reader, cfg: Config, lake_root: str, topics: Sequence[str]
               ) -> list[TopicStatus]:
    """``status`` with the lake read through SQL (``redline.query``: the Thrift Server
    when it runs): two statements for all topics instead of Spark jobs per topic."""
    out = {t: _stream_status(cfg, lake_root, t) for t in topics}
    lake_status_sql(reader, lake_root, out)
    return [out[t] for t in topics]


def lake_status_sql(reader: Reader, lake_root: str, out: dict[str, TopicStatus]) -> None:
    """Fill in what the lake says about each topic of ``out`` (the part of ``status_sql``
    that reads tables)."""
    from redline.lake import sql_literal

    topics = list(out)
    if not topics:
        return
    for table in reader.prepare([catalog.bronze(t) for t in topics]):
        latest = reader.version(table)
        if latest is not None:
            out[table.topic].bronze_versions_behind = _versions_behind(
                lake_root, table.topic, latest)

    if reader.has(catalog.SILVER_BATCHES):
        names = ", ".join(sql_literal(t) for t in topics)
        recent = f"ended_at >= last_at - INTERVAL {RATE_WINDOW_S} SECONDS"
        for r in reader.query(
                "WITH b AS (SELECT *, max(ended_at) OVER (PARTITION BY topic) AS last_at "
                f"FROM {catalog.SILVER_BATCHES.qualified_name} WHERE topic IN ({names})), "
                "r AS (SELECT topic, map_from_entries(collect_list(struct(rule, n))) AS rules "
                "FROM (SELECT topic, v.rule AS rule, sum(v.rows) AS n "
                "FROM b LATERAL VIEW explode(rule_violations) e AS v GROUP BY topic, v.rule) "
                "GROUP BY topic) "
                "SELECT a.*, r.rules FROM (SELECT topic, count(1) AS n, "
                "sum(input_rows) AS rows_in, sum(silver_rows) AS rows_silver, "
                "sum(quarantined_rows) AS rows_q, sum(duplicate_rows) AS rows_dup, "
                "max(ended_at) AS last_at, max_by(batch_id, ended_at) AS last_batch, "
                # rows/s over the batches that ended in the window before the last one
                f"sum(CASE WHEN {recent} THEN input_rows END) AS recent_rows, "
                f"min(CASE WHEN {recent} THEN started_at END) AS recent_from "
                "FROM b GROUP BY topic) a LEFT JOIN r ON a.topic = r.topic").rows:
            st = out[r["topic"]]
            st.silver_batches, st.rows_in = int(r["n"]), int(r["rows_in"])
            st.rows_silver, st.rows_quarantined = int(r["rows_silver"]), int(r["rows_q"])
            st.rows_duplicate = int(r["rows_dup"])
            st.silver_last_batch = int(r["last_batch"])
            st.silver_last_batch_at = _iso(r["last_at"])
            span = (r["last_at"] - r["recent_from"]).total_seconds()
            st.silver_rows_per_s = round(r["recent_rows"] / span, 1) if span > 0 else 0.0
            st.rule_violations = {rule: int(n) for rule, n in (r["rules"] or {}).items() if n}

    if reader.has(catalog.QUARANTINE):
        sources = {catalog.bronze(t).qualified_name: t for t in topics}
        for r in reader.query(
                "SELECT source_table, reason_code, count(1) AS n FROM "
                f"{catalog.QUARANTINE.qualified_name} WHERE source_table IN "
                f"({', '.join(sql_literal(s) for s in sources)}) "
                "GROUP BY source_table, reason_code").rows:
            out[sources[r["source_table"]]].quarantine[r["reason_code"]] = int(r["n"])


def as_json(rows: Sequence[TopicStatus]) -> str:
    return json.dumps([asdict(r) for r in rows])


def render(rows: Sequence[TopicStatus]) -> str:
    """A fixed-width table, one line per topic, then details that need attention."""
    head = (f"{'topic':<20} {'run':<4} {'kafka lag':>10} {'bronze->silver':>14} "
            f"{'last silver batch':>26} {'rows/s':>9} {'silver':>10} {'quarantine':>10}")
    lines = [head, "-" * len(head)]
    for r in rows:
        behind = "-" if r.bronze_versions_behind is None else f"{r.bronze_versions_behind} ver"
        last = "-" if r.silver_last_batch is None else \
            f"#{r.silver_last_batch} {r.silver_last_batch_at}"
        lines.append(
            f"{r.topic:<20} {'yes' if r.running else 'no':<4} {r.kafka_lag:>10,} {behind:>14} "
            f"{last:>26} {r.silver_rows_per_s:>9,.0f} {r.rows_silver:>10,} "
            f"{sum(r.quarantine.values()):>10,}")
    for r in rows:
        if r.quarantine:
            lines.append(f"  {r.topic} quarantine: " + ", ".join(
                f"{code}={n:,}" for code, n in sorted(r.quarantine.items())))
        if r.rule_violations:
            lines.append(f"  {r.topic} rule violations: " + ", ".join(
                f"{rule}={n:,}" for rule, n in sorted(r.rule_violations.items())))
        for gap in r.data_loss:
            lines.append(f"  DATA LOSS {gap}")
    return "\n".join(lines)
