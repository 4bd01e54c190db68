"""The one place a SparkSession is built: from spark-conf/, at an entry point.

Library code never builds a session; it receives one. ``conf_entries`` is shared with the
Thrift Server launcher so that both JVMs run with the same settings.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from redline import jvm
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
        for k, v in subst.items():
            value = value.replace(k, v)
        out[key] = value
    jars = ",".join(str(j) for j in jvm.jars(cfg.cache, "spark"))
    out["spark.jars"] = ",".join(filter(None, [out.get("spark.jars", ""), jars]))
    return out


def prepare_environment() -> None:
    """Workers must run this interpreter (it has pandas, mlflow); bind to loopback."""
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")


def build_session(cfg: Config, app_name: str = "redline") -> SparkSession:
    """Build (or return the running) SparkSession for ``cfg``'s profile."""
    from pyspark.sql import SparkSession

    prepare_environment()
    (cfg.home / "derby").mkdir(parents=True, exist_ok=True)
    builder = SparkSession.builder.appName(app_name)
    entries = conf_entries(cfg)
    entries.setdefault("spark.driver.memory", cfg.spark.driver_memory)
    for key, value in entries.items():
        builder = builder.config(key, value)
    return builder.getOrCreate()


def spark_home() -> Path:
    """SPARK_HOME of the pyspark package (spark-submit, the jars)."""
    import pyspark

    return Path(pyspark.__file__).parent
