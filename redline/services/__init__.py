"""The local services redline manages, in start order."""

from __future__ import annotations

from redline.config import Config
from redline.services.base import Service

NAMES = ("kafka", "mlflow", "spark-thrift", "superset")
#: Started only when named (`redline up spark-cluster`): a Spark standalone master and its
#: workers, for the cluster profile on this machine; SeaweedFS; the continuous pipeline
#: (`redline up pipeline`, after the services it reads).
OPTIONAL = ("spark-cluster", "objectstore", "pipeline")


def managed(cfg: Config, names: tuple[str, ...] | list[str] = NAMES) -> list[Service]:
    """Service objects for ``names`` (skipping those configured as external)."""
    from redline.services.kafka import KafkaBroker
    from redline.services.mlflow_server import MlflowServer
    from redline.services.spark_cluster import cluster_services
    from redline.services.superset import SupersetServer
    from redline.services.thrift import ThriftServer

    make = {"kafka": KafkaBroker, "mlflow": MlflowServer, "spark-thrift": ThriftServer,
            "superset": SupersetServer}
    out = []
    for name in NAMES:
        if name not in names:
            continue
        if name == "kafka" and not cfg.kafka.managed:
            continue
        if name == "mlflow" and cfg.mlflow.tracking_uri:
            continue
        out.append(make[name](cfg))
    if "spark-cluster" in names:
        out += cluster_services(cfg)
    if "objectstore" in names:  # SeaweedFS for an s3a:// lake (`make objectstore` installs it)
        from redline.services.objectstore import ObjectStore

        out.append(ObjectStore(cfg))
    if "pipeline" in names:
        from redline.services.pipeline import PipelineService

        out.append(PipelineService(cfg))
    return out


def running_optional(cfg: Config) -> list[Service]:
    """The optional services that have a process running (status and `down` include
    them)."""
    return [svc for svc in managed(cfg, OPTIONAL) if svc.pid_file.exists()]


def start_all(services: list[Service], progress=print) -> None:
    """Start ``services`` concurrently (they do not depend on each other to start).

    Waits for all of them; if any fails, raises the first failure after the others
    finished starting, so nothing is left half-started without being reported.
    """
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=max(1, len(services))) as pool:
        futures = [pool.submit(svc.start, progress) for svc in services]
        errors = [f.exception() for f in futures if f.exception() is not None]
    if errors:
        raise errors[0]
