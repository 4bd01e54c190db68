"""The MLflow tracking server: SQLite backend store, local artifact store."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

import requests

from redline.config import Config
from redline.services.base import Service, http_ok


class MlflowServer(Service):
    name = "mlflow"
    start_timeout = 180.0

    def __init__(self, cfg: Config):
        super().__init__(cfg.home, cfg.mlflow.host, cfg.mlflow.port)
        self.cfg = cfg

    def command(self) -> Sequence[str]:
        mlflow_bin = Path(sys.executable).parent / "mlflow"
        return [str(mlflow_bin), "server",
                "--host", self.host, "--port", str(self.port),
                "--backend-store-uri", f"sqlite:///{self.dir / 'mlflow.db'}",
                "--artifacts-destination", str(self.dir / "artifacts"),
                "--workers", "1"]

    def check(self) -> bool:
        return http_ok(self.host, self.port)

    def version(self) -> str:
        try:
            r = requests.get(f"http://{self.address}/version", timeout=3)
            return "mlflow " + r.text.strip()
        except requests.RequestException:
            return "unknown"
