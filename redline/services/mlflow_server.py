"""The MLflow tracking server: SQLite backend store, local artifact store, basic auth.

The server runs MLflow's ``basic-auth`` app: every request but ``/health`` needs a user and
password, and a user gets no permission on anything it did not create
(``default_permission = NO_PERMISSIONS``). redline's clients log in as the admin, whose
password is generated once into ``<home>/secrets/mlflow_admin_password``; ``tracking_uri``
hands it to MLflow's client through this process's own environment, never a command line.
The auth settings are written 0600 into the service folder, next to the user database
``basic_auth.db``. MLflow needs the admin password only to create the admin, so only a
start that finds no admin in that database writes it there (``admin_password``, which
MLflow reads at start); once the server answers, the settings are written again without
it. No password is in a process's environment. The Flask secret key of MLflow's CSRF
tokens is: MLflow reads it only from ``MLFLOW_FLASK_SERVER_SECRET_KEY``, and ``mlflow
server`` passes it to its uvicorn worker through the worker's environment whatever we do
(``mlflow/server/__init__.py``, ``_run_server``), so ``/proc/PID/environ`` of both shows it
to their user and root; docs/security.md says so.

MLflow 3.17 also starts a job runner and seven huey worker processes (about 1.9 GiB) for
GenAI jobs redline never submits: ``MLFLOW_SERVER_ENABLE_JOB_EXECUTION=false`` turns them off.
"""

from __future__ import annotations

import os
import sqlite3
import sys
from collections.abc import Callable, Sequence
from contextlib import closing
from pathlib import Path

import requests

from redline import credentials, secrets
from redline.config import Config
from redline.errors import RedlineError
from redline.services.base import Service, http_ok, service_environment

ADMIN_USER, ADMIN_PASSWORD_NAME = credentials.MLFLOW_USER, credentials.MLFLOW_SECRET
FLASK_SECRET_KEY_NAME = "mlflow_flask_secret_key"
AUTH_DB = "basic_auth.db"
AUTH_CONFIG = "basic_auth.ini"


def admin_credentials(cfg: Config) -> tuple[str, str]:
    """(user, password) of the managed server's admin; the password is generated on first use.

    Callers must not log the password; point people at ``secrets.path_of`` instead.
    """
    return ADMIN_USER, secrets.get_or_create(cfg.home, ADMIN_PASSWORD_NAME)


def tracking_uri(cfg: Config) -> str:
    """The tracking URI for MLflow's client, with the credentials it needs in place.

    For the managed server, the admin's user and password go into this process's
    ``MLFLOW_TRACKING_USERNAME`` / ``MLFLOW_TRACKING_PASSWORD``, where MLflow's client reads
    them. An external server (``mlflow.tracking_uri``) keeps whatever those variables, or
    MLflow's credentials file, say.
    """
    if not cfg.mlflow.tracking_uri:
        user, password = admin_credentials(cfg)
        os.environ["MLFLOW_TRACKING_USERNAME"] = user
        os.environ["MLFLOW_TRACKING_PASSWORD"] = password
    return cfg.mlflow.uri


def auth_config_text(database: Path, admin_user: str, admin_password: str | None = None) -> str:
    """MLflow's basic-auth settings (``mlflow/server/auth/basic_auth.ini``'s keys); with
    ``admin_password`` only for the start that creates the admin."""
    if admin_password is not None and ("\n" in admin_password or "%" in admin_password):
        raise ValueError("an MLflow admin password with a newline or % cannot go in an "
                         "INI file")
    return (
        "# Written by redline (redline/services/mlflow_server.py) at every start.\n"
        "[mlflow]\n"
        "default_permission = NO_PERMISSIONS\n"
        f"database_uri = sqlite:///{database}\n"
        f"admin_username = {admin_user}\n"
        + (f"admin_password = {admin_password}\n" if admin_password is not None else "")
        + "authorization_function = mlflow.server.auth:authenticate_request_basic_auth\n"
        "grant_default_workspace_access = false\n")


class MlflowServer(Service):
    name = "mlflow"
    start_timeout = 180.0

    def __init__(self, cfg: Config):
        super().__init__(cfg.home, cfg.mlflow.host, cfg.mlflow.port)
        self.cfg = cfg
        self.auth_db = self.dir / AUTH_DB
        self.auth_config = self.dir / AUTH_CONFIG

    def prepare(self) -> None:
        password = admin_credentials(self.cfg)[1]
        self._write_auth_config(None if self.admin_exists() else password)

    def _write_auth_config(self, admin_password: str | None) -> None:
        tmp = self.auth_config.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(auth_config_text(self.auth_db, ADMIN_USER, admin_password))
        os.replace(tmp, self.auth_config)

    def admin_exists(self) -> bool:
        """Whether MLflow's user database already has the admin (then MLflow ignores any
        admin password it is given)."""
        if not self.auth_db.exists():
            return False
        try:
            with closing(sqlite3.connect(f"file:{self.auth_db}?mode=ro", uri=True)) as db:
                row = db.execute("SELECT 1 FROM users WHERE username = ?",
                                 (ADMIN_USER,)).fetchone()
        except sqlite3.Error:
            return False  # no users table yet: MLflow creates it and the admin
        return row is not None

    def command(self) -> Sequence[str]:
        mlflow_bin = Path(sys.executable).parent / "mlflow"
        return [str(mlflow_bin), "server",
                "--host", self.host, "--port", str(self.port),
                "--backend-store-uri", f"sqlite:///{self.dir / 'mlflow.db'}",
                "--artifacts-destination", str(self.dir / "artifacts"),
                "--app-name", "basic-auth",
                "--workers", "1"]

    def environment(self) -> dict[str, str]:
        env = {
            "MLFLOW_AUTH_CONFIG_PATH": str(self.auth_config),
            # The basic-auth app refuses to start without a fixed key for its CSRF tokens.
            "MLFLOW_FLASK_SERVER_SECRET_KEY": secrets.get_or_create(
                self.cfg.home, FLASK_SECRET_KEY_NAME, nbytes=48),
            "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",
        }
        return service_environment(env)

    def start(self, progress: Callable[[str], None] = print) -> None:
        try:
            super().start(progress)
        finally:
            # The admin exists now (or the start failed): the password leaves the settings.
            self._write_auth_config(None)
        self.check_credentials()
        progress(f"mlflow: user {ADMIN_USER!r}; password in "
                 f"{secrets.path_of(self.cfg.home, ADMIN_PASSWORD_NAME)}")

    def check_credentials(self) -> None:
        """Raise when the running server refuses the admin password redline holds.

        MLflow reads the admin password of its settings only to create the admin; if the
        secret changed after that, the user database still has the old one.
        """
        user, password = admin_credentials(self.cfg)
        try:
            r = requests.get(f"http://{self.address}/api/2.0/mlflow/users/get",
                             params={"username": user}, auth=(user, password), timeout=30)
        except requests.RequestException as exc:
            raise RedlineError("MLFLOW_AUTH_CHECK",
                               f"MLflow on {self.address} did not answer the admin's login "
                               f"check ({type(exc).__name__}); see {self.log_file}") from exc
        if r.status_code == 200:
            return
        if r.status_code == 401:
            self.stop(progress=lambda _: None)
            secret = secrets.path_of(self.cfg.home, ADMIN_PASSWORD_NAME)
            raise RedlineError(
                "MLFLOW_AUTH_MISMATCH",
                f"MLflow refused the admin user {user!r} with the password in {secret}: it "
                f"changed after MLflow's user database {self.auth_db} was created, and "
                f"MLflow keeps the first one. Put the old password back in {secret}, or "
                f"delete {self.auth_db} (MLflow's users and permissions; runs and models "
                f"stay) to create the admin again; then `redline up mlflow`. MLflow was "
                f"stopped.")
        raise RedlineError(
            "MLFLOW_AUTH_CHECK",
            f"MLflow on {self.address} answered HTTP {r.status_code} to the admin's login "
            f"check: it runs without redline's login settings (started by an older redline?); "
            f"restart it: `redline down mlflow && redline up mlflow`")

    def check(self) -> bool:
        return http_ok(self.host, self.port)  # /health needs no login

    def version(self) -> str:
        try:
            r = requests.get(f"http://{self.address}/version", timeout=3,
                             auth=admin_credentials(self.cfg))
            return "mlflow " + r.text.strip() if r.ok else "unknown"
        except requests.RequestException:
            return "unknown"
