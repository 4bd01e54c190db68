"""The same jobs on a Spark standalone cluster with an object-store lake and a SASL_SSL
broker as in local mode, and the cluster's drills.

A real standalone master and two workers (separate JVMs, one core each), started by
`redline up spark-cluster`'s code from the Spark that pyspark ships; a real SeaweedFS
holding the lake (`s3a://`: bronze, silver, gold, checkpoints and Delta logs); a real
broker whose clients use its SASL_SSL listener. `redline ingest`, `redline jobs run` and
`redline quality gate` run as subprocesses with the `cluster` profile of redline.toml,
pointed at these services by environment variables only: executors on the workers, the
broker reached as an external cluster (SCRAM user `ingest`, its CA as a PEM file). The
same Kafka topics go through the local profile (`local[*]`, a local lake), and every gold
table must be equal.

What runs on the cluster is what proves scale-out, on a small lake: the bronze and silver
streams of the four topics behind the gold jobs whose shuffles matter, SPC (windows over
each characteristic's series) and reliability (Weibull fits, rates and the warranty
triangle by group). The other gold jobs are the same code on the same session builder;
they are proven in local mode by the end-to-end demo and the Airflow DAG.

Drills: ingest killed with SIGKILL once mid-run (exactly-once still holds), and a worker
killed with SIGKILL (its executors die with it) while a gold job runs: the jobs complete
on the other worker with the same results.

Both runs leave gold's job-by-job audit off (``quality.audit_gold``): the same checks run
once at the end as the quality gate on the cluster's lake (write-audit-publish itself is
tested in tests/unit/test_write_audit_publish.py and by the end-to-end demo)."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from lake_listing import filer_list, lake_key
from waiting import exited, until

from redline import catalog, pipeline
from redline.services import start_all
from redline.services.kafka import password
from redline.services.spark_cluster import SparkWorker, cluster_services, master_state

pytestmark = [pytest.mark.cluster, pytest.mark.platform]

REDLINE = str(Path(sys.executable).parent / "redline")
VEHICLES, DAYS, SEED = 40, 21, 11
#: The gold jobs run on the cluster, and the topics behind them (their silver inputs).
JOBS = ("gold_spc", "gold_reliability")
TOPICS = ("station_results", "vehicle_builds", "warranty_claims", "vehicle_dtc")
#: One ingest or jobs run (each a few Spark jobs or streams) on a busy 2-core machine.
BUDGET_S = 1200


@pytest.fixture(scope="module")
def spark_cluster(request, cfg, objectstore):
    """The standalone cluster; after the object store, whose keys the workers hold."""
    services = cluster_services(cfg)
    for svc in services:
        request.addfinalizer(svc.stop)
    start_all(services)
    return services


@pytest.fixture(scope="module")
def tls_env(sasl_ssl_env) -> dict[str, str]:
    """The run's SASL_SSL broker (tests/conftest.py) with this module's own topics."""
    return {**os.environ, **sasl_ssl_env, "REDLINE_KAFKA_TOPIC_PREFIX": f"cl-{os.getpid()}."}


@pytest.fixture(scope="module")
def tls_broker(sasl_ssl_broker, tls_env):
    """The SASL_SSL broker's settings as this module's clients see them (its topics)."""
    from redline.config import load

    return load("local", tls_env)


@pytest.fixture(scope="module")
def topics_env(tls_broker, tls_env):
    """Simulated events in the SASL_SSL broker's topics; the environment of the local
    profile's runs."""
    # The fleet's own units only (no factory beyond it): the same small lake as before.
    out = subprocess.run([REDLINE, "simulate", "--vehicles", str(VEHICLES), "--days",
                          str(DAYS), "--seed", str(SEED), "--units-per-line-day", "0"],
                         env=tls_env, capture_output=True, text=True, timeout=900)
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    return tls_env


def cluster_env(cfg, tls_broker, lake: str) -> dict:
    """The `cluster` profile of redline.toml, aimed at this machine's cluster and at the
    SASL_SSL broker (``tls_broker``: its settings) as an external Kafka cluster (its CA
    given as a PEM file)."""
    kafka = tls_broker
    return {**os.environ, "REDLINE_PROFILE": "cluster",
            "REDLINE_SPARK_MASTER": cfg.spark_cluster.master_url,
            "REDLINE_LAKE_ROOT": lake,
            "REDLINE_LAKE_S3_ENDPOINT": cfg.objectstore.endpoint,
            "REDLINE_LAKE_S3_PATH_STYLE": "true",
            "REDLINE_KAFKA_TOPIC_PREFIX": kafka.kafka.topic_prefix,
            "REDLINE_KAFKA_BOOTSTRAP_SERVERS": f"{kafka.kafka.host}:{kafka.kafka.ssl_port}",
            "REDLINE_KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
            "REDLINE_KAFKA_SSL_CA_FILE": str(kafka.home / "secrets" / "kafka_ca.pem"),
            "REDLINE_KAFKA_SASL_MECHANISM": "SCRAM-SHA-512",
            "REDLINE_KAFKA_SASL_USERNAME": "ingest",
            "REDLINE_KAFKA_SASL_PASSWORD_ENV": "REDLINE_TEST_INGEST_PASSWORD",
            "REDLINE_TEST_INGEST_PASSWORD": password(kafka, "ingest"),
            "REDLINE_MLFLOW_TRACKING_URI": cfg.mlflow.uri}


def _start(env: dict, log: Path, *args: str) -> subprocess.Popen:
    out = log.open("ab")
    return subprocess.Popen([REDLINE, *args], env=env, stdout=out, stderr=subprocess.STDOUT,
                            start_new_session=True)


def _run(env: dict, log: Path, *args: str) -> None:
    proc = _start(env, log, *args)
    code = exited(proc, f"redline {' '.join(args)}", log=log, budget=BUDGET_S)
    text = log.read_text(errors="replace")
    assert code == 0, f"redline {' '.join(args)} exited {code}:\n{text[-4000:]}"
    assert "Traceback" not in text


def gold_tables(env: dict, *roots: str) -> dict:
    """Every gold table of each root, read by ``gold_rows.py`` in a driver of its own."""
    out = subprocess.run([sys.executable, str(Path(__file__).with_name("gold_rows.py")),
                          *roots], env=env, capture_output=True, text=True, timeout=1800)
    assert out.returncode == 0, out.stderr[-4000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def assert_same_lakes(env: dict, local_root: str, cluster_root: str) -> list[str]:
    """Bronze holds every Kafka record once in both lakes, and every gold table is equal;
    the gold tables that held rows."""
    lakes = gold_tables(env, local_root, cluster_root)
    bronze = lakes["_bronze"]
    assert bronze[cluster_root] and set(bronze[cluster_root]) == set(bronze[local_root])
    for name, (rows, distinct) in bronze[local_root].items():
        assert rows == distinct > 0, name
        assert bronze[cluster_root][name] == [rows, distinct], name
    local, remote = lakes[local_root], lakes[cluster_root]
    assert set(local) == set(remote)
    for name, rows in local.items():
        assert (rows is None) == (remote[name] is None), name
        if rows is not None:
            assert len(remote[name]) == len(rows), name
            assert remote[name] == rows, name
    return sorted(name for name, rows in local.items() if rows)


def assert_lake_in_bucket(cfg, root: str, gold: list[str]) -> None:
    """The store's own listing (SeaweedFS's filer, not Spark) holds each topic's bronze and
    silver checkpoints and every table's Delta log under ``root``."""
    for topic in TOPICS:
        for query in (f"bronze/{topic}", f"silver/{topic}"):
            ckpt = lake_key(cfg, catalog.checkpoint(root, query))
            assert {"commits", "offsets", "metadata"} <= set(filer_list(cfg, ckpt)), query
            assert "0" in filer_list(cfg, f"{ckpt}/commits"), query
    for table in _tables(gold):
        log = filer_list(cfg, f"{lake_key(cfg, catalog.location(root, table))}/_delta_log")
        assert "00000000000000000000.json" in log, (table.qualified_name, log)


def _tables(gold: list[str]) -> list:
    """The bronze and silver tables of ``TOPICS`` and the gold tables named."""
    return [catalog.bronze(t) for t in TOPICS] + [catalog.silver(t) for t in TOPICS] + \
        [catalog.get(name) for name in gold]


def _executor_hosts(cfg) -> list[str]:
    state = master_state(cfg) or {}
    return [w["id"] for w in state.get("workers", []) if w.get("coresused", 0) > 0]


def test_cluster_run_on_s3a_equals_local_run_and_survives_a_killed_worker(
        cfg, spark_cluster, objectstore, tls_broker, topics_env, tmp_path):
    local_root = str(tmp_path / "lake-local")
    cluster_root = f"s3a://{cfg.objectstore.bucket}/cluster-{os.getpid()}"
    no_audit = {"REDLINE_QUALITY_AUDIT_GOLD": "false"}
    local_env = {**topics_env, "REDLINE_LAKE_ROOT": local_root, **no_audit}
    remote_env = {**cluster_env(cfg, tls_broker, cluster_root), **no_audit}
    log = tmp_path / "redline.log"

    _run(local_env, log, "ingest", "--available-now", "--topics", *TOPICS)
    # --alone, as a scheduler runs them: ingest has landed silver, so the silver drains
    # that would run first find nothing (and cost a stream start each on the cluster).
    _run(local_env, log, "jobs", "run", *JOBS, "--alone")

    # Cluster ingest through the SASL_SSL listener into the object store, killed with
    # SIGKILL once a bronze batch is committed, then run again.
    commits = lake_key(cfg, catalog.checkpoint(cluster_root, f"bronze/{TOPICS[0]}")) \
        + "/commits"
    proc = _start(remote_env, log, "ingest", "--available-now", "--topics", *TOPICS)
    until(lambda: bool(filer_list(cfg, commits)), "a committed cluster bronze batch",
          proc=proc, log=log, budget=BUDGET_S, poll=0.2)
    assert _executor_hosts(cfg), "the ingest ran no executor on the workers"
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    _run(remote_env, log, "ingest", "--available-now", "--topics", *TOPICS)

    # The gold jobs on the cluster; a worker dies (SIGKILL to it and its executors) once
    # the first of them has started.
    mark = log.stat().st_size
    proc = _start(remote_env, log, "jobs", "run", *JOBS, "--alone")
    until(lambda: _gold_started(log, mark), "a cluster gold job started", proc=proc, log=log,
          budget=BUDGET_S, poll=0.2)
    victim = SparkWorker(cfg, 1)
    os.killpg(victim.pid(), signal.SIGKILL)
    code = exited(proc, "the gold jobs after a worker died", log=log, budget=BUDGET_S)
    assert code == 0, log.read_text(errors="replace")[-4000:]
    assert "Lost executor" in log.read_text(errors="replace")[mark:]
    start_all([victim])  # back for what follows

    check_env = {**os.environ, "REDLINE_LAKE_ROOT": cluster_root,
                 "REDLINE_LAKE_S3_ENDPOINT": cfg.objectstore.endpoint,
                 "REDLINE_LAKE_S3_PATH_STYLE": "true"}
    gold = assert_same_lakes(check_env, local_root, cluster_root)
    outputs = {t.qualified_name for job in JOBS for t in pipeline.steps()[job].outputs}
    assert set(gold) <= outputs, gold
    assert {"gold.spc_points", "gold.spc_subgroups", "gold.weibull_fits",
            "gold.dtc_rates", "gold.warranty_triangle"} <= set(gold), gold
    assert_lake_in_bucket(cfg, cluster_root, gold)
    _run(remote_env, log, "quality", "gate", "--tables",
         *[t.qualified_name for t in _tables(gold)])


def _gold_started(log: Path, mark: int) -> bool:
    """A gold step's first line (``[i/n] gold_x: <description>``) was printed."""
    text = log.read_text(errors="replace")[mark:]
    return bool(re.search(r"\[\d+/\d+\] gold_\w+: (?!done |skipped)", text))


def test_cluster_refuses_a_driver_without_its_secret(cfg, spark_cluster, tmp_path):
    """Without the shared secret a driver cannot register: nothing it sends runs."""
    marker = tmp_path / "ran"
    script = (
        "from pyspark.sql import SparkSession\n"
        f"s = SparkSession.builder.master({cfg.spark_cluster.master_url!r})"
        ".appName('intruder').getOrCreate()\n"
        f"s.sparkContext.parallelize([1], 1).foreach(lambda _: open({str(marker)!r}, 'w'))\n")
    env = {k: v for k, v in os.environ.items() if k != "PYSPARK_SUBMIT_ARGS"}
    env.update(SPARK_LOCAL_IP="127.0.0.1", PYSPARK_PYTHON=sys.executable)
    proc = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode != 0
    assert not marker.exists()
    apps = (master_state(cfg) or {}).get("activeapps", []) + \
        (master_state(cfg) or {}).get("completedapps", [])
    assert "intruder" not in [a["name"] for a in apps]
