"""Every credential redline generates, declared once: who uses it and where it lives.

The values stay in ``<home>/secrets`` (0600); this module names the files, never what is
in them. The services take their user names and secret names from here;
``redline credentials`` and the demo's summary print the list.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from redline import secrets
from redline.config import Config

SUPERSET_ADMIN_SECRET = "superset_admin_password"
SUPERSET_VIEWER_SECRET = "superset_viewer_password"
THRIFT_USER, THRIFT_SECRET = "redline", "thrift_password"
MLFLOW_USER, MLFLOW_SECRET = "admin", "mlflow_admin_password"
KAFKA_ADMIN, KAFKA_PRODUCER, KAFKA_INGEST = "admin", "producer", "ingest"
KAFKA_USERS = (KAFKA_ADMIN, KAFKA_PRODUCER, KAFKA_INGEST)
#: The managed object store's one S3 identity (an access key and its secret key).
OBJECTSTORE_ACCESS_KEY, OBJECTSTORE_SECRET_KEY = ("objectstore_access_key",
                                                  "objectstore_secret_key")
#: The shared secret of the managed Spark standalone cluster (spark.authenticate).
SPARK_CLUSTER_SECRET = "spark_cluster_secret"


def kafka_secret(user: str) -> str:
    return f"kafka_{user}_password"


@dataclass(frozen=True)
class Credential:
    service: str
    user: str
    secret: str  # file name in <home>/secrets
    use: str

    def path(self, cfg: Config) -> Path:
        return secrets.path_of(cfg.home, self.secret)

    def as_dict(self, cfg: Config) -> dict:
        path = self.path(cfg)
        return {"service": self.service, "user": self.user, "file": str(path),
                "exists": path.exists(), "use": self.use}


def all_credentials(cfg: Config) -> list[Credential]:
    """The credentials of the services ``cfg`` manages (external ones bring their own)."""
    out = [
        Credential("superset", cfg.superset.admin_user, SUPERSET_ADMIN_SECRET,
                   "Superset admin: edits dashboards, SQL Lab"),
        Credential("superset", cfg.superset.viewer_user, SUPERSET_VIEWER_SECRET,
                   "Superset read-only user for quality engineers"),
        Credential("spark-thrift", THRIFT_USER, THRIFT_SECRET,
                   "Spark Thrift Server (HiveServer2, auth=CUSTOM): BI tools, beeline"),
    ]
    if not cfg.mlflow.tracking_uri:
        out.append(Credential("mlflow", MLFLOW_USER, MLFLOW_SECRET,
                              "MLflow tracking server (basic auth)"))
    if cfg.kafka.managed:
        uses = {KAFKA_ADMIN: "Kafka super user: creates and deletes topics",
                KAFKA_PRODUCER: "Kafka SCRAM user that writes events",
                KAFKA_INGEST: "Kafka SCRAM user that reads events into the lake"}
        out += [Credential("kafka", u, kafka_secret(u), uses[u]) for u in KAFKA_USERS]
    if cfg.lake_root.startswith("s3a://") and \
            cfg.lake.s3_endpoint.rstrip("/") == cfg.objectstore.endpoint:
        out.append(Credential("objectstore", f"(access key in {OBJECTSTORE_ACCESS_KEY})",
                              OBJECTSTORE_SECRET_KEY,
                              "S3 identity of the managed object store (the lake's bucket); "
                              "redline exports it as AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY "
                              "to its own Spark driver"))
    return out
