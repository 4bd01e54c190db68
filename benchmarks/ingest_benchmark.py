"""Ingest benchmark: Kafka -> bronze / silver throughput, sink comparison, freshness.

Runs against its own Kafka broker (temporary REDLINE_HOME, ports 29392/29393 unless
``--port``) and its own lake in a temporary folder; both are removed at the end, also on
Ctrl-C or an error. Not part of the test run. What it measures, in order:

1. producer: the simulator alone, the project's ``streaming.producer.produce`` path
   (simulator + kafka-python as the CLI uses it), then kafka-python configurations on
   pre-serialised simulator payloads; the fastest one pre-produces ``--events`` telemetry
   events (default 2,000,000, unique event ids) with acks=all, checked against the
   topic's end offsets.
2. Kafka -> sink with ``availableNow``: the same Kafka read into ``noop``, into bronze
   Delta (the project's bronze query, ``streaming.bronze.start``) and into plain Parquet,
   each with a fresh checkpoint; Delta/noop ratio.
3. bronze -> silver with ``availableNow`` (``streaming.silver.drain``), and
   Kafka -> silver end to end (bronze then silver, as ``redline ingest --available-now``).
4. freshness: ``streaming.ingest.run`` runs continuously while ``produce`` sends simulator
   telemetry at a steady ``--rate`` for ``--seconds``; latency of an event = commit time
   of the silver version that contains it (change data feed ``_commit_timestamp``) minus
   its Kafka timestamp (set by the producer at send).

Prints a table with the issue's targets and writes every figure to JSON
(``benchmarks/results/ingest.json`` by default).

    .venv/bin/python benchmarks/ingest_benchmark.py            # the full run
    .venv/bin/python benchmarks/ingest_benchmark.py --events 200000 --seconds 20  # smoke
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import multiprocessing
import os
import platform
import shutil
import sys
import tempfile
import threading
import time
import warnings
from datetime import UTC, datetime
from pathlib import Path

warnings.filterwarnings("ignore", category=DeprecationWarning)  # kafka-python on import

ROOT = Path(__file__).resolve().parent.parent
TOPIC = "vehicle_telemetry"
TARGETS = {
    "kafka_to_bronze_events_per_s": (">=", 100_000),
    "kafka_to_silver_events_per_s": (">=", 50_000),
    "delta_over_noop": (">=", 0.6),
    "freshness_p95_s": ("<=", 5.0),
}


def log(msg: str) -> None:
    print(f"[{datetime.now(UTC):%H:%M:%S}] {msg}", flush=True)


def machine() -> dict:
    return {"cores": os.cpu_count(), "load_average": list(os.getloadavg()),
            "platform": platform.platform(), "python": platform.python_version()}


# -- payloads ------------------------------------------------------------------------------
MARK = "@@EVENT_ID@@"


def templates(n: int) -> list[tuple[bytes, bytes, bytes]]:
    """(key, value before the event id, value after it) of ``n`` simulator telemetry events."""
    from redline.streaming.simulator import SimulationSpec, Simulator

    sim = Simulator(SimulationSpec(vehicles=max(50, n // 40), days=60, seed=11))
    out = []
    for ev in sim.events():
        if ev.topic != TOPIC:
            continue
        text = json.dumps({**ev.payload, "event_id": MARK}, separators=(",", ":"))
        before, after = text.split(MARK)
        out.append((ev.key.encode(), before.encode(), after.encode()))
        if len(out) == n:
            break
    return out


def simulator_rate(n: int) -> dict:
    """Events/s the simulator generates and JSON-serialises on its own (no Kafka)."""
    from redline.streaming.simulator import SimulationSpec, Simulator

    sim = Simulator(SimulationSpec(vehicles=2000, days=60, seed=3))
    began = time.perf_counter()
    nbytes = count = 0
    for ev in sim.events():
        nbytes += len(json.dumps(ev.payload, separators=(",", ":")))
        count += 1
        if count == n:
            break
    secs = time.perf_counter() - began
    return {"events": count, "seconds": round(secs, 2), "events_per_s": round(count / secs),
            "mean_payload_bytes": round(nbytes / count)}


# -- kafka-python producers ----------------------------------------------------------------
class _Acks:
    def __init__(self):
        self.n = 0

    def __call__(self, _meta):
        self.n += 1


def _producer_worker(conn, topic, settings, tmpl, worker, start, count, nonce, out):
    import warnings as _w

    _w.filterwarnings("ignore", category=DeprecationWarning)
    from kafka import KafkaProducer

    producer = KafkaProducer(acks="all", **conn, **settings)
    acks, errors = _Acks(), []
    m = len(tmpl)
    nbytes = 0
    began = time.perf_counter()
    for i in range(start, start + count):
        key, before, after = tmpl[i % m]
        value = before + b"%08x-%04x-4000-8000-%012x" % (nonce, worker, i) + after
        nbytes += len(value) + len(key)
        fut = producer.send(topic, key=key, value=value)
        fut.add_callback(acks).add_errback(errors.append)
    producer.flush()
    secs = time.perf_counter() - began
    producer.close()
    out.put({"worker": worker, "acked": acks.n, "errors": len(errors),
             "first_error": repr(errors[0]) if errors else None,
             "bytes": nbytes, "seconds": secs})


def pure_produce(conn: dict, topic: str, settings: dict, tmpl, count: int,
                 processes: int, offset: int = 0) -> dict:
    """Send ``count`` pre-serialised events from ``processes`` processes; acks=all, counted.

    ``conn``: kafka-python connection settings (``client_options`` of the producer user).
    """
    ctx = multiprocessing.get_context("fork")  # before Spark starts: nothing to inherit
    out = ctx.Queue()
    nonce = int(time.time()) & 0xFFFFFFFF
    per = [count // processes + (1 if w < count % processes else 0) for w in range(processes)]
    procs, start = [], offset
    began = time.perf_counter()
    for w in range(processes):
        p = ctx.Process(target=_producer_worker,
                        args=(conn, topic, settings, tmpl, w, start, per[w], nonce, out))
        p.start()
        procs.append(p)
        start += per[w]
    import queue

    results = []
    while len(results) < len(procs):
        try:
            results.append(out.get(timeout=2.0))
        except queue.Empty:
            dead = [p.exitcode for p in procs if p.exitcode not in (None, 0)]
            if dead:
                for p in procs:
                    p.kill()
                raise RuntimeError(f"a producer process failed (exit codes {dead}); "
                                   f"see its traceback above") from None
    for p in procs:
        p.join()
    secs = time.perf_counter() - began
    acked = sum(r["acked"] for r in results)
    errors = sum(r["errors"] for r in results)
    if errors or acked != count:
        raise RuntimeError(f"producer: {acked} of {count} acknowledged, {errors} errors: "
                           f"{[r['first_error'] for r in results if r['first_error']]}")
    nbytes = sum(r["bytes"] for r in results)
    return {"events": acked, "processes": processes, "settings": settings,
            "seconds": round(secs, 2), "events_per_s": round(acked / secs),
            "mb_per_s": round(nbytes / secs / 1e6, 2), "bytes": nbytes}


PRODUCER_CONFIGS = {
    # What streaming/producer.py used before this benchmark: one request in flight.
    "inflight1_nocompress": dict(linger_ms=20, batch_size=256 * 1024, retries=5,
                                 enable_idempotence=False,
                                 max_in_flight_requests_per_connection=1),
    # Idempotent producer: up to 5 requests in flight and still per-partition order.
    "idempotent_nocompress": dict(linger_ms=20, batch_size=256 * 1024,
                                  enable_idempotence=True,
                                  max_in_flight_requests_per_connection=5),
    "idempotent_lz4": dict(linger_ms=20, batch_size=256 * 1024, enable_idempotence=True,
                           max_in_flight_requests_per_connection=5, compression_type="lz4"),
    "idempotent_zstd": dict(linger_ms=20, batch_size=256 * 1024, enable_idempotence=True,
                            max_in_flight_requests_per_connection=5, compression_type="zstd"),
}


def end_offsets(conn: dict, topic: str) -> int:
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(**conn)
    try:
        parts = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic)]
        return sum(consumer.end_offsets(parts).values())
    finally:
        consumer.close()


# -- Spark queries ---------------------------------------------------------------------
def progress_rows(query) -> int:
    return sum(int(p.get("numInputRows", 0)) for p in query.recentProgress)


def run_sink(spark, cfg, lake: str, fmt: str, max_offsets: int) -> dict:
    """The bronze read (Kafka source + to_bronze) into ``fmt`` with availableNow."""
    from redline.streaming.bronze import kafka_source, to_bronze

    ckpt = os.path.join(lake, "_bench_checkpoints", f"{fmt}-{time.time_ns()}")
    writer = (to_bronze(kafka_source(spark, cfg, TOPIC, max_offsets)).writeStream
              .format(fmt).queryName(f"bench_{fmt}").option("checkpointLocation", ckpt)
              .trigger(availableNow=True))
    began = time.perf_counter()
    if fmt == "noop":
        query = writer.start()
    else:
        query = writer.start(os.path.join(lake, "_bench_parquet", str(time.time_ns())))
    query.awaitTermination()
    secs = time.perf_counter() - began
    if query.exception() is not None:
        raise query.exception()
    rows = sum(int(p.get("numInputRows", 0)) for p in query.recentProgress)
    return {"rows": rows, "seconds": round(secs, 2), "batches": len(query.recentProgress)}


def run_bronze(spark, cfg, lake: str) -> dict:
    from redline.streaming import bronze

    began = time.perf_counter()
    running = bronze.start(spark, cfg, lake, TOPIC, available_now=True)
    guarded = time.perf_counter() - began  # checkpoint lock and guards, Kafka gap check
    try:
        running.query.awaitTermination()
        if running.query.exception() is not None:
            raise running.query.exception()
        secs = time.perf_counter() - began
        progress = running.query.recentProgress
    finally:
        running.stop()
    return {"rows": sum(int(p.get("numInputRows", 0)) for p in progress),
            "seconds": round(secs, 2), "batches": len(progress),
            "guard_seconds": round(guarded, 2),
            "per_batch_ms": {k: round(sum(p["durationMs"].get(k, 0) for p in progress)
                                      / max(1, len(progress)))
                             for k in ("addBatch", "latestOffset", "walCommit",
                                       "commitOffsets", "triggerExecution")}}


def rates(result: dict, nbytes_per_event: float) -> dict:
    secs = result["seconds"]
    result["events_per_s"] = round(result["rows"] / secs) if secs else 0
    result["mb_per_s"] = round(result["rows"] * nbytes_per_event / secs / 1e6, 2) if secs else 0
    return result


def _iso(epoch_s: float) -> str:
    """``epoch_s`` as a streaming progress timestamp (UTC, ISO 8601, milliseconds)."""
    return datetime.fromtimestamp(epoch_s, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3]


# -- freshness -------------------------------------------------------------------------
def freshness(spark, cfg, lake: str, rate: float, seconds: float, warmup_s: float) -> dict:
    """Latency from send to visible in silver while ``ingest.run`` runs continuously."""
    from pyspark.sql import functions as F

    from redline import catalog
    from redline.streaming import ingest
    from redline.streaming.producer import ensure_topics, produce
    from redline.streaming.simulator import SimulationSpec, Simulator

    ensure_topics(cfg)
    stop = threading.Event()
    failure: list[BaseException] = []

    def run_ingest():
        try:
            ingest.run(spark, cfg, lake, [TOPIC], available_now=False, stop=stop,
                       progress=lambda _line: None)
        except BaseException as exc:  # reported by the caller
            failure.append(exc)

    # The simulator runs before the clock starts (its events are kept in memory), so that
    # only producer.produce paces and sends: the simulator is not what is measured here.
    total = int(rate * seconds)
    warm_max = int(rate * max(warmup_s, 60.0))  # at most this much warm-up
    sim = Simulator(SimulationSpec(vehicles=max(200, (total + warm_max) // 80), days=60, seed=5))
    pool = []
    for e in sim.events():
        if e.topic == TOPIC:
            pool.append(e)
            if len(pool) == total + warm_max:
                break
    silver_table = catalog.silver(TOPIC)
    path = catalog.location(lake, silver_table)
    worker = threading.Thread(target=run_ingest, name="ingest", daemon=True)
    worker.start()
    # Warm-up: produce at the same rate until the silver query has committed once (the
    # queries' start-up is not freshness) and at least ``warmup_s`` seconds passed.
    began = time.time()
    used, warm = 0, 0
    chunk = max(1, int(rate))
    while not failure and used + chunk <= warm_max and (
            time.time() - began < warmup_s or not catalog.exists(spark, lake, silver_table)):
        rep = produce(cfg, pool[used:used + chunk], rate=rate, progress=lambda _line: None)
        used += chunk
        warm += rep.total
    steady_from = time.time()
    report = produce(cfg, pool[used:used + total], rate=rate, progress=lambda _line: None)
    produced_s = time.time() - steady_from
    deadline = time.time() + 300
    visible = 0
    while time.time() < deadline and not failure:
        if catalog.exists(spark, lake, silver_table):
            visible = spark.read.format("delta").load(path).count()
            if visible >= report.total + warm:
                break
        time.sleep(5.0)  # latency comes from commit times, not from this poll
    # Where a micro-batch's time goes, per query (Structured Streaming's own durations).
    phases = {}
    for q in spark.streams.active:
        steady = [p for p in q.recentProgress
                  if p.get("numInputRows", 0) and p["timestamp"] >= _iso(steady_from)]
        if steady:
            keys = sorted({k for p in steady for k in p["durationMs"]})
            phases[q.name] = {"batches": len(steady), **{
                k: round(sum(p["durationMs"].get(k, 0) for p in steady) / len(steady))
                for k in keys}}
    stop.set()
    worker.join(120)
    if failure:
        raise failure[0]
    bronze_path = catalog.location(lake, catalog.bronze(TOPIC))
    sent = (spark.read.format("delta").load(bronze_path)
            .select(F.col("partition").alias("kafka_partition"),
                    F.col("offset").alias("kafka_offset"), "kafka_timestamp"))
    changes = (spark.read.format("delta").option("readChangeFeed", "true")
               .option("startingVersion", 0).load(path)
               .where(F.col("_change_type") == "insert")
               .select("kafka_partition", "kafka_offset", "_commit_timestamp"))
    warm_cut = steady_from
    lat = (changes.join(sent, ["kafka_partition", "kafka_offset"])
           .where(F.col("kafka_timestamp").cast("double") >= warm_cut)
           .select((F.col("_commit_timestamp").cast("double")
                    - F.col("kafka_timestamp").cast("double")).alias("latency")))
    q = lat.agg(F.count("*").alias("n"),
                F.percentile_approx("latency", 0.5, 10000).alias("p50"),
                F.percentile_approx("latency", 0.95, 10000).alias("p95"),
                F.max("latency").alias("max"), F.min("latency").alias("min")).first()
    return {"rate_target": rate, "seconds": seconds, "warmup_s": round(steady_from - began, 1),
            "warmup_events": warm, "produced": report.total, "produce_seconds": round(produced_s, 1),
            "achieved_rate": round(report.total / produced_s),
            "visible_in_silver": visible, "expected_in_silver": report.total + warm,
            "measured_events": q["n"], "p50_s": round(q["p50"], 2), "p95_s": round(q["p95"], 2),
            "max_s": round(q["max"], 2), "min_s": round(q["min"], 2),
            "mean_ms_per_batch": phases,
            "silver_commits": spark.sql(f"DESCRIBE HISTORY delta.`{path}`").count()}


# -- main ------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--events", type=int, default=2_000_000,
                    help="events pre-produced for the throughput runs (default 2,000,000)")
    ap.add_argument("--partitions", type=int, default=None,
                    help="partitions of the benchmark topics (default: kafka.partitions)")
    ap.add_argument("--producers", type=int, default=2, help="producer processes")
    ap.add_argument("--sweep-events", type=int, default=100_000,
                    help="events per producer configuration in the sweep (0 = skip)")
    ap.add_argument("--rate", type=float, default=2000.0, help="freshness: events/s")
    ap.add_argument("--seconds", type=float, default=60.0, help="freshness: steady seconds")
    ap.add_argument("--warmup", type=float, default=10.0,
                    help="freshness: seconds produced before measuring (queries starting)")
    ap.add_argument("--max-offsets", type=int, default=None,
                    help="maxOffsetsPerTrigger for the noop/Parquet runs (default: bronze's)")
    ap.add_argument("--port", type=int, default=29392, help="Kafka port (controller: +1)")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "ingest.json"))
    ap.add_argument("--no-silver", action="store_true",
                    help="skip bronze -> silver (and freshness: use --seconds 0 too)")
    ap.add_argument("--keep", action="store_true", help="keep the temporary state folder")
    args = ap.parse_args(argv)

    from redline.config import load
    from redline.services.kafka import KafkaBroker

    home = Path(tempfile.mkdtemp(prefix="redline-bench-"))
    env = dict(os.environ)
    env.update({"REDLINE_HOME": str(home), "REDLINE_KAFKA_PORT": str(args.port),
                "REDLINE_KAFKA_CONTROLLER_PORT": str(args.port + 1),
                "REDLINE_KAFKA_TOPIC_PREFIX": "bench.", "REDLINE_KAFKA_HEAP_MB": "1024"})
    if args.partitions:
        env["REDLINE_KAFKA_PARTITIONS"] = str(args.partitions)
    if args.max_offsets:  # the same limit for bronze (config) and the other sinks
        env["REDLINE_INGEST_MAX_OFFSETS_PER_TRIGGER"] = str(args.max_offsets)
    env.pop("REDLINE_PROFILE", None)
    os.environ.update({k: env[k] for k in ("REDLINE_HOME",)})
    cfg = load("local", env)
    fresh_env = dict(env, REDLINE_KAFKA_TOPIC_PREFIX="fresh.")
    fresh_cfg = load("local", fresh_env)
    max_offsets = cfg.ingest.max_offsets_per_trigger
    results: dict = {
        "benchmark": "ingest", "started_at": datetime.now(UTC).isoformat(),
        "machine_start": machine(), "events": args.events,
        "settings": {"partitions": cfg.kafka.partitions, "producer_processes": args.producers,
                     "max_offsets_per_trigger": max_offsets, "kafka_heap_mb": cfg.kafka.heap_mb,
                     "spark_driver_memory": cfg.spark.driver_memory,
                     "spark_conf_file": cfg.spark.conf_file, "topic": TOPIC},
    }
    log(f"machine: {results['machine_start']['cores']} cores, load average "
        f"{results['machine_start']['load_average']}; state in {home}")
    broker = KafkaBroker(cfg)
    spark = None
    try:
        broker.start(progress=log)
        from kafka.version import __version__ as kafka_python_version

        from redline import jvm
        from redline.streaming.kafka_options import client_options, topic_name
        from redline.streaming.producer import ensure_topics, produce

        results["versions"] = {"kafka_broker": jvm.KAFKA_VERSION,
                               "kafka_python": kafka_python_version}
        conn = client_options(cfg, user="producer")
        ensure_topics(cfg)
        topic = topic_name(cfg, TOPIC)

        # 1. producers ----------------------------------------------------------------
        log("producer: simulator alone")
        results["simulator_only"] = simulator_rate(50_000)
        log(f"  {results['simulator_only']}")
        log("producer: simulator + streaming.producer.produce (the CLI's path), 30,000 events")
        from redline.streaming.simulator import SimulationSpec, Simulator

        probe_cfg = load("local", dict(env, REDLINE_KAFKA_TOPIC_PREFIX="probe."))
        ensure_topics(probe_cfg)
        sim_events = Simulator(SimulationSpec(vehicles=2000, days=60, seed=9)).events()
        limited = (e for n, e in zip(range(30_000), sim_events))
        rep = produce(probe_cfg, limited, progress=lambda _l: None)
        results["simulator_plus_producer"] = {
            "events": rep.total, "seconds": round(rep.seconds, 2),
            "events_per_s": round(rep.total / rep.seconds)}
        log(f"  {results['simulator_plus_producer']}")

        tmpl = templates(20_000)
        mean_bytes = sum(len(k) + len(b) + 36 + len(a) for k, b, a in tmpl) / len(tmpl)
        results["payload_mean_bytes"] = round(mean_bytes, 1)
        sweep = {}
        if args.sweep_events:
            from kafka.admin import KafkaAdminClient, NewTopic

            admin = KafkaAdminClient(**client_options(cfg, user="admin"))
            admin.create_topics([NewTopic("bench.sweep", cfg.kafka.partitions, 1)])
            admin.close()
            for name, settings in PRODUCER_CONFIGS.items():
                codec = settings.get("compression_type")
                if codec == "zstd" and importlib.util.find_spec("zstandard") is None:
                    log(f"  sweep {name}: skipped (kafka-python needs the zstandard package)")
                    continue
                r = pure_produce(conn, "bench.sweep", settings, tmpl, args.sweep_events, 1)
                sweep[f"{name}_x1"] = r
                log(f"  sweep {name} x1: {r['events_per_s']:,} ev/s, {r['mb_per_s']} MB/s")
            r = pure_produce(conn, "bench.sweep", PRODUCER_CONFIGS["idempotent_lz4"], tmpl,
                             args.sweep_events, args.producers)
            sweep[f"idempotent_lz4_x{args.producers}"] = r
            log(f"  sweep idempotent_lz4 x{args.producers}: {r['events_per_s']:,} ev/s")
        best = dict(PRODUCER_CONFIGS["idempotent_lz4"], linger_ms=50, batch_size=1024 * 1024)
        log(f"pre-producing {args.events:,} events with {args.producers} processes")
        pre = pure_produce(conn, topic, best, tmpl, args.events, args.producers)
        results["producer_sweep"] = sweep
        results["pre_produce"] = pre
        offsets = end_offsets(client_options(cfg, user="ingest"), topic)
        if offsets != args.events:
            raise RuntimeError(f"topic {topic} holds {offsets} records, expected {args.events}")
        log(f"  {pre['events_per_s']:,} ev/s, {pre['mb_per_s']} MB/s; end offsets = {offsets:,}")

        # 2. Kafka -> sinks ----------------------------------------------------------
        from redline.spark import build_session

        spark = build_session(cfg, app_name="redline-benchmark")
        spark.sparkContext.setLogLevel("WARN")
        results["versions"]["spark"] = spark.version
        import delta

        results["versions"]["delta_spark"] = getattr(delta, "__version__", None) or \
            __import__("importlib.metadata").metadata.version("delta-spark")
        lake = str(home / "lake")
        # Load Delta's and Parquet's writer classes once, so the first timed query does not
        # pay for class loading: the figures are meant as sustained rates.
        warm = spark.range(1000).selectExpr("id", "cast(id as string) as s")
        warm.write.format("delta").save(str(home / "warmup-delta"))
        warm.write.format("parquet").save(str(home / "warmup-parquet"))
        sinks = {}
        # Each sink runs once before the measured runs, so that none of them is measured
        # on a colder JVM (code not yet compiled) than another.
        warmups = {}
        for fmt in ("noop", "parquet", "delta"):
            log(f"Kafka -> {fmt} (warm-up, not measured)")
            warmups[fmt] = rates(run_bronze(spark, cfg, str(home / "lake-warmup"))
                                 if fmt == "delta" else
                                 run_sink(spark, cfg, lake, fmt, max_offsets), mean_bytes)
            log(f"  {warmups[fmt]}")
        results["sink_warmups"] = warmups
        log("Kafka -> bronze Delta (streaming.bronze.start, availableNow)")
        sinks["delta"] = rates(run_bronze(spark, cfg, lake), mean_bytes)
        log(f"  {sinks['delta']}")
        log("Kafka -> Parquet")
        sinks["parquet"] = rates(run_sink(spark, cfg, lake, "parquet", max_offsets), mean_bytes)
        log(f"  {sinks['parquet']}")
        log("Kafka -> noop")
        sinks["noop"] = rates(run_sink(spark, cfg, lake, "noop", max_offsets), mean_bytes)
        log(f"  {sinks['noop']}")
        for name, r in sinks.items():
            if r["rows"] != args.events:
                raise RuntimeError(f"{name} read {r['rows']} rows, expected {args.events}")
        results["sinks"] = sinks
        results["delta_over_noop"] = round(
            sinks["delta"]["events_per_s"] / sinks["noop"]["events_per_s"], 3)
        results["delta_over_parquet"] = round(
            sinks["delta"]["events_per_s"] / sinks["parquet"]["events_per_s"], 3)

        # 3. bronze -> silver -----------------------------------------------------------
        from redline.streaming import silver

        if not args.no_silver:
            log("bronze -> silver (streaming.silver.drain)")
            began = time.perf_counter()
            stats = silver.drain(spark, lake, TOPIC, totals=False)
            secs = time.perf_counter() - began
            if stats["silver"] != args.events:
                raise RuntimeError(f"silver got {stats['silver']} rows, expected {args.events}: "
                                   f"{stats}")
            results["bronze_to_silver"] = rates({"rows": stats["rows"], "seconds": round(secs, 2),
                                                 **stats}, mean_bytes)
            e2e = sinks["delta"]["seconds"] + secs
            results["kafka_to_silver"] = {"rows": stats["silver"], "seconds": round(e2e, 2),
                                          "events_per_s": round(stats["silver"] / e2e),
                                          "how": "bronze availableNow then silver availableNow, "
                                                 "sequential (redline ingest --available-now)"}
            log(f"  {results['bronze_to_silver']}; Kafka -> silver {results['kafka_to_silver']}")

        # 4. freshness ---------------------------------------------------------------
        if args.seconds > 0:
            log(f"freshness: {args.rate:,.0f} events/s for {args.warmup:.0f}+{args.seconds:.0f}"
                f" s with streaming.ingest.run continuous")
            results["freshness"] = freshness(spark, fresh_cfg, str(home / "lake-fresh"),
                                             args.rate, args.seconds, args.warmup)
            log(f"  {results['freshness']}")
    finally:
        if spark is not None:
            for q in spark.streams.active:
                q.stop()
            spark.stop()
        broker.stop(progress=log)
        if not args.keep:
            shutil.rmtree(home, ignore_errors=True)
    results["machine_end"] = machine()
    results["finished_at"] = datetime.now(UTC).isoformat()
    figures = {
        "kafka_to_bronze_events_per_s": results["sinks"]["delta"]["events_per_s"],
        "kafka_to_silver_events_per_s": results.get("kafka_to_silver", {}).get("events_per_s"),
        "delta_over_noop": results["delta_over_noop"],
        "freshness_p95_s": results.get("freshness", {}).get("p95_s"),
    }
    results["targets"] = {
        k: {"value": v, "target": f"{op} {t}",
            "met": None if v is None else (v >= t if op == ">=" else v <= t)}
        for k, v in figures.items() for op, t in [TARGETS[k]]}
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2, default=str))
    print_table(results)
    print(f"\nwritten to {out}")
    return 0


def print_table(r: dict) -> None:
    s = r["sinks"]
    rows = [
        ("simulator alone (no Kafka)", f"{r['simulator_only']['events_per_s']:,} ev/s", ""),
        ("simulator + producer.produce", f"{r['simulator_plus_producer']['events_per_s']:,} ev/s",
         ""),
        *[(f"kafka-python {k}", f"{v['events_per_s']:,} ev/s  {v['mb_per_s']} MB/s", "")
          for k, v in r.get("producer_sweep", {}).items()],
        (f"pre-produce x{r['pre_produce']['processes']} (lz4, idempotent)",
         f"{r['pre_produce']['events_per_s']:,} ev/s  {r['pre_produce']['mb_per_s']} MB/s", ""),
        *[(f"Kafka -> {k}", f"{v['events_per_s']:,} ev/s  {v['mb_per_s']} MB/s  "
           f"({v['seconds']} s)", "") for k, v in s.items()],
        *([("bronze -> silver", f"{r['bronze_to_silver']['events_per_s']:,} ev/s  "
            f"({r['bronze_to_silver']['seconds']} s)", "")] if "bronze_to_silver" in r else []),
        ("Delta / Parquet", f"{r['delta_over_parquet']}", ""),
    ]
    for k, t in r["targets"].items():
        met = {True: "MET", False: "MISSED", None: "not run"}[t["met"]]
        rows.append((k, f"{t['value']}", f"target {t['target']}: {met}"))
    if "freshness" in r:
        f = r["freshness"]
        rows.append(("freshness p50 / p95 / max", f"{f['p50_s']} / {f['p95_s']} / {f['max_s']} s",
                     f"{f['measured_events']:,} events at {f['achieved_rate']:,} ev/s"))
    print(f"\nredline ingest benchmark: {r['events']:,} events, {r['machine_start']['cores']} "
          f"cores, load {r['machine_start']['load_average']} -> "
          f"{r['machine_end']['load_average']}")
    width = max(len(a) for a, _, _ in rows)
    for a, b, c in rows:
        print(f"  {a:<{width}}  {b:<40} {c}")


if __name__ == "__main__":
    sys.exit(main())
