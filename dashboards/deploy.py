"""Deploy the dashboards kept as code (``dashboards/bundle``) to the running Superset.

The bundle is a Superset export (format v1: metadata, databases, datasets, charts,
dashboards) with stable UUIDs, so deploying again updates the same objects instead of
adding copies. ``${thrift_host}`` / ``${thrift_port}`` placeholders are filled in from the
configuration. ``superset import-directory --overwrite`` is used because
``import-dashboards`` leaves existing charts and datasets untouched.
"""

from __future__ import annotations

import shutil
import string
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path

import yaml

from redline.config import Config
from redline.errors import RedlineError
from redline.services.superset import SupersetServer, api_session

BUNDLE = Path(__file__).resolve().parent / "bundle"


def bundle_values(cfg: Config) -> dict[str, str]:
    """Values of the bundle's ``${...}`` placeholders for ``cfg``."""
    return {"thrift_host": cfg.thrift.host, "thrift_port": str(cfg.thrift.port)}


def render_bundle(out: Path, values: Mapping[str, str], source: Path = BUNDLE) -> Path:
    """Copy the bundle's YAML files into ``out`` with placeholders filled in; return ``out``.

    A placeholder without a value, or a file that is not valid YAML afterwards, fails here
    rather than half-way through Superset's import.
    """
    files = sorted(source.rglob("*.yaml"))
    if not any(f.name == "metadata.yaml" for f in files):
        raise RedlineError("BUNDLE_INVALID", f"{source} has no metadata.yaml")
    for src in files:
        rel = src.relative_to(source)
        try:
            text = string.Template(src.read_text()).substitute(values)
        except KeyError as exc:
            raise RedlineError(
                "BUNDLE_INVALID",
                f"{rel}: placeholder ${{{exc.args[0]}}} has no value; known: "
                f"{', '.join(sorted(values))}") from None
        except ValueError as exc:
            raise RedlineError("BUNDLE_INVALID", f"{rel}: {exc} (write $$ for a dollar)") from None
        try:
            yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise RedlineError("BUNDLE_INVALID", f"{rel} is not valid YAML: {exc}") from None
        dest = out / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_text(text)
    return out


def _expected(bundle: Path = BUNDLE) -> tuple[str, set[str]]:
    """(slug, chart names) of the bundle's dashboard, to check the import took effect."""
    found = sorted((bundle / "dashboards").glob("*.yaml"))
    if len(found) != 1:
        raise RedlineError("BUNDLE_INVALID",
                           f"{bundle}/dashboards must hold exactly one dashboard, found "
                           f"{[f.name for f in found]}")
    doc = yaml.safe_load(found[0].read_text())
    names = {node["meta"]["sliceName"] for node in doc["position"].values()
             if isinstance(node, dict) and node.get("type") == "CHART"}
    return doc["slug"], names


def dashboard_url(cfg: Config, bundle: Path = BUNDLE) -> str:
    slug, _ = _expected(bundle)
    return f"{cfg.superset.url}/superset/dashboard/{slug}/"


def deploy(cfg: Config, progress: Callable[[str], None] = print,
           bundle: Path = BUNDLE) -> str:
    """Import ``bundle`` into the running Superset (idempotent); return the dashboard URL."""
    server = SupersetServer(cfg)
    if not server.check():
        raise RedlineError(
            "SUPERSET_DOWN",
            f"Superset is not answering on {server.url}; start it with `redline up`")
    workdir = Path(tempfile.mkdtemp(prefix="redline-bundle-"))
    try:
        render_bundle(workdir / "bundle", bundle_values(cfg), source=bundle)
        progress(f"superset: importing {bundle}/ (database redline_lake -> "
                 f"hive://{cfg.thrift.host}:{cfg.thrift.port}) ...")
        result = server.cli("import-directory", "--overwrite", str(workdir / "bundle"))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    output = result.stdout + result.stderr
    # The CLI logs validation errors and still exits 0, so its output is checked too.
    if result.returncode != 0 or "An error occurred" in output:
        raise RedlineError(
            "DASHBOARD_IMPORT_FAILED",
            f"`superset import-directory` failed (exit {result.returncode}):\n"
            f"{output[-3000:]}")
    slug, names = _expected(bundle)
    api = api_session(cfg)
    r = api.get(f"{cfg.superset.url}/api/v1/dashboard/{slug}/charts", timeout=30)
    found = {c["slice_name"] for c in r.json().get("result", [])} if r.ok else set()
    if not names <= found:
        raise RedlineError(
            "DASHBOARD_IMPORT_FAILED",
            f"after the import, dashboard {slug!r} shows charts {sorted(found)} instead of "
            f"{sorted(names)} (HTTP {r.status_code}); import output:\n{output[-3000:]}")
    url = dashboard_url(cfg, bundle)
    progress(f"superset: dashboard deployed: {url}")
    return url
