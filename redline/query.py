"""Read-only SQL over the lake: through the running Spark Thrift Server, else a local Spark.

A local Spark session takes seconds to start (the JVM, Delta, the catalog), while the
Thrift Server that `redline up` started answers a small query in well under a second.
``open_reader`` returns a ``Reader`` for whichever is available: the server when its pid
is alive and its port answers, otherwise a local session (``redline.spark``). Both run the
same SQL over the catalog's qualified names (``silver.station_results``) and return rows
as plain dicts with Python values (datetime, date, Decimal, lists and dicts for nested
types), so a command prints the same whichever path it took.

The server only knows the tables registered in its metastore. Before a query the Thrift
reader registers those that exist in this configuration's lake and are missing there, or
registered at another lake root (the same statements ``ThriftServer.register_tables``
runs after jobs), so a table written by ingest a moment ago is queryable at once.

Errors of the SQL itself (syntax, unknown table or column) become ``RedlineError``
``SQL_ERROR`` with Spark's one-line message, on both paths.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any

from redline import catalog
from redline.config import Config
from redline.errors import RedlineError

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

SQL_ERROR = "SQL_ERROR"
#: Statements that can be wrapped in ``SELECT * FROM (...) LIMIT n``, so that the server
#: computes only the rows that are shown (it collects a whole result in its driver).
_QUERY_START = re.compile(r"^\s*(\(\s*)*(SELECT|WITH|VALUES|TABLE|FROM)\b", re.I)
_COMMENTS = re.compile(r"--[^\n]*|/\*.*?\*/", re.S)


@dataclass
class Result:
    columns: list[str]
    rows: list[dict[str, Any]]
    truncated: bool = False
    """True when the statement had more rows than the ``limit`` asked for."""


# -- where a table is -----------------------------------------------------------------
def _local_path(lake_root: str) -> Path | None:
    if lake_root.startswith("file:"):
        return Path(lake_root.removeprefix("file:").replace("///", "/", 1))
    if "://" in lake_root:
        return None
    return Path(lake_root)


def in_lake(lake_root: str, table: catalog.Table) -> bool | None:
    """Whether ``table`` has a Delta log in a local lake; None for an object store."""
    root = _local_path(lake_root)
    if root is None:
        return None
    log = root / table.layer.value / table.name / "_delta_log"
    try:
        return any(p.suffix == ".json" or ".checkpoint" in p.name for p in log.iterdir())
    except OSError:
        return False


def _uri(location: str) -> str:
    """``location`` as a metastore spells it (``file:/lake/silver/x``)."""
    if location.startswith("file://"):
        location = location.removeprefix("file://")
    return ("file:" + location if location.startswith("/") else location).rstrip("/")


def server_error(exc: Exception) -> str:
    """Spark's message of a failed statement, on one line (``[CLASS] text``)."""
    resp = exc.args[0] if exc.args else None
    msg = getattr(getattr(resp, "status", None), "errorMessage", None) or str(exc)
    msg = msg.removeprefix("Error running query: ")
    # "[CLASS] org.apache...SomeException: [CLASS] text" -> "[CLASS] text"
    m = re.match(r"\s*(\[[\w.]+\])\s+[\w.$]+:\s*\1\s*(.*)", msg, re.S)
    if m:
        msg = f"{m.group(1)} {m.group(2)}"
    first = next((line.strip() for line in msg.splitlines() if line.strip()), "")
    return first or type(exc).__name__


# -- the reader ------------------------------------------------------------------------
class Reader:
    """Runs read-only SQL over the lake tables by qualified name."""

    via = ""
    """``thrift`` or ``spark``."""

    def __init__(self, cfg: Config):
        self.cfg = cfg
        self._present: dict[str, bool] = {}
        self._registered: dict[str, str] | None = None

    # -- what each path provides ---------------------------------------------------------
    def _errors(self) -> tuple[type[BaseException], ...]:
        """Exceptions that mean "the statement failed" (reported as ``SQL_ERROR``)."""
        raise NotImplementedError

    def _run(self, sql: str, limit: int | None) -> Result:
        raise NotImplementedError

    def _exists_remote(self, table: catalog.Table) -> bool:
        """Whether ``table`` is a Delta table in a lake that is not a local folder."""
        raise NotImplementedError

    def _register(self, tables: list[catalog.Table]) -> None:
        """Register ``tables`` at this lake, replacing a registration elsewhere."""
        raise NotImplementedError

    # -- shared ------------------------------------------------------------------------
    def _execute(self, sql: str, limit: int | None) -> Result:
        return self._run(sql, limit)

    def query(self, sql: str, limit: int | None = None) -> Result:
        """Run ``sql``; with ``limit``, at most that many rows (``truncated`` if more)."""
        try:
            return self._execute(sql, limit)
        except self._errors() as exc:
            raise RedlineError(SQL_ERROR, server_error(exc)) from None

    def has(self, table: catalog.Table) -> bool:
        """True when ``table`` holds data in this lake; it is then queryable by name."""
        return self.prepare([table]) == [table]

    def prepare(self, tables: Iterable[catalog.Table]) -> list[catalog.Table]:
        """Make those of ``tables`` that exist in the lake queryable by name; return them.

        A table is registered only when it exists (registering a missing one would create
        an empty table at its location), and again when registered at another location.
        """
        try:
            return self._prepare(list(tables))
        except self._errors() as exc:
            raise RedlineError(SQL_ERROR, server_error(exc)) from None

    def _prepare(self, tables: list[catalog.Table]) -> list[catalog.Table]:
        todo = [t for t in tables if t.qualified_name not in self._present]
        if todo:
            registered = self.registered()
            stale = []
            for t in todo:
                current = registered.get(t.qualified_name)
                here = in_lake(self.cfg.lake_root, t)
                if here is None:  # an object store: trust a registration at this lake
                    here = (current == _uri(catalog.location(self.cfg.lake_root, t))
                            or self._exists_remote(t))
                self._present[t.qualified_name] = here
                if here and current != _uri(catalog.location(self.cfg.lake_root, t)):
                    stale.append(t)
            if stale:
                self._register(stale)
                self._registered = None
        return [t for t in tables if self._present[t.qualified_name]]

    def registered(self) -> dict[str, str]:
        """Qualified name -> location URI of every layer table the catalog has registered."""
        if self._registered is None:
            found: dict[str, str] = {}
            layers = {layer.value for layer in catalog.Layer}
            databases = {r["namespace"] for r in self._run("SHOW DATABASES", None).rows}
            for database in sorted(layers & databases):
                try:
                    listed = self._run(f"SHOW TABLE EXTENDED IN {database} LIKE '*'", None)
                except self._errors():  # e.g. a table whose files are gone
                    listed = self._run(f"SHOW TABLES IN {database}", None)
                for r in listed.rows:
                    if r.get("isTemporary"):
                        continue
                    where = re.search(r"^Location: (.*)$", r.get("information") or "", re.M)
                    # An unknown location ("") counts as elsewhere: registered again.
                    found[f"{database}.{r['tableName']}"] = (
                        where.group(1).strip().rstrip("/") if where else "")
            self._registered = found
        return self._registered

    def version(self, table: catalog.Table) -> int | None:
        """Newest Delta version of ``table`` (in a local lake: from its log's file names,
        no statement; else ``DESCRIBE HISTORY``)."""
        root = _local_path(self.cfg.lake_root)
        if root is not None:
            log = root / table.layer.value / table.name / "_delta_log"
            versions = [int(p.stem) for p in log.glob("*.json") if p.stem.isdigit()]
            if versions:
                return max(versions)
        rows = self.query(f"DESCRIBE HISTORY {table.qualified_name} LIMIT 1").rows
        return int(rows[0]["version"]) if rows else None

    def close(self) -> None:
        pass

    def __enter__(self) -> Reader:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


# -- through the Thrift Server ---------------------------------------------------------
def _convert(type_name: str) -> Callable[[Any], Any] | None:
    """Python value of a HiveServer2 column (PyHive leaves dates and nested types as text)."""
    if type_name == "DATE_TYPE":
        return date.fromisoformat
    if type_name in ("ARRAY_TYPE", "MAP_TYPE", "STRUCT_TYPE"):
        return _nested
    return None


def _nested(text: str) -> Any:
    """An array, map or struct the server sent as JSON; the text itself if it is not JSON
    (strings inside nested values are not escaped: ``{"k":"["a"]"}``)."""
    try:
        return json.loads(text)
    except ValueError:
        return text


class ThriftReader(Reader):
    via = "thrift"

    def __init__(self, cfg: Config, server, conn):
        super().__init__(cfg)
        self.server = server
        self.conn = conn

    @property
    def address(self) -> str:
        return self.server.address

    def _errors(self) -> tuple[type[BaseException], ...]:
        from pyhive.exc import Error
        from thrift.Thrift import TException

        return (Error, TException, OSError)

    def _run(self, sql: str, limit: int | None) -> Result:
        cur = self.conn.cursor()
        try:
            cur.execute(sql)
            if cur.description is None:  # a statement without a result set
                return Result([], [])
            names = [d[0] for d in cur.description]
            convert = [_convert(d[1]) for d in cur.description]
            fetched = cur.fetchall() if limit is None else cur.fetchmany(limit + 1)
        finally:
            cur.close()
        rows = [{n: (v if c is None or v is None else c(v))
                 for n, c, v in zip(names, convert, row)} for row in fetched]
        truncated = limit is not None and len(rows) > limit
        return Result(names, rows[:limit] if truncated else rows, truncated)

    def _execute(self, sql: str, limit: int | None) -> Result:
        # The server collects a whole result in its driver before sending any row: a query
        # is wrapped in a LIMIT so that it computes no more than is shown.
        body = sql.strip().rstrip(";")
        if limit is not None and _QUERY_START.match(_COMMENTS.sub(" ", body)):
            try:  # the newline ends a trailing -- comment
                return self._run(f"SELECT * FROM ({body}\n) AS redline_query LIMIT {limit + 1}",
                                 limit)
            except self._errors():
                pass  # not a query that can be wrapped: its own error (if any) comes next
        return self._run(sql, limit)

    def _exists_remote(self, table: catalog.Table) -> bool:
        path = catalog.location(self.cfg.lake_root, table).replace("`", "``")
        try:
            self._run(f"DESCRIBE DETAIL delta.`{path}`", None)
        except self._errors():  # DELTA_MISSING_DELTA_TABLE and the like
            return False
        return True

    def _register(self, tables: list[catalog.Table]) -> None:
        self.server.register_tables(self.cfg.lake_root, tables)

    def close(self) -> None:
        try:
            self.conn.close()
        except Exception:  # noqa: BLE001 - closing a broken connection
            pass


# -- through a local Spark session -----------------------------------------------------
class SparkReader(Reader):
    via = "spark"

    def __init__(self, cfg: Config, spark: SparkSession):
        super().__init__(cfg)
        self.spark = spark

    def _errors(self) -> tuple[type[BaseException], ...]:
        from py4j.protocol import Py4JError
        from pyspark.errors.exceptions.captured import CapturedException

        return (CapturedException, Py4JError)

    def _run(self, sql: str, limit: int | None) -> Result:
        # PySpark logs a failed statement's error as JSON on stderr before raising it; the
        # error is reported once, on one line (``query``).
        from pyspark.logger import PySparkLogger

        quiet = PySparkLogger.getLogger("SQLQueryContextLogger")
        was, quiet.disabled = quiet.disabled, True
        try:
            df = self.spark.sql(sql)
            rows = df.limit(limit + 1).collect() if limit is not None else df.collect()
        finally:
            quiet.disabled = was
        truncated = limit is not None and len(rows) > limit
        rows = rows[:limit] if truncated else rows
        return Result(list(df.columns), [r.asDict(recursive=True) for r in rows], truncated)

    def _exists_remote(self, table: catalog.Table) -> bool:
        return catalog.exists(self.spark, self.cfg.lake_root, table)

    def _register(self, tables: list[catalog.Table]) -> None:
        for t in tables:
            # External tables: dropping one registered at another lake forgets the name.
            self.spark.sql(f"DROP TABLE IF EXISTS {t.qualified_name}")
            for stmt in catalog.register_sql(self.cfg.lake_root, t):
                self.spark.sql(stmt)


# -- which one -------------------------------------------------------------------------
def thrift_unavailable(cfg: Config) -> str | None:
    """Why the Thrift Server cannot answer now, or None when it can be tried."""
    from redline.services.base import port_open
    from redline.services.thrift import ThriftServer

    server = ThriftServer(cfg)
    if not server.running():
        return f"not running ({server.address})"
    if not port_open(server.host, server.port):
        return f"not answering on {server.address}"
    return None


def open_reader(cfg: Config, app_name: str = "redline", verbose: bool = False,
                say: Callable[[str], None] | None = None) -> Reader:
    """A reader through the Thrift Server when it runs, else through a local Spark session.

    ``verbose`` says on stderr (or to ``say``) which path was taken and why.
    """
    from redline.services.thrift import ThriftServer, connect

    def note(line: str) -> None:
        if verbose:
            (say or (lambda s: print(s, file=sys.stderr, flush=True)))(f"redline: {line}")

    why = thrift_unavailable(cfg)
    if why is None:
        server = ThriftServer(cfg)
        try:
            conn = connect(cfg)
        except Exception as exc:  # noqa: BLE001 - any failure to connect: fall back
            why = f"not accepting connections on {server.address} ({type(exc).__name__})"
        else:
            note(f"via Spark Thrift Server {server.address}")
            return ThriftReader(cfg, server, conn)
    from redline.spark import build_session

    if verbose:
        note(f"Thrift Server {why}; starting a local Spark session ({cfg.spark.conf_file})")
    else:
        print(f"starting Spark ({cfg.spark.conf_file}) ...", file=sys.stderr, flush=True)
    return SparkReader(cfg, build_session(cfg, app_name=f"redline-{app_name}"))


# -- printing ----------------------------------------------------------------------------
def _cell(value: Any) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, dict)):
        return json.dumps(value, default=str)
    return str(value)


def render(result: Result) -> str:
    """The rows as a boxed text table (the layout of Spark's ``DataFrame.show``)."""
    if not result.columns:
        return "(no result set)"
    cells = [[_cell(r.get(c)) for c in result.columns] for r in result.rows]
    widths = [max([3, len(c), *(len(row[i]) for row in cells)])
              for i, c in enumerate(result.columns)]
    rule = "+" + "+".join("-" * w for w in widths) + "+"

    def line(values: list[str]) -> str:
        return "|" + "|".join(v.ljust(w) for v, w in zip(values, widths)) + "|"

    out = [rule, line(result.columns), rule, *(line(row) for row in cells), rule]
    if result.truncated:
        out.append(f"only showing top {len(cells)} row{'' if len(cells) == 1 else 's'}")
    return "\n".join(out)
