"""The same jobs on a Spark standalone cluster with an object-store lake and a SASL_SSL
broker as in local mode, and the cluster's drills.

A real standalone master and two workers (separate JVMs, one core each), started by
`redline up spark-cluster`'s code from the Spark that pyspark ships; a real SeaweedFS
holding the lake (`s3a://`: bronze, silver, gold, checkpoints and Delta logs); a real
broker whose clients use its SASL_SSL listener. `redline ingest`, `redline jobs run all`
and `redline quality gate` run as subprocesses with the `cluster` profile of
redline.toml, pointed at these services by environment variables only: executors on the
workers, the broker reached as an external cluster (SCRAM user `ingest`, its CA as a PEM
file). The same Kafka topics go through the local profile (`local[*]`, a local lake), and
every gold table must be equal.

Drills: ingest killed with SIGKILL once mid-run (exactly-once still holds), and a worker
killed with SIGKILL (its executors die with it) while `jobs run all` runs: the job
completes on the other worker with the same results.

Both runs leave gold's job-by-job audit off (``quality.audit_gold``): the same checks run
once at the end as the quality gate on the cluster's lake, and the audit would add about
a few minutes of Great Expectations runs to the test (write-audit-publish itself is tested
in tests/unit/test_write_audit_publish.py and, with the scheduler, in test_airflow.py)."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from kafka_env import sasl_ssl_broker_env
from lake_listing import filer_list, lake_key
from waiting import exited, until

from redline import catalog
from redline.schemas.payloads import SIMULATED_TOPICS
from redline.services import start_all
from redline.services.kafka import password
from redline.services.spark_cluster import SparkWorker, cluster_services, master_state

pytestmark = pytest.mark.cluster

REDLINE = str(Path(sys.executable).parent / "redline")
VEHICLES, DAYS, SEED = 40, 21, 11
#: A whole `jobs run all` (19 steps, each a Spark job or a stream) on a busy 2-core machine.
BUDGET_S = 2400


@pytest.fixture(scope="module")
def spark_cluster(request, cfg, objectstore):
    """The standalone cluster; after the object store, whose keys the workers hold."""
    services = cluster_services(cfg)
    for svc in services:
        request.addfinalizer(svc.stop)
    start_all(services)
    return services


@pytest.fixture(scope="module")
def tls_env(cfg, tmp_path_factory) -> dict[str, str]:
    """A broker of this module's own whose clients use its SASL_SSL listener."""
    return {**os.environ, **sasl_ssl_broker_env(tmp_path_factory.mktemp("cluster-kafka-home"),
                                                f"cl-{os.getpid()}.")}


@pytest.fixture(scope="module")
def tls_broker(request, cfg, tls_env):
    from redline.config import load
    from redline.services.kafka import KafkaBroker

    broker = KafkaBroker(load("local", tls_env))
    request.addfinalizer(broker.stop)
    broker.start()
    return broker


@pytest.fixture(scope="module")
def topics_env(tls_broker, tls_env):
    """Simulated events in the SASL_SSL broker's topics; the environment of the local
    profile's runs."""
    out = subprocess.run([REDLINE, "simulate", "--vehicles", str(VEHICLES), "--days",
                          str(DAYS), "--seed", str(SEED)], env=tls_env, capture_output=True,
                         text=True, timeout=900)
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    return tls_env


def cluster_env(cfg, tls_broker, lake: str) -> dict:
    """The `cluster` profile of redline.toml, aimed at this machine's cluster and at the
    SASL_SSL broker as an external Kafka cluster (its CA given as a PEM file)."""
    kafka = tls_broker.cfg
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
    for topic in SIMULATED_TOPICS:
        for query in (f"bronze/{topic}", f"silver/{topic}"):
            ckpt = lake_key(cfg, catalog.checkpoint(root, query))
            assert {"commits", "offsets", "metadata"} <= set(filer_list(cfg, ckpt)), query
            assert "0" in filer_list(cfg, f"{ckpt}/commits"), query
    tables = [catalog.bronze(t) for t in SIMULATED_TOPICS] + \
        [catalog.silver(t) for t in SIMULATED_TOPICS] + [catalog.get(name) for name in gold]
    for table in tables:
        log = filer_list(cfg, f"{lake_key(cfg, catalog.location(root, table))}/_delta_log")
        assert "00000000000000000000.json" in log, (table.qualified_name, log)


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

    _run(local_env, log, "ingest", "--available-now", "--topics", *SIMULATED_TOPICS)
    _run(local_env, log, "jobs", "run", "all")

    # Cluster ingest through the SASL_SSL listener into the object store, killed with
    # SIGKILL once a bronze batch is committed, then run again.
    commits = lake_key(cfg, catalog.checkpoint(cluster_root, "bronze/vehicle_telemetry")) \
        + "/commits"
    proc = _start(remote_env, log, "ingest", "--available-now", "--topics", *SIMULATED_TOPICS)
    until(lambda: bool(filer_list(cfg, commits)), "a committed cluster bronze batch",
          proc=proc, log=log, budget=BUDGET_S, poll=0.2)
    assert _executor_hosts(cfg), "the ingest ran no executor on the workers"
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    _run(remote_env, log, "ingest", "--available-now", "--topics", *SIMULATED_TOPICS)

    # jobs run all on the cluster; a worker dies (SIGKILL to it and its executors) while
    # the gold jobs run.
    mark = log.stat().st_size
    proc = _start(remote_env, log, "jobs", "run", "all")
    until(lambda: _gold_started(log, mark), "cluster gold jobs started", proc=proc, log=log,
          budget=BUDGET_S)
    victim = SparkWorker(cfg, 1)
    os.killpg(victim.pid(), signal.SIGKILL)
    code = exited(proc, "jobs run all after a worker died", log=log, budget=BUDGET_S)
    assert code == 0, log.read_text(errors="replace")[-4000:]
    assert "Lost executor" in log.read_text(errors="replace")[mark:]
    start_all([victim])  # back for what follows

    check_env = {**os.environ, "REDLINE_LAKE_ROOT": cluster_root,
                 "REDLINE_LAKE_S3_ENDPOINT": cfg.objectstore.endpoint,
                 "REDLINE_LAKE_S3_PATH_STYLE": "true"}
    gold = assert_same_lakes(check_env, local_root, cluster_root)
    assert len(gold) >= 8, gold
    assert_lake_in_bucket(cfg, cluster_root, gold)
    _run(remote_env, log, "quality", "gate")


def _gold_started(log: Path, mark: int) -> bool:
    text = log.read_text(errors="replace")[mark:]
    return bool(re.search(r"\[\d+/\d+\] gold_\w+: done", text))


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
