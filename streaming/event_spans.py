"""Silver files narrow in event time, so a re-sent record's first copy is found cheaply.

A duplicate carries the event time of its first copy. Silver's event-id check therefore
reads only the silver rows whose event times fall in the spans of the batch's own event
times, and Delta skips every file whose ``event_time`` statistics miss all of them. That
skipping works only if each file is narrow in event time, which a file written in arrival
order is not once a batch mixes live records with late ones (a gateway uploading last
week's buffer): its range would run from last week to now and overlap every lookup.

So each silver batch is cut into spans before it is written:

- the **on-time** span: records whose event time is at most ``ingest.late_after_minutes``
  before the batch's earliest Kafka arrival (nearly all of a live stream);
- one **late** span per event day of the rest (capped at ``MAX_SPANS`` in all by merging
  neighbouring days).

Every span is written to its own file(s), so a file's event-time range is within one span:
a check reads the recent on-time files plus the late files of the days it touches, however
much silver holds. Files written before this layout keep their ranges; compaction
(``OPTIMIZE ... ZORDER BY (event_time)``) narrows them.

Spark offers no partitioning "row to partition i" for a DataFrame: ``repartition(n, col)``
puts a row into ``pmod(murmur3(col, 42), n)``. ``file_keys(n)`` finds, for each i, a key
whose hash lands in partition i (Spark's own Murmur3 x86_32 of an int, recomputed here;
a unit test holds it to Spark's ``hash``), so n spans become exactly n files.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame

#: At most this many spans per batch (one on-time, the rest late days, neighbours merged):
#: a batch writes at most this many files and its silver check ORs this many ranges.
MAX_SPANS = 16
#: The span key of on-time records (late ones are keyed by their event day, yyyy-MM-dd).
ON_TIME = ""


@dataclass(frozen=True)
class Span:
    """Event times ``lo``..``hi`` (inclusive) of the batch rows with one of ``keys``."""

    keys: tuple[str, ...]
    lo: datetime
    hi: datetime
    rows: int


def key(late_before: datetime | None) -> Column:
    """A row's span key: ``ON_TIME``, or its event day when its event time is before
    ``late_before`` (None: every row is on time)."""
    from pyspark.sql import functions as F

    if late_before is None:
        return F.lit(ON_TIME)
    return (F.when(F.col("event_time") >= F.lit(late_before), F.lit(ON_TIME))
            .otherwise(F.date_format("event_time", "yyyy-MM-dd")))


def late_before(earliest_arrival: datetime | None, late_after_minutes: float
                ) -> datetime | None:
    """Where late begins: ``late_after_minutes`` before the batch's earliest arrival."""
    if earliest_arrival is None:
        return None
    return earliest_arrival - timedelta(minutes=late_after_minutes)


def spans(rows: DataFrame, late: datetime | None) -> list[Span]:
    """The spans of ``rows`` (one small aggregation), neighbours merged to ``MAX_SPANS``."""
    from pyspark.sql import functions as F

    found = (rows.where(F.col("event_time").isNotNull())
             .groupBy(key(late).alias("k"))
             .agg(F.min("event_time").alias("lo"), F.max("event_time").alias("hi"),
                  F.count(F.lit(1)).alias("n")).collect())
    return merge([Span((r.k,), r.lo, r.hi, int(r.n)) for r in found])


def merge(found: Sequence[Span], limit: int = MAX_SPANS) -> list[Span]:
    """``found`` with late spans merged, closest neighbours first, until at most ``limit``
    remain; the on-time span stays alone and first."""
    on_time = [s for s in found if ON_TIME in s.keys]
    late = sorted((s for s in found if ON_TIME not in s.keys), key=lambda s: s.lo)
    while late and len(late) + len(on_time) > limit:
        if len(late) == 1:
            break
        i = min(range(len(late) - 1), key=lambda j: late[j + 1].lo - late[j].hi)
        a, b = late[i], late[i + 1]
        late[i:i + 2] = [Span(a.keys + b.keys, min(a.lo, b.lo), max(a.hi, b.hi),
                              a.rows + b.rows)]
    return on_time + late


def covering(found: Sequence[Span]) -> Column | None:
    """``event_time`` within one of the spans (None for no span): the silver rows a
    duplicate of the batch can be."""
    from functools import reduce

    from pyspark.sql import functions as F

    ranges = [F.col("event_time").between(F.lit(s.lo), F.lit(s.hi)) for s in found]
    return reduce(lambda a, b: a | b, ranges) if ranges else None


def one_file_set_per_span(rows: DataFrame, found: Sequence[Span], late: datetime | None
                          ) -> DataFrame:
    """``rows`` repartitioned so that no partition (so no written file) holds two spans;
    ``rows`` itself when there is one span."""
    from pyspark.sql import functions as F

    if len(found) <= 1:
        return rows
    keys = file_keys(len(found))
    to_file = F.create_map(*[x for i, s in enumerate(found) for k in s.keys
                             for x in (F.lit(k), F.lit(keys[i]))])
    return (rows.withColumn("_file", F.element_at(to_file, key(late)))
            .repartition(len(found), "_file").drop("_file"))


# -- Spark's hash partitioning, recomputed ------------------------------------------------
_MASK = 0xFFFFFFFF


def _rotl(x: int, r: int) -> int:
    return ((x << r) | (x >> (32 - r))) & _MASK


def murmur3_int(value: int, seed: int = 42) -> int:
    """Spark's ``hash(value)`` of an int column (Murmur3 x86_32, seed 42), signed."""
    k1 = (value & _MASK) * 0xCC9E2D51 & _MASK
    k1 = _rotl(k1, 15) * 0x1B873593 & _MASK
    h1 = _rotl(seed ^ k1, 13)
    h1 = (h1 * 5 + 0xE6546B64) & _MASK
    h1 ^= 4
    h1 ^= h1 >> 16
    h1 = h1 * 0x85EBCA6B & _MASK
    h1 ^= h1 >> 13
    h1 = h1 * 0xC2B2AE35 & _MASK
    h1 ^= h1 >> 16
    return h1 - (1 << 32) if h1 & 0x80000000 else h1


def file_keys(n: int) -> list[int]:
    """``n`` int keys, the i-th of which ``repartition(n, key)`` sends to partition i."""
    keys: dict[int, int] = {}
    candidate = 0
    while len(keys) < n:
        keys.setdefault(murmur3_int(candidate) % n, candidate)
        candidate += 1
    return [keys[i] for i in range(n)]
