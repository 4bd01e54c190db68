"""Shared fixtures: one tuned Spark session, an isolated state folder and test ports.

Tests never touch the user's state folder or the default ports: the whole run uses a
temporary REDLINE_HOME and the ports below, so `make test` works while a demo runs.

One set of services per run, shared by every process of it:
- `make test` runs two pytest-xdist workers. Both use one state folder (the controller
  makes it and passes it down as ``REDLINE_TEST_HOME``); the first worker that needs a
  service starts it under a file lock, the other finds it healthy and reuses it, and the
  controller stops them when both are done. The modules of ``LAKE_SQL_MODULES`` run one
  after another on one worker; every other module stays whole on one worker, and the
  workers take the next module as they free up (``pytest_xdist_make_scheduler``).
- `.ci/run` points its three stages (`make test`, `make test-drills`, `make test-cluster`)
  at one state folder and sets ``REDLINE_TEST_KEEP_SERVICES=1``: a stage ending leaves the
  services running for the next, and `.ci/run` stops them when it exits.
A test that stops or kills a session service starts it again before it ends.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import sys
import tempfile
import warnings
from contextlib import contextmanager
from pathlib import Path

import pytest

warnings.filterwarnings("ignore", category=DeprecationWarning)
# An xdist worker's __main__ is code execnet ran, with neither __spec__ nor __file__:
# pyspark.sql.connect (which Great Expectations imports) takes that for a doctest run and
# calls sys.exit(0) on import. It gets an empty module of its own (multiprocessing's spawn
# runs that file in each child): tests/xdist_main.py.
_main = sys.modules["__main__"]
if getattr(_main, "__spec__", None) is None and not hasattr(_main, "__file__"):
    _main.__file__ = str(Path(__file__).with_name("xdist_main.py"))
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


#: Leave the session's services running when the run ends (`.ci/run`'s next stage reuses
#: them, and `.ci/run` stops them at its end).
KEEP_SERVICES = os.environ.get("REDLINE_TEST_KEEP_SERVICES", "") not in ("", "0")
#: The modules that point the Thrift Server's table names at a lake of their own (the
#: demo, the dashboards' hand-made rows, `redline ingest` of the ingest tests), deploy the
#: dashboards, or read through the Thrift Server and Superset what those registered: the
#: server maps a name to one lake at a time, so these run one after another, on one
#: worker. Paths from the rootdir, as pytest's node ids give them.
LAKE_SQL_MODULES = frozenset({
    "tests/e2e/test_end_to_end.py", "tests/integration/test_dashboards.py",
    "tests/integration/test_security.py", "tests/integration/test_alerts.py",
    "tests/integration/test_streaming.py", "tests/integration/test_ingest.py",
    "tests/integration/test_kafka_faults.py",
})
#: Command lines seen while services started, in the test state folder: the worker that
#: started a service may not be the one whose test reads them (test_security).
SEEN_FILE = ".command-lines-seen.jsonl"


def _worker() -> str | None:
    """This process's xdist worker id (gw0, gw1, ...), or None outside xdist."""
    return os.environ.get("PYTEST_XDIST_WORKER")


def _xdist_controller(config) -> bool:
    return _worker() is None and bool(getattr(config.option, "numprocesses", None))


def pytest_configure(config):
    """The controller of an xdist run makes the one state folder its workers share."""
    if _xdist_controller(config) and not os.environ.get("REDLINE_TEST_HOME"):
        home = tempfile.mkdtemp(prefix="redline-test-home-")
        os.environ["REDLINE_TEST_HOME"] = home
        config.stash[_OWNED_HOME] = home


_OWNED_HOME = pytest.StashKey[str]()


def pytest_unconfigure(config):
    """The xdist controller stops the services its workers shared (unless kept) and removes
    the state folder it made."""
    if not _xdist_controller(config) or KEEP_SERVICES:
        return
    home = os.environ.get("REDLINE_TEST_HOME")
    if home and Path(home).is_dir():
        from redline.config import load
        from redline.services import managed, running_optional

        shared = load("local", {**os.environ, **TEST_PORTS, "REDLINE_HOME": home})
        for svc in reversed([*managed(shared), *running_optional(shared)]):
            svc.stop(progress=lambda _: None)
    owned = config.stash.get(_OWNED_HOME, None)
    if owned:
        shutil.rmtree(owned, ignore_errors=True)


def _stop_at_end(request, service) -> None:
    """Stop ``service`` when this pytest process ends, unless it is shared beyond it."""
    if not KEEP_SERVICES and _worker() is None:
        request.addfinalizer(service.stop)


@contextmanager
def _starting(cfg):
    """One process at a time starts the shared services (the others then reuse them);
    what the command-line watch saw is kept in the state folder."""
    from process_watch import CommandLineWatch

    cfg.home.mkdir(parents=True, exist_ok=True)
    with open(cfg.home / ".services.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        with CommandLineWatch(record=cfg.home / SEEN_FILE):
            yield


def pytest_collection_modifyitems(items):
    """Mark every test that uses the Spark session (directly or through a fixture):
    `make test-unit` runs the unit tests that start no JVM."""
    for item in items:
        if "spark" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.spark)


def pytest_xdist_make_scheduler(config, log):
    """Under xdist, a module is the unit of work (its module fixtures run once), and the
    modules of ``LAKE_SQL_MODULES`` are one unit together. (xdist's own ``loadgroup`` does
    not group under pytest 9.2, whose node ids are read-only.)"""
    from xdist.scheduler import LoadScopeScheduling

    class ByModule(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            module = nodeid.split("::", 1)[0]
            return "lake-sql" if module in LAKE_SQL_MODULES else module

    return ByModule(config, log)


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
    from redline.services import managed, start_all

    running = managed(cfg)
    for svc in running:
        _stop_at_end(request, svc)
    with _starting(cfg):  # test_security checks no secret was ever a command line
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
    from redline.services.kafka import KafkaBroker

    broker = KafkaBroker(cfg)
    _stop_at_end(request, broker)
    with _starting(cfg):
        broker.start()
    return broker


@pytest.fixture(scope="session")
def sasl_ssl_env(tmp_path_factory) -> dict[str, str]:
    """Settings of the run's SASL_SSL broker: its own state folder and free ports (the
    session broker keeps the default SASL_PLAINTEXT profile, which other tests check).
    A module sets its own ``REDLINE_KAFKA_TOPIC_PREFIX`` over these."""
    from kafka_env import sasl_ssl_broker_env

    return sasl_ssl_broker_env(tmp_path_factory.mktemp("kafka-tls-home"), "tls.")


@pytest.fixture(scope="session")
def sasl_ssl_broker(request, cfg, sasl_ssl_env):
    """The one broker whose clients use its SASL_SSL listener (test_kafka_tls and the
    cluster test); ``cfg`` first, so the session's settings are in the environment."""
    from process_watch import CommandLineWatch

    from redline.config import load
    from redline.services.kafka import KafkaBroker

    broker = KafkaBroker(load("local", {**os.environ, **sasl_ssl_env}))
    request.addfinalizer(broker.stop)
    with CommandLineWatch():  # test_kafka_tls checks no secret was ever a command line
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
    request.addfinalizer(store.stop)  # the last stage's service: nothing after it needs it
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
