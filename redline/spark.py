"""The one place a SparkSession is built: from spark-conf/, at an entry point.

Library code never builds a session; it receives one. ``conf_entries`` is shared with the
Thrift Server launcher so that both JVMs run with the same settings.
"""

from __future__ import annotations

import os
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING

from redline import jvm, s3a
from redline.config import PROJECT_ROOT, Config
from redline.errors import RedlineError

if TYPE_CHECKING:
    from pyspark.sql import SparkSession


def conf_entries(cfg: Config) -> dict[str, str]:
    """Settings of the profile's spark-conf file with placeholders filled in."""
    path = PROJECT_ROOT / "spark-conf" / cfg.spark.conf_file
    if not path.exists():
        raise RedlineError("SPARK_CONF_MISSING", f"Spark settings file {path} does not exist")
    subst = {
        "${REDLINE_HOME}": str(cfg.home),
        "${REDLINE_CACHE}": str(cfg.cache),
        "${REDLINE_CONF}": str(PROJECT_ROOT / "spark-conf"),
        **s3a.placeholders(cfg),
    }
    out: dict[str, str] = {}
    for n, raw in enumerate(path.read_text().splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        parts = line.split(None, 1)
        if len(parts) != 2:
            raise RedlineError("SPARK_CONF_INVALID", f"{path}:{n}: expected 'key value': {raw!r}")
        key, value = parts
        placeholder = "${" in value
        for k, v in subst.items():
            value = value.replace(k, v)
        if placeholder and not value:
            continue  # an empty placeholder (no S3 endpoint, say) leaves the setting unset
        out[key] = value
    groups = ["spark", "s3a"] if s3a.is_s3a(cfg.lake_root) else ["spark"]
    jars = ",".join(str(j) for g in groups for j in jvm.jars(cfg.cache, g))
    out["spark.jars"] = ",".join(filter(None, [out.get("spark.jars", ""), jars]))
    return out


def on_this_machine(master: str) -> bool:
    """Whether a driver with ``master`` runs its executors on this machine: local mode, or
    a standalone master on loopback (the one ``redline up spark-cluster`` starts)."""
    if not master:
        # Under spark-submit the master is the one it was given, maybe a cluster's.
        return "PYSPARK_GATEWAY_PORT" not in os.environ
    if master.startswith("local"):
        return True
    host = master.split("://", 1)[-1].rsplit(":", 1)[0]
    return master.startswith("spark://") and host in ("127.0.0.1", "localhost")


_AUTH_FILE_LOCK = threading.Lock()


def cluster_auth_file(cfg: Config) -> Path:
    """A 0600 properties file in the secrets folder turning on ``spark.authenticate`` with
    the managed standalone cluster's shared secret (generated once).

    The master, the workers and every driver read it with ``--properties-file``; a worker
    hands the secret to its executors in their environment. Without it, anyone on this
    machine could submit code that runs as the cluster's user.
    """
    from redline import secrets
    from redline.credentials import SPARK_CLUSTER_SECRET

    with _AUTH_FILE_LOCK:  # the master and the workers start in parallel threads
        secret = secrets.get_or_create(cfg.home, SPARK_CLUSTER_SECRET)
        text = f"spark.authenticate true\nspark.authenticate.secret {secret}"
        path = secrets.path_of(cfg.home, SPARK_CLUSTER_SECRET + ".properties")
        if not path.exists() or secrets.read(cfg.home, path.name) != text:
            secrets.write(cfg.home, path.name, text, replace=True)
        return path


def prepare_environment(master: str = "") -> None:
    """On this machine, executors run this interpreter (it has pandas, mlflow) and every
    Spark process binds to loopback. On a cluster neither holds: executors run the Python
    of their image (``spark.pyspark.python`` in spark-conf/cluster.conf) and must reach
    the driver at its own address, so nothing is pinned."""
    os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
    if on_this_machine(master):
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
        os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")


def build_session(cfg: Config, app_name: str = "redline",
                  driver_java_options: str = "") -> SparkSession:
    """Build (or return the running) SparkSession for ``cfg``'s profile;
    ``driver_java_options`` are appended to the driver JVM's options."""
    from pyspark.sql import SparkSession

    entries = conf_entries(cfg)
    entries.setdefault("spark.driver.memory", cfg.spark.driver_memory)
    if driver_java_options:
        entries["spark.driver.extraJavaOptions"] = " ".join(filter(None, [
            entries.get("spark.driver.extraJavaOptions", ""), driver_java_options]))
    if cfg.spark.master:  # the profile's setting wins over its spark-conf file
        entries["spark.master"] = cfg.spark.master
    master = entries.get("spark.master", "")
    prepare_environment(master)
    if master == cfg.spark_cluster.master_url:
        # The managed cluster's shared secret reaches the driver in a 0600 properties file:
        # pyspark puts every builder setting on spark-submit's command line.
        os.environ.setdefault("PYSPARK_SUBMIT_ARGS",
                              f"--properties-file {cluster_auth_file(cfg)} pyspark-shell")
    (cfg.home / "derby").mkdir(parents=True, exist_ok=True)
    builder = SparkSession.builder.appName(app_name)
    for key, value in entries.items():
        builder = builder.config(key, value)
    s3a.export_credentials(cfg)  # before the JVM starts: it inherits this environment
    session = builder.getOrCreate()
    s3a.require_access(session, cfg)
    return session


def spark_home() -> Path:
    """SPARK_HOME of the pyspark package (spark-submit, the jars)."""
    import pyspark

    return Path(pyspark.__file__).parent
