"""Superset settings for redline (template).

``redline.services.superset`` renders this file into the Superset service folder and
points ``SUPERSET_CONFIG_PATH`` at the copy. Each ``"__REDLINE_<NAME>__"`` string below is
replaced by a Python literal at render time; the template itself is never imported by
Superset. The secret key is not written here: it is read from its 0600 file under
``<home>/secrets`` when Superset starts.
"""

from pathlib import Path

SERVICE_DIR = Path("__REDLINE_SERVICE_DIR__")
SECRET_KEY = Path("__REDLINE_SECRET_KEY_FILE__").read_text().strip()

# The metadata database (dashboards, charts, users). Production uses PostgreSQL.
SQLALCHEMY_DATABASE_URI = "sqlite:///" + str(SERVICE_DIR / "superset.db")
DATA_DIR = str(SERVICE_DIR / "data")

# Chart results are cached on disk, shared by every gunicorn worker: a dashboard opened a
# second time (by anyone) within the timeout is served without a Thrift Server round trip.
# Jobs rewrite gold tables a few times a day, so a few minutes of staleness is harmless;
# the chart menu's "Force refresh" bypasses the cache.
DATA_CACHE_CONFIG = {
    "CACHE_TYPE": "FileSystemCache",
    "CACHE_DIR": str(SERVICE_DIR / "cache" / "data"),
    "CACHE_DEFAULT_TIMEOUT": "__REDLINE_DATA_CACHE_TIMEOUT__",
    "CACHE_THRESHOLD": 10000,
    "CACHE_KEY_PREFIX": "redline_data_",
}
# Dataset and database metadata (column lists, filter options).
CACHE_CONFIG = {
    "CACHE_TYPE": "FileSystemCache",
    "CACHE_DIR": str(SERVICE_DIR / "cache" / "metadata"),
    "CACHE_DEFAULT_TIMEOUT": "__REDLINE_DATA_CACHE_TIMEOUT__",
    "CACHE_KEY_PREFIX": "redline_meta_",
}

# Spark's SQL is slow to plan on a cold server: give queries room before they time out.
SQLLAB_TIMEOUT = 300
SUPERSET_WEBSERVER_TIMEOUT = 300
ROW_LIMIT = 50000

# The server binds 127.0.0.1 only; there is no outgoing network for map tiles or
# telemetry.
ENABLE_PROXY_FIX = False
MAPBOX_API_KEY = ""
# Without virtualization every chart of a dashboard renders, not only those in view: the
# screenshot of a long dashboard then shows (and waits for) all of them.
FEATURE_FLAGS = {"ENABLE_TEMPLATE_PROCESSING": False, "DASHBOARD_VIRTUALIZATION": False}


def _patch_pyhive_table_names() -> None:
    """List Spark's tables by name, not by namespace.

    PyHive's ``get_table_names`` reads column 0 of ``SHOW TABLES``. HiveServer2 returns
    ``tab_name`` there, but the Spark Thrift Server returns
    ``(namespace, tableName, isTemporary)``, so Superset would list the schema name once
    per table instead of the tables. Read the ``tableName`` column when it is present.
    """
    from pyhive import sqlalchemy_hive
    from sqlalchemy import text

    def get_table_names(self, connection, schema=None, **kw):
        query = "SHOW TABLES"
        if schema:
            query += " IN " + self.identifier_preparer.quote_identifier(schema)
        rows = connection.execute(text(query))
        return [row[1] if len(row) >= 3 else row[0] for row in rows]

    sqlalchemy_hive.HiveDialect.get_table_names = get_table_names


_patch_pyhive_table_names()


def FLASK_APP_MUTATOR(app) -> None:  # noqa: N802 - Superset's name for this hook
    """Import every database engine spec once, at start, before a request thread does.

    Superset imports its engine specs on first use, from whichever gunicorn thread asks.
    When a dashboard's charts ask at once, one thread can get an engine spec module that
    another thread is still importing (Python hands out a partly initialised module rather
    than deadlock on modules that import each other); that thread finds no spec for the
    Hive backend, parses the chart's Spark SQL with the generic dialect and fails on its
    backticks ("Unable to parse SQL ... near 'ended_at'", seen once in CI on the Data
    health dashboard). Imported here, the modules are whole before any request."""
    from superset.db_engine_specs import load_engine_specs

    load_engine_specs()
