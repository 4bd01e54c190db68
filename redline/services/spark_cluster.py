"""A Spark standalone cluster on this machine: one master and ``spark_cluster.workers``
workers, each its own JVM with its own cores and memory, started from the Spark that the
pyspark package ships (``bin/spark-class``), all bound to loopback.

A driver reaches it with ``spark.master = spark://<host>:<master_port>`` (the ``cluster``
profile with ``REDLINE_SPARK_MASTER``); its executors then run on the workers, not in the
driver's JVM. Every process of the cluster, and every driver, turns on
``spark.authenticate`` with one shared secret from the secrets folder
(``redline.spark.cluster_auth_file``), so nobody else on the machine can submit work to
it. The master's REST submission port is off and its web UI cannot kill applications.
"""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Sequence

from redline import secrets
from redline.config import Config
from redline.credentials import OBJECTSTORE_ACCESS_KEY, OBJECTSTORE_SECRET_KEY
from redline.s3a import ACCESS_KEY_ENV, SECRET_KEY_ENV
from redline.services.base import Service, service_environment
from redline.services.kafka import java_binary
from redline.spark import cluster_auth_file, spark_home

#: Settings of the master and the workers that are not secret (the command line is public).
_DAEMON_OPTIONS = ("-Dspark.master.rest.enabled=false -Dspark.ui.killEnabled=false "
                   "-Dspark.worker.cleanup.enabled=true")


def _spark_class() -> str:
    return str(spark_home() / "bin" / "spark-class")


def master_state(cfg: Config, timeout: float = 3.0) -> dict | None:
    """The master's own JSON view (status, workers, applications), or None when it does
    not answer."""
    c = cfg.spark_cluster
    try:
        with urllib.request.urlopen(f"http://{c.host}:{c.master_ui_port}/json/",
                                    timeout=timeout) as resp:
            return json.load(resp)
    except (OSError, ValueError):
        return None


class _Daemon(Service):
    start_timeout = 90.0

    def __init__(self, cfg: Config, port: int):
        super().__init__(cfg.home, cfg.spark_cluster.host, port)
        self.cfg = cfg

    def prepare(self) -> None:
        java_binary()
        cluster_auth_file(self.cfg)

    def environment(self) -> dict[str, str]:
        return service_environment({
            "SPARK_HOME": str(spark_home()), "SPARK_LOCAL_IP": self.host,
            "SPARK_LOG_DIR": str(self.dir), "SPARK_PID_DIR": str(self.dir),
            "SPARK_DAEMON_JAVA_OPTS": _DAEMON_OPTIONS, "SPARK_NO_DAEMONIZE": "1"})

    def version(self) -> str:
        import pyspark

        return f"spark {pyspark.__version__}"


class SparkMaster(_Daemon):
    name = "spark-master"

    def __init__(self, cfg: Config):
        super().__init__(cfg, cfg.spark_cluster.master_port)

    def ports(self) -> Sequence[int]:
        return (self.port, self.cfg.spark_cluster.master_ui_port)

    def command(self) -> Sequence[str]:
        c = self.cfg.spark_cluster
        return [_spark_class(), "org.apache.spark.deploy.master.Master",
                "--host", c.host, "--port", str(c.master_port),
                "--webui-port", str(c.master_ui_port),
                "--properties-file", str(cluster_auth_file(self.cfg))]

    def check(self) -> bool:
        state = master_state(self.cfg)
        return state is not None and state.get("status") == "ALIVE"


class SparkWorker(_Daemon):
    """Worker ``n`` (1-based) of the managed cluster."""

    def __init__(self, cfg: Config, n: int):
        self.n = n
        self.name = f"spark-worker-{n}"
        super().__init__(cfg, cfg.spark_cluster.worker_port + n - 1)
        self.ui_port = cfg.spark_cluster.worker_ui_port + n - 1

    def ports(self) -> Sequence[int]:
        return (self.port, self.ui_port)

    def command(self) -> Sequence[str]:
        c = self.cfg.spark_cluster
        return [_spark_class(), "org.apache.spark.deploy.worker.Worker", c.master_url,
                "--host", c.host, "--port", str(self.port),
                "--webui-port", str(self.ui_port),
                "--cores", str(c.worker_cores), "--memory", c.worker_memory,
                "--work-dir", str(self.dir / "work"),
                "--properties-file", str(cluster_auth_file(self.cfg))]

    def environment(self) -> dict[str, str]:
        """A worker's executors inherit its environment. When the managed object store's
        keys exist, the worker holds them, as a cloud node holds its instance role, so
        that executors reach an ``s3a://`` lake on it: never in a Spark setting."""
        env = super().environment()
        keys = [secrets.path_of(self.home, name)
                for name in (OBJECTSTORE_ACCESS_KEY, OBJECTSTORE_SECRET_KEY)]
        if all(k.exists() for k in keys):
            env[ACCESS_KEY_ENV] = secrets.read(self.home, OBJECTSTORE_ACCESS_KEY)
            env[SECRET_KEY_ENV] = secrets.read(self.home, OBJECTSTORE_SECRET_KEY)
        return env

    def check(self) -> bool:
        """Healthy once the master lists this worker as ALIVE."""
        state = master_state(self.cfg) or {}
        return any(w.get("port") == self.port and w.get("host") == self.host
                   and w.get("state") == "ALIVE" for w in state.get("workers", []))


def cluster_services(cfg: Config) -> list[Service]:
    """The master, then each worker."""
    return [SparkMaster(cfg), *(SparkWorker(cfg, n)
                                for n in range(1, cfg.spark_cluster.workers + 1))]
