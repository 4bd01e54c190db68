"""Shared fixtures: one tuned Spark session, an isolated state folder and test ports.

Tests never touch the user's state folder or the default ports: the whole run uses a
temporary REDLINE_HOME and the ports below, so `make test` works while a demo runs.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import pytest

warnings.filterwarnings("ignore", category=DeprecationWarning)
# The test process works like redline's CLI, which sets umask 077 first thing: what it and
# its Spark session create in the state folder is private (test_security checks that).
os.umask(0o077)

# REDLINE_TEST_PORT_OFFSET shifts them all, so two test runs can share a machine.
_OFFSET = int(os.environ.get("REDLINE_TEST_PORT_OFFSET", "0"))
TEST_PORTS = {var: str(port + _OFFSET) for var, port in {
    "REDLINE_KAFKA_PORT": 19092,
    "REDLINE_KAFKA_CONTROLLER_PORT": 19093,
    # More than 500 from every other port: no clash whatever the two runs' offsets.
    "REDLINE_KAFKA_SSL_PORT": 16094,
    "REDLINE_THRIFT_PORT": 20000,
    "REDLINE_MLFLOW_PORT": 15000,
    "REDLINE_SUPERSET_PORT": 18088,
    # The managed object store (SeaweedFS): eight ports, each 600 apart from every other
    # port here so that no two offsets up to 500 make them meet.
    "REDLINE_OBJECTSTORE_S3_PORT": 23000,
    "REDLINE_OBJECTSTORE_S3_GRPC_PORT": 23600,
    "REDLINE_OBJECTSTORE_MASTER_PORT": 24200,
    "REDLINE_OBJECTSTORE_MASTER_GRPC_PORT": 24800,
    "REDLINE_OBJECTSTORE_VOLUME_PORT": 25400,
    "REDLINE_OBJECTSTORE_VOLUME_GRPC_PORT": 26000,
    "REDLINE_OBJECTSTORE_FILER_PORT": 26600,
    "REDLINE_OBJECTSTORE_FILER_GRPC_PORT": 27200,
    "REDLINE_SPARK_CLUSTER_MASTER_PORT": 17077,
    "REDLINE_SPARK_CLUSTER_WORKER_PORT": 17078,  # and 17079
    "REDLINE_SPARK_CLUSTER_MASTER_UI_PORT": 17080,
    "REDLINE_SPARK_CLUSTER_WORKER_UI_PORT": 17081,  # and 17082
}.items()}


@pytest.fixture(scope="session")
def test_home(tmp_path_factory) -> Path:
    home = Path(os.environ.get("REDLINE_TEST_HOME") or tmp_path_factory.mktemp("redline-home"))
    return home


@pytest.fixture(scope="session")
def cfg(test_home):
    from redline.config import load

    env = dict(os.environ)
    env.update(TEST_PORTS)
    env["REDLINE_HOME"] = str(test_home)
    env.pop("REDLINE_PROFILE", None)
    os.environ.update({k: env[k] for k in [*TEST_PORTS, "REDLINE_HOME"]})
    return load("local", env)


@pytest.fixture(scope="session")
def spark(cfg):
    from redline.spark import build_session

    session = build_session(cfg, app_name="redline-tests")
    session.conf.set("spark.sql.shuffle.partitions", "2")
    yield session
    session.stop()


@pytest.fixture
def lake(tmp_path) -> str:
    """A fresh, empty lake root for one test."""
    root = tmp_path / "lake"
    root.mkdir()
    return str(root)


# -- real services -------------------------------------------------------------------------
# The first test that needs any service starts all four at once (in parallel: the slow
# starts overlap) in the test state folder on the test ports; they stop when the test
# session ends.
@pytest.fixture(scope="session")
def services(request, cfg):
    from process_watch import CommandLineWatch

    from redline.services import managed, start_all

    running = managed(cfg)
    for svc in running:
        request.addfinalizer(svc.stop)
    with CommandLineWatch():  # test_security checks no secret was ever a command line
        start_all(running)
    return {svc.name: svc for svc in running}


@pytest.fixture(scope="session")
def kafka_broker(kafka_only):
    return kafka_only


@pytest.fixture(scope="session")
def kafka_only(request, cfg):
    """Just the broker: Kafka-only tests do not pay for the other three services.

    ``services`` starts the broker again later if a test needs all four; a start finds it
    running and reuses it, and stopping twice is harmless.
    """
    from process_watch import CommandLineWatch

    from redline.services.kafka import KafkaBroker

    broker = KafkaBroker(cfg)
    request.addfinalizer(broker.stop)
    with CommandLineWatch():
        broker.start()
    return broker


@pytest.fixture(scope="session")
def weed_built():
    """``make objectstore``: SeaweedFS and the S3A jars (idempotent)."""
    import subprocess

    from redline.config import PROJECT_ROOT

    subprocess.run(["make", "-s", "objectstore"], cwd=PROJECT_ROOT, check=True)


@pytest.fixture(scope="session")
def objectstore(request, cfg, weed_built):
    """The managed object store (SeaweedFS) in the test state folder."""
    from process_watch import CommandLineWatch

    from redline.services.objectstore import ObjectStore

    store = ObjectStore(cfg)
    request.addfinalizer(store.stop)
    with CommandLineWatch():  # no key may ever be a command line (test_objectstore)
        store.start()
    return store


@pytest.fixture(scope="session")
def mlflow_server(services):
    return services["mlflow"]


@pytest.fixture(scope="session")
def thrift_server(services):
    return services["spark-thrift"]


@pytest.fixture(scope="session")
def superset_server(services):
    return services["superset"]


@pytest.fixture
def stream_cfg(cfg, kafka_broker, lake, monkeypatch):
    """Config with this test's own topic prefix and lake (env too, for subprocesses)."""
    import uuid

    from redline.config import load
    from redline.streaming.producer import ensure_topics

    monkeypatch.setenv("REDLINE_KAFKA_TOPIC_PREFIX", f"st-{uuid.uuid4().hex[:8]}.")
    monkeypatch.setenv("REDLINE_LAKE_ROOT", lake)
    test_cfg = load()
    ensure_topics(test_cfg)
    return test_cfg
