"""Simulator events as typed silver rows, for tests that build silver without Kafka.

pytest puts this folder on ``sys.path`` (``tests`` has a conftest.py and no package), so a
test module imports it as ``simulated``.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime
from typing import TYPE_CHECKING

from redline.schemas.payloads import latest
from redline.streaming.simulator import SimulationSpec, Simulator

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession


def typed(payload: dict) -> dict:
    """A JSON payload with Python values of its declared Spark types (times, dates)."""
    out = dict(payload)
    out["event_time"] = datetime.fromisoformat(payload["event_time"].replace("Z", "+00:00"))
    for name in ("build_date", "failure_date"):
        if name in out:
            out[name] = date.fromisoformat(out[name])
    return out


def silver_frames(spark: SparkSession, spec: SimulationSpec, topics: Iterable[str]
                  ) -> dict[str, DataFrame]:
    """The simulated events of ``topics`` as DataFrames of their payload schemas."""
    rows: dict[str, list[dict]] = {t: [] for t in topics}
    for event in Simulator(spec).events():
        if event.topic in rows:
            rows[event.topic].append(typed(event.payload))
    return {t: spark.createDataFrame(r, latest(t).struct) for t, r in rows.items()}


def silver_table(spark: SparkSession, topic: str, payloads: Iterable[dict]) -> DataFrame:
    """Typed payloads of ``topic`` as rows of its silver table (envelope and lineage filled
    in: event ids, offsets in order), for tests that start at silver."""
    from redline.schemas import tables

    schema = tables.silver(latest(topic))
    rows = []
    for n, payload in enumerate(payloads):
        row = {"event_id": f"{topic}-{n}", "event_time": datetime(2024, 1, 1),
               "schema_version": latest(topic).version, "kafka_topic": topic,
               "kafka_partition": 0, "kafka_offset": n, **payload}
        rows.append(tuple(row.get(f.name) for f in schema.fields))
    return spark.createDataFrame(rows, schema)


def write_silver(spark: SparkSession, lake_root: str, spec: SimulationSpec) -> dict[str, int]:
    """Write the simulated fleet and plants' silver tables (every simulated topic) into
    ``lake_root`` as ingest would; return rows per topic. Gold jobs can run on it."""
    from redline import catalog, lake
    from redline.schemas.payloads import SIMULATED_TOPICS

    rows: dict[str, list[dict]] = {t: [] for t in SIMULATED_TOPICS}
    for event in Simulator(spec).events():
        rows[event.topic].append(typed(event.payload))
    for topic, payloads in rows.items():
        lake.overwrite(silver_table(spark, topic, payloads), lake_root, catalog.silver(topic))
    return {t: len(r) for t, r in rows.items()}
