"""Publish events to Kafka with kafka-python: acknowledged by all replicas, counted."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from redline.config import Config
from redline.errors import RedlineError
from redline.streaming.kafka_options import all_topics, client_options


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
        admin = KafkaAdminClient(client_id="redline-admin", request_timeout_ms=10000,
                                 **client_options(cfg))
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

    Returns only after every send was acknowledged or failed; failures raise.
    """
    from kafka import KafkaProducer

    topics = all_topics(cfg)
    producer = KafkaProducer(
        acks="all", linger_ms=20, batch_size=256 * 1024, retries=5,
        max_in_flight_requests_per_connection=1,  # keeps per-key order across retries
        key_serializer=lambda k: k.encode(),
        value_serializer=lambda v: json.dumps(v, separators=(",", ":")).encode(),
        **client_options(cfg))
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
            fut = producer.send(topic, key=event.key, value=event.payload)
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
             say: Callable[[str], None] = print) -> ProduceReport:
    """Publish the simulated fleet and plants (``streaming/simulator.py``) to Kafka,
    creating the topics first; ``say`` gets a line before and the summary after."""
    from redline.streaming.simulator import SimulationSpec, Simulator

    created = ensure_topics(cfg)
    if created:
        say(f"created topics: {', '.join(created)}")
    spec = SimulationSpec(vehicles=vehicles, days=days, seed=seed)
    say(f"simulating {vehicles} vehicles over {days} days (seed {seed}) -> {cfg.kafka.servers}")
    report = produce(cfg, Simulator(spec).events(), rate=rate)
    say(report.summary())
    return report
