"""Where ingest stands against Kafka: committed offsets, lag, and data-loss gaps.

A bronze query's checkpoint records, per micro-batch ``n``, the Kafka end offsets it
planned (``offsets/n``, exclusive) and whether the batch committed (``commits/n``). The
offsets of the newest committed batch are the position bronze has consumed up to.

Comparing that position with what Kafka still holds tells two things:

- lag: records in Kafka that bronze has not read (``end - position`` per partition);
- data loss: the position is before the partition's first offset (retention or
  ``delete-records`` removed records bronze never read) or after its end (the topic was
  deleted and recreated, or truncated), or a partition bronze read is gone, or the record
  just before the position is no longer the one bronze holds at that offset (the topic
  was recreated and refilled past the old position: offsets alone cannot tell). Spark's
  ``failOnDataLoss`` stops a running query in the same cases; checking before start turns
  the failure into a message that names the topic, the partition and the lost range.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from redline.config import Config
from redline.errors import RedlineError
from redline.streaming.kafka_options import client_options, login_errors

KAFKA_DATA_LOSS = "KAFKA_DATA_LOSS"


def _batch_ids(folder: Path) -> list[int]:
    if not folder.is_dir():
        return []
    return sorted(int(p.name) for p in folder.iterdir() if p.name.isdigit())


def committed_batch(checkpoint: str) -> tuple[int, dict] | None:
    """(batch id, source offsets JSON) of the newest committed batch, or None."""
    root = Path(checkpoint.removeprefix("file:"))
    committed = set(_batch_ids(root / "commits"))
    for n in reversed(_batch_ids(root / "offsets")):
        if n in committed:
            lines = (root / "offsets" / str(n)).read_text().splitlines()
            # v1 / batch metadata / one JSON line per source
            return n, json.loads(lines[2])
    return None


def kafka_position(checkpoint: str, kafka_topic: str) -> dict[int, int] | None:
    """Partition -> next offset bronze will read, from the newest committed batch."""
    found = committed_batch(checkpoint)
    if found is None:
        return None
    offsets = found[1].get(kafka_topic)
    if offsets is None:
        return None
    return {int(p): int(o) for p, o in offsets.items()}


@dataclass(frozen=True)
class PartitionState:
    partition: int
    first: int
    end: int
    position: int | None

    @property
    def lag(self) -> int:
        return self.end - (self.position if self.position is not None else self.first)


def partition_states(cfg: Config, kafka_topic: str,
                     position: Mapping[int, int] | None) -> list[PartitionState]:
    """Kafka's first and end offset of every partition of ``kafka_topic``."""
    from kafka import KafkaConsumer, TopicPartition

    with login_errors(cfg, "ingest"):
        consumer = KafkaConsumer(client_id="redline-offsets", enable_auto_commit=False,
                                 request_timeout_ms=15000,
                                 **client_options(cfg, user="ingest"))
    try:
        parts = consumer.partitions_for_topic(kafka_topic) or set()
        tps = [TopicPartition(kafka_topic, p) for p in sorted(parts)]
        first = consumer.beginning_offsets(tps) if tps else {}
        end = consumer.end_offsets(tps) if tps else {}
    finally:
        consumer.close()
    position = position or {}
    return [PartitionState(tp.partition, first[tp], end[tp], position.get(tp.partition))
            for tp in tps]


Record = tuple[int, bytes | None]
"""(Kafka timestamp in ms, value) of one record: enough to tell two records apart."""


def kafka_record(cfg: Config, kafka_topic: str, partition: int, offset: int) -> Record | None:
    from kafka import KafkaConsumer, TopicPartition

    with login_errors(cfg, "ingest"):
        consumer = KafkaConsumer(client_id="redline-offsets", enable_auto_commit=False,
                                 request_timeout_ms=15000,
                                 **client_options(cfg, user="ingest"))
    try:
        tp = TopicPartition(kafka_topic, partition)
        consumer.assign([tp])
        consumer.seek(tp, offset)
        for _ in range(10):
            for rec in consumer.poll(timeout_ms=1000).get(tp, []):
                if rec.offset == offset:
                    return rec.timestamp, rec.value
        return None
    finally:
        consumer.close()


def gaps(kafka_topic: str, position: Mapping[int, int], states: list[PartitionState],
         kafka_at: Callable[[int, int], Record | None] | None = None,
         bronze_at: Callable[[int, int], Record | None] | None = None) -> list[str]:
    """Human-readable data-loss gaps between ``position`` and what Kafka holds.

    ``kafka_at`` and ``bronze_at`` return the record at (partition, offset) in Kafka and in
    bronze; with both, the last record bronze read is compared with Kafka's.
    """
    out = []
    by_partition = {s.partition: s for s in states}
    for p, pos in sorted(position.items()):
        s = by_partition.get(p)
        if s is None:
            out.append(f"{kafka_topic} partition {p}: bronze read up to offset {pos} but the "
                       f"partition no longer exists (topic deleted or recreated with fewer "
                       f"partitions)")
        elif pos < s.first:
            out.append(f"{kafka_topic} partition {p}: offsets {pos}..{s.first - 1} "
                       f"({s.first - pos:,} records) were removed from Kafka before bronze "
                       f"read them (retention or delete-records); Kafka now starts at "
                       f"{s.first}")
        elif pos > s.end:
            out.append(f"{kafka_topic} partition {p}: bronze read up to offset {pos} but "
                       f"Kafka ends at {s.end}: the topic was recreated or truncated, so "
                       f"offsets {s.end}..{pos - 1} no longer exist and new records would "
                       f"reuse offsets bronze already holds")
        elif kafka_at is not None and bronze_at is not None and s.first < pos:
            theirs, ours = kafka_at(p, pos - 1), bronze_at(p, pos - 1)
            if ours is not None and theirs != ours:
                out.append(f"{kafka_topic} partition {p}: the record at offset {pos - 1} in "
                           f"Kafka is not the one bronze ingested from that offset: the "
                           f"topic was recreated, and its offsets 0..{pos - 1} hold records "
                           f"bronze never read")
    return out


def require_no_gap(cfg: Config, checkpoint: str, kafka_topic: str,
                   bronze_at: Callable[[int, int], Record | None] | None = None) -> None:
    """Raise KAFKA_DATA_LOSS when Kafka lost records the bronze checkpoint has not read."""
    position = kafka_position(checkpoint, kafka_topic)
    if not position:
        return
    found = gaps(kafka_topic, position, partition_states(cfg, kafka_topic, position),
                 lambda p, o: kafka_record(cfg, kafka_topic, p, o), bronze_at)
    if found:
        raise RedlineError(
            KAFKA_DATA_LOSS,
            "Kafka no longer holds records that bronze has not ingested; refusing to skip "
            "them:\n  " + "\n  ".join(found) + "\nRe-publish the missing events from their "
            "source (or restore the topic) and restart; redline never skips a gap silently.")


def explain(exc: BaseException, topic: str) -> BaseException:
    """Spark's failOnDataLoss failure of a running bronze query as KAFKA_DATA_LOSS."""
    text = str(exc)
    if "failOnDataLoss" not in text and "data loss" not in text.lower():
        return exc
    detail = next((line.strip() for line in text.splitlines()
                   if "offset" in line.lower() or "partition" in line.lower()), text[:300])
    return RedlineError(
        KAFKA_DATA_LOSS,
        f"the bronze query of {topic} stopped because Kafka lost records it had not read: "
        f"{detail}\nRe-publish the missing events (or restore the topic) and restart; "
        f"redline never skips a gap silently.")
