"""Deploy the dashboards kept as code (``dashboards/spec``) to the running Superset.

``bundle.build`` writes Superset's export format (v1) with stable UUIDs, so deploying
again updates the same objects instead of adding copies; ``import_bundle.py`` imports it
as ``superset import-directory --overwrite`` does (``import-dashboards`` leaves existing
charts and datasets untouched) and hands Superset the Thrift Server's password on stdin. Tables the dashboards read that no job has written yet get an empty
placeholder view in the Thrift Server, so their charts say "no results" instead of
failing. Then the read-only role and its user are created (``viewer_role.py``), with
access to exactly the datasets the dashboards use, and a generated password kept 0600
under ``<home>/secrets`` like the admin's.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from redline import secrets
from redline.config import Config
from redline.credentials import SUPERSET_VIEWER_SECRET
from redline.dashboards import bundle
from redline.errors import RedlineError
from redline.query import in_lake
from redline.services.superset import SupersetServer, api_session, venv_bin
from redline.services.thrift import ThriftServer, credentials

VIEWER_ROLE = "redline_viewer"
VIEWER_PASSWORD_NAME = SUPERSET_VIEWER_SECRET
_VIEWER_SCRIPT = Path(__file__).resolve().parent / "viewer_role.py"
_IMPORT_SCRIPT = Path(__file__).resolve().parent / "import_bundle.py"


@dataclass(frozen=True)
class Deployed:
    """What ``deploy`` set up."""

    urls: dict[str, str]
    """Dashboard title -> URL."""
    viewer_user: str
    viewer_password_file: Path
    placeholders: list[str]
    """Tables not written yet, shown empty until they are."""


def dashboard_url(cfg: Config, slug: str) -> str:
    return f"{cfg.superset.url}/superset/dashboard/{slug}/"


def viewer_credentials(cfg: Config) -> tuple[str, str]:
    """(user, password) of the read-only user; the password is generated on first use."""
    return cfg.superset.viewer_user, secrets.get_or_create(cfg.home, VIEWER_PASSWORD_NAME)


def _placeholders(cfg: Config, dashboards: list[bundle.Dashboard]) -> list[str]:
    tables = {t.qualified_name: t for d in dashboards for ds in d.datasets
              for t in ds.tables}
    missing = [t for t in tables.values() if in_lake(cfg.lake_root, t) is False]
    if not missing:
        return []
    server = ThriftServer(cfg)
    if not server.check():
        raise RedlineError(
            "THRIFT_DOWN",
            f"the Spark Thrift Server is not answering on {server.address}; `redline up`")
    return [t.qualified_name for t in server.add_placeholders(missing)]


def _viewer(server: SupersetServer, cfg: Config,
            dashboards: list[bundle.Dashboard]) -> tuple[str, Path]:
    user, password = viewer_credentials(cfg)
    # The role reads the datasets the dashboards chart and nothing else of the lake.
    datasets = sorted({ds.uuid for dash in dashboards for ds in dash.datasets})
    result = subprocess.run(
        [str(venv_bin("python")), str(_VIEWER_SCRIPT), VIEWER_ROLE, user,
         bundle.DATABASE_NAME, *datasets], input=password + "\n", env=server.environment(),
        cwd=server.dir, capture_output=True, text=True, timeout=300)
    if result.returncode != 0:
        raise RedlineError("DASHBOARD_VIEWER_FAILED",
                           f"creating the read-only user {user!r} failed (exit "
                           f"{result.returncode}):\n{(result.stdout + result.stderr)[-2000:]}")
    return user, secrets.path_of(cfg.home, VIEWER_PASSWORD_NAME)


def deploy(cfg: Config, progress: Callable[[str], None] = print,
           spec: Path = bundle.SPEC) -> Deployed:
    """Import every dashboard of ``spec`` into the running Superset (idempotent)."""
    server = SupersetServer(cfg)
    if not server.check():
        raise RedlineError(
            "SUPERSET_DOWN",
            f"Superset is not answering on {server.url}; start it with `redline up`")
    workdir = Path(tempfile.mkdtemp(prefix="redline-bundle-"))
    try:
        dashboards = bundle.build(workdir / "bundle", cfg.thrift.host, cfg.thrift.port, spec)
        placeholders = _placeholders(cfg, dashboards)
        if placeholders:
            progress(f"superset: {len(placeholders)} tables are not written yet and show "
                     f"empty: {', '.join(placeholders)}")
        user, password = credentials(cfg)
        progress(f"superset: importing {len(dashboards)} dashboards from {spec}/ (database "
                 f"{bundle.DATABASE_NAME} -> hive://{user}@{cfg.thrift.host}:"
                 f"{cfg.thrift.port}) ...")
        result = subprocess.run(
            [str(venv_bin("python")), str(_IMPORT_SCRIPT), str(workdir / "bundle")],
            input=password + "\n", env=server.environment(), cwd=server.dir,
            capture_output=True, text=True, timeout=600)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    output = result.stdout + result.stderr
    # Superset logs some import errors and carries on, so its output is checked too.
    if result.returncode != 0 or "An error occurred" in output:
        raise RedlineError(
            "DASHBOARD_IMPORT_FAILED",
            f"importing the dashboards failed (exit {result.returncode}):\n"
            f"{output[-3000:]}")
    api = api_session(cfg)
    urls = {}
    for dash in dashboards:
        r = api.get(f"{cfg.superset.url}/api/v1/dashboard/{dash.slug}/charts", timeout=30)
        found = {c["slice_name"] for c in r.json().get("result", [])} if r.ok else set()
        wanted = {c.title for c in dash.charts}
        if not wanted <= found:
            raise RedlineError(
                "DASHBOARD_IMPORT_FAILED",
                f"after the import, dashboard {dash.slug!r} lacks charts "
                f"{sorted(wanted - found)} (HTTP {r.status_code}); import output:\n"
                f"{output[-3000:]}")
        urls[dash.title] = dashboard_url(cfg, dash.slug)
    user, password_file = _viewer(server, cfg, dashboards)
    for title, url in urls.items():
        progress(f"superset: {title}: {url}")
    progress(f"superset: read-only user {user!r}; password in {password_file}")
    return Deployed(urls=urls, viewer_user=user, viewer_password_file=password_file,
                    placeholders=placeholders)


def describe(deployed: Deployed) -> str:
    """``deployed`` as JSON for scripts (no password, only where it is kept)."""
    return json.dumps({"dashboards": deployed.urls, "viewer_user": deployed.viewer_user,
                       "viewer_password_file": str(deployed.viewer_password_file),
                       "placeholders": deployed.placeholders}, indent=2)


def known_dashboards(spec: Path = bundle.SPEC) -> dict[str, str]:
    """Slug -> title of every dashboard of ``spec``."""
    return {d.slug: d.title for d in bundle.load_dashboards(spec)}

