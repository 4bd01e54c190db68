"""`redline dashboards refresh`: the dashboards show what the last jobs wrote, now.

Two things stand between a job's write and a dashboard. The Spark Thrift Server answers
for a table only once it is registered there: jobs register what they write when the
server is up, but a table written while it was down stays unknown, and one that `deploy`
found unwritten is an empty placeholder view until it is registered. And Superset serves a
chart from its cache for ``DATA_CACHE_TIMEOUT_S`` after the last query. ``refresh``
registers every table the lake holds (a placeholder gives way to its table) and empties
Superset's chart-data and metadata caches, so the next view of a dashboard queries the lake.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable, Sequence
from pathlib import Path

from redline import catalog
from redline.catalog import Table
from redline.config import Config
from redline.errors import RedlineError
from redline.query import in_lake
from redline.services.superset import SupersetServer, venv_bin
from redline.services.thrift import ThriftServer

_CLEAR_SCRIPT = Path(__file__).resolve().parent / "clear_cache.py"


def lake_tables(lake_root: str) -> list[Table] | None:
    """The catalog's tables that have data in a local lake; None for an object store
    (only Spark can tell there)."""
    found = {t: in_lake(lake_root, t) for t in catalog.TABLES.values()}
    if any(v is None for v in found.values()):
        return None
    return [t for t, present in found.items() if present]


def clear_caches(cfg: Config) -> list[str]:
    """Empty the chart-data and metadata caches of the running Superset; the names of the
    caches cleared."""
    server = SupersetServer(cfg)
    if not server.check():
        raise RedlineError("SUPERSET_DOWN", f"Superset is not answering on {server.url}; "
                                            f"start it with `redline up`")
    # Through Superset's own cache manager, so whichever cache backend its configuration
    # names (files here, Redis in production) is the one cleared.
    result = subprocess.run([str(venv_bin("python")), str(_CLEAR_SCRIPT)],
                            env=server.environment(), cwd=server.dir, capture_output=True,
                            text=True, timeout=300)
    lines = result.stdout.strip().splitlines()
    if result.returncode != 0 or not lines:
        raise RedlineError("SUPERSET_CACHE_FAILED",
                           f"clearing Superset's caches failed (exit {result.returncode}):\n"
                           f"{(result.stdout + result.stderr)[-2000:]}")
    return json.loads(lines[-1])["cleared"]


def refresh(cfg: Config, tables: Sequence[Table],
            progress: Callable[[str], None] = print) -> dict:
    """Register ``tables`` in the Thrift Server (not for a lake on an object store, which
    it does not read), then clear Superset's caches."""
    server = ThriftServer(cfg)
    if server.reads(cfg.lake_root):
        server.register_tables(cfg.lake_root, tables)
        progress(f"registered {len(tables)} tables in the Spark Thrift Server")
    else:
        tables = []
        progress(server.unread_note(cfg.lake_root))
    cleared = clear_caches(cfg)
    progress(f"superset: cleared its {' and '.join(cleared)} caches; the next view of a "
             f"dashboard queries the lake")
    return {"registered": [t.qualified_name for t in tables], "superset_caches_cleared": cleared}
