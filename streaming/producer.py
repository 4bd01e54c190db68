"""Publish events to Kafka with kafka-python: acknowledged by all replicas, counted."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from redline.config import Config
from redline.errors import RedlineError
from redline.services.kafka import MESSAGE_MAX_BYTES
from redline.streaming.kafka_options import all_topics, client_options, login_errors


@dataclass
class ProduceReport:
    acknowledged: dict[str, int] = field(default_factory=dict)
    failed: int = 0
    seconds: float = 0.0

    @property
    def total(self) -> int:
        return sum(self.acknowledged.values())

    def summary(self) -> str:
        per = ", ".join(f"{t}={n}" for t, n in sorted(self.acknowledged.items()))
        rate = self.total / self.seconds if self.seconds else 0.0
        return (f"produced {self.total} events in {self.seconds:.1f}s ({rate:,.0f}/s), "
                f"{self.failed} failed: {per}")


def ensure_topics(cfg: Config) -> list[str]:
    """Create redline's topics if missing; return those that were created."""
    from kafka import KafkaAdminClient
    from kafka.admin import NewTopic
    from kafka.errors import KafkaError, TopicAlreadyExistsError

    try:
        with login_errors(cfg, "admin"):
            admin = KafkaAdminClient(client_id="redline-admin", request_timeout_ms=10000,
                                     **client_options(cfg, user="admin"))
    except KafkaError as exc:
        raise RedlineError(
            "KAFKA_UNREACHABLE",
            f"cannot reach Kafka at {cfg.kafka.servers} ({exc}); is it running? `redline up`"
        ) from exc
    try:
        existing = set(admin.list_topics())
        wanted = [t for t in all_topics(cfg).values() if t not in existing]
        if wanted:
            try:
                admin.create_topics([NewTopic(t, cfg.kafka.partitions, 1) for t in wanted])
            except TopicAlreadyExistsError:
                pass
        return wanted
    finally:
        admin.close()


def _status(line: str) -> None:
    if sys.stderr.isatty():
        sys.stderr.write("\r" + line.ljust(100))
        sys.stderr.flush()


def produce(cfg: Config, events: Iterable, rate: float = 0.0,
            progress: Callable[[str], None] = _status) -> ProduceReport:
    """Send ``events`` (``Event`` objects) at ``rate`` events/s (0 = as fast as possible).

    Returns only after every send was acknowledged or failed; failures raise. An event
    larger than the broker accepts (``MESSAGE_MAX_BYTES``) raises KAFKA_RECORD_TOO_LARGE
    before it is sent; the events before it are still delivered.
    """
    from kafka import KafkaProducer
    from kafka.errors import MessageSizeTooLargeError

    def serialize(value: Any) -> bytes:
        return json.dumps(value, separators=(",", ":")).encode()

    topics = all_topics(cfg)
    with login_errors(cfg, "producer"):
        producer = KafkaProducer(
            acks="all", linger_ms=20, batch_size=256 * 1024, retries=5,
            max_in_flight_requests_per_connection=1,  # keeps per-key order across retries
            # The broker's limit: a record silver will quarantine as too large still
            # reaches the lake; one the broker would refuse fails here, naming the event.
            max_request_size=MESSAGE_MAX_BYTES,
            key_serializer=lambda k: k.encode(),
            value_serializer=serialize, **client_options(cfg, user="producer"))
    report = ProduceReport()
    errors: list[BaseException] = []

    def ok(topic: str):
        def cb(_meta):
            report.acknowledged[topic] = report.acknowledged.get(topic, 0) + 1
        return cb

    began = time.monotonic()
    sent = 0
    try:
        for event in events:
            topic = topics[event.topic]
            try:
                fut = producer.send(topic, key=event.key, value=event.payload)
            except MessageSizeTooLargeError:
                raise RedlineError(
                    "KAFKA_RECORD_TOO_LARGE",
                    f"event {sent + 1} (topic {topic}, key {event.key!r}) is "
                    f"{len(serialize(event.payload)):,} bytes, over Kafka's "
                    f"{MESSAGE_MAX_BYTES:,}-byte record limit: it was not sent, nor any "
                    f"event after it. Shrink or split it (records up to that limit reach the "
                    f"lake; silver quarantines those over ingest.max_record_bytes, "
                    f"{cfg.ingest.max_record_bytes:,}, as RECORD_TOO_LARGE)") from None
            fut.add_callback(ok(event.topic)).add_errback(errors.append)
            sent += 1
            if rate > 0:
                ahead = sent / rate - (time.monotonic() - began)
                if ahead > 0:
                    time.sleep(ahead)
            if sent % 5000 == 0:
                elapsed = time.monotonic() - began
                progress(f"produced {sent:,} events ({sent / elapsed:,.0f}/s)")
        producer.flush()
    finally:
        producer.close()
    report.seconds = time.monotonic() - began
    report.failed = len(errors)
    progress("")
    if errors:
        raise RedlineError("PRODUCE_FAILED",
                           f"{len(errors)} of {sent} events were not acknowledged: {errors[0]}")
    return report


def simulate(cfg: Config, vehicles: int, days: int, seed: int, rate: float = 0.0,
             say: Callable[[str], None] = print, units_per_line_day: int | None = None
             ) -> ProduceReport:
    """Publish the simulated fleet and plants (``streaming/simulator.py``) to Kafka,
    creating the topics first; ``say`` gets a line before and the summary after."""
    from redline.streaming.simulator import (
        FACTORY_UNITS_PER_LINE_DAY,
        SimulationSpec,
        Simulator,
    )

    created = ensure_topics(cfg)
    if created:
        say(f"created topics: {', '.join(created)}")
    units = FACTORY_UNITS_PER_LINE_DAY if units_per_line_day is None else units_per_line_day
    spec = SimulationSpec(vehicles=vehicles, days=days, seed=seed, units_per_line_day=units)
    say(f"simulating {vehicles} vehicles over {days} days, the plants building {units} units "
        f"per line a day (seed {seed}) -> {cfg.kafka.servers}")
    report = produce(cfg, Simulator(spec).events(), rate=rate)
    say(report.summary())
    return report
