"""Every credential redline generates, declared once: who uses it and where it lives.

The values stay in ``<home>/secrets`` (0600); this module names the files, never what is
in them. ``redline credentials`` and the demo's summary print this list.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from redline import secrets
from redline.config import Config


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
        Credential("superset", cfg.superset.admin_user, "superset_admin_password",
                   "Superset admin: edits dashboards, SQL Lab"),
        Credential("superset", cfg.superset.viewer_user, "superset_viewer_password",
                   "Superset read-only user for quality engineers"),
        Credential("spark-thrift", "redline", "thrift_password",
                   "Spark Thrift Server (HiveServer2, auth=CUSTOM): BI tools, beeline"),
    ]
    if not cfg.mlflow.tracking_uri:
        out.append(Credential("mlflow", "admin", "mlflow_admin_password",
                              "MLflow tracking server (basic auth)"))
    if cfg.kafka.managed:
        out += [
            Credential("kafka", "admin", "kafka_admin_password",
                       "Kafka super user: creates and deletes topics"),
            Credential("kafka", "producer", "kafka_producer_password",
                       "Kafka SCRAM user that writes events"),
            Credential("kafka", "ingest", "kafka_ingest_password",
                       "Kafka SCRAM user that reads events into the lake"),
        ]
    return out
