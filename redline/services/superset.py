"""Apache Superset in its own virtualenv: SQLite metadata DB, gunicorn on 127.0.0.1.

Superset 6.1 cannot share the core environment (it caps sqlalchemy, pandas, numpy and
pyarrow), so it runs from ``<project>/.venv-superset`` (``make setup`` builds it from
``requirements-superset.txt``) and talks to the lake only over SQL, through the Spark
Thrift Server. Its settings are rendered from ``dashboards/superset_config.py``; the
secret key and the admin password are generated once and kept 0600 under
``<home>/secrets``.
"""

from __future__ import annotations

import os
import re
import subprocess
import time
from pathlib import Path
from typing import Callable, Mapping, Sequence

import requests

from redline import secrets
from redline.config import PROJECT_ROOT, Config
from redline.errors import RedlineError
from redline.services.base import Service, port_open

VENV = PROJECT_ROOT / ".venv-superset"
CONFIG_TEMPLATE = PROJECT_ROOT / "dashboards" / "superset_config.py"
SECRET_KEY_NAME = "superset_secret_key"
ADMIN_PASSWORD_NAME = "superset_admin_password"
DATA_CACHE_TIMEOUT_S = 30
_PLACEHOLDER = re.compile(r'"__REDLINE_[A-Z0-9_]+__"')

#: Written after the first start's db upgrade / create-admin / init have succeeded.
_INIT_MARKER = ".initialized"


def venv_bin(name: str) -> Path:
    """Path of ``name`` in the Superset virtualenv; a clear error when it is missing."""
    path = VENV / "bin" / name
    if not path.exists():
        raise RedlineError(
            "SUPERSET_MISSING",
            f"the Superset virtualenv is missing ({path} not found); run `make setup` "
            f"(it installs requirements-superset.txt into {VENV})")
    return path


def admin_credentials(cfg: Config) -> tuple[str, str]:
    """(user, password) of the Superset admin; the password is generated on first use.

    Callers must not log the password; point people at ``secrets.path_of`` instead.
    """
    return cfg.superset.admin_user, secrets.get_or_create(cfg.home, ADMIN_PASSWORD_NAME)


def render_config(template: str, values: Mapping[str, object]) -> str:
    """Fill the ``"__REDLINE_<NAME>__"`` placeholders of ``template`` with literals."""
    out = template
    for name, value in values.items():
        token = f'"__REDLINE_{name}__"'
        if token not in out:
            raise RedlineError("SUPERSET_CONFIG_TEMPLATE",
                               f"placeholder {token} is not in {CONFIG_TEMPLATE}")
        out = out.replace(token, repr(value))
    left = _PLACEHOLDER.search(out)
    if left:
        raise RedlineError("SUPERSET_CONFIG_TEMPLATE",
                           f"placeholder {left.group(0)} in {CONFIG_TEMPLATE} has no value")
    return out


class SupersetServer(Service):
    name = "superset"
    start_timeout = 240.0

    def __init__(self, cfg: Config):
        super().__init__(cfg.home, cfg.superset.host, cfg.superset.port)
        self.cfg = cfg
        self.config_file = self.dir / "superset_config.py"
        self.marker = self.dir / _INIT_MARKER
        self._progress: Callable[[str], None] = print

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    # -- configuration ---------------------------------------------------------------
    def config_text(self) -> str:
        secrets.get_or_create(self.cfg.home, SECRET_KEY_NAME, nbytes=48)
        return render_config(CONFIG_TEMPLATE.read_text(), {
            "SERVICE_DIR": str(self.dir),
            "SECRET_KEY_FILE": str(secrets.path_of(self.cfg.home, SECRET_KEY_NAME)),
            "DATA_CACHE_TIMEOUT": DATA_CACHE_TIMEOUT_S,
        })

    def environment(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items()
               if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "FLASK_APP")}
        env["VIRTUAL_ENV"] = str(VENV)
        env["PATH"] = f"{VENV / 'bin'}{os.pathsep}{env.get('PATH', '')}"
        env["SUPERSET_CONFIG_PATH"] = str(self.config_file)
        env["SUPERSET_HOME"] = str(self.dir / "data")
        env["FLASK_APP"] = "superset.app:create_app()"
        env["PYTHONUNBUFFERED"] = "1"
        return env

    def cli(self, *args: str, timeout: float = 600) -> subprocess.CompletedProcess:
        """Run ``superset <args>`` from the Superset venv with this server's config."""
        return subprocess.run([str(venv_bin("superset")), *args], env=self.environment(),
                              cwd=self.dir, capture_output=True, text=True, timeout=timeout)

    def _step(self, label: str, progress: Callable[[str], None], *args: str) -> None:
        began = time.monotonic()
        progress(f"superset: {label} ...")
        result = self.cli(*args)
        with self.log_file.open("a") as log:
            log.write(f"\n=== superset {args[0]} ===\n{result.stdout}{result.stderr}")
        if result.returncode != 0:
            raise RedlineError(
                "SUPERSET_INIT_FAILED",
                f"`superset {' '.join(args[:2])}` failed (exit {result.returncode}); "
                f"see {self.log_file}:\n{(result.stdout + result.stderr)[-3000:]}")
        progress(f"superset: {label} done in {time.monotonic() - began:.0f}s")

    def prepare(self) -> None:
        progress = self._progress
        venv_bin("gunicorn")
        (self.dir / "data").mkdir(parents=True, exist_ok=True)
        self.config_file.write_text(self.config_text())
        os.chmod(self.config_file, 0o600)
        if self.marker.exists():
            return
        user, password = admin_credentials(self.cfg)
        self._step("creating the metadata database (db upgrade, about a minute)", progress,
                   "db", "upgrade")
        self._step(f"creating admin user {user!r}", progress,
                   "fab", "create-admin", "--username", user, "--password", password,
                   "--firstname", "redline", "--lastname", "admin",
                   "--email", f"{user}@localhost")
        self._step("setting up roles and permissions (init)", progress, "init")
        self.marker.write_text(time.strftime("%Y-%m-%dT%H:%M:%S\n"))
        progress(f"superset: admin password is in "
                 f"{secrets.path_of(self.cfg.home, ADMIN_PASSWORD_NAME)}")

    def start(self, progress: Callable[[str], None] = print) -> None:
        # The base class calls prepare() without arguments; its slow first-run steps
        # report through the same progress callback as the rest of start().
        self._progress = progress
        super().start(progress)

    def command(self) -> Sequence[str]:
        return [str(venv_bin("gunicorn")),
                "--bind", f"{self.host}:{self.port}",
                "--workers", str(self.cfg.superset.workers),
                "--worker-class", "gthread", "--threads", "4",
                "--timeout", "300",
                "--limit-request-line", "0", "--limit-request-field_size", "0",
                "superset.app:create_app()"]

    def check(self) -> bool:
        if not port_open(self.host, self.port):
            return False
        try:
            return requests.get(f"{self.url}/health", timeout=5).status_code == 200
        except requests.RequestException:
            return False

    def version(self) -> str:
        version_file = next((VENV / "lib").glob(
            "python3*/site-packages/apache_superset-*.dist-info"), None)
        if version_file is None:
            return "unknown"
        return "superset " + version_file.name.split("-")[1].removesuffix(".dist-info")
