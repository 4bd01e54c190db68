"""Spark Thrift Server (HiveServer2 protocol) with Delta: SQL over the lake for BI tools.

Its embedded Derby metastore admits one process, so the Thrift Server owns it. Jobs
address tables by path through the catalog; after they write, ``register_tables`` makes
every existing catalog table visible here by its qualified name.

Every client logs in: the server runs with ``hive.server2.authentication=CUSTOM`` and
``java/PasswordFileAuthenticator.java`` (compiled by ``prepare``), which accepts the user
``redline`` with the password in ``<home>/secrets/thrift_password``. Queries on files
(``SELECT * FROM text.`file:///...```) are off, and ``java/SqlGuard.java``, a session
extension compiled with it, refuses the statements that would reach past the lake's tables
(a non-Delta data source, TRANSFORM, reflect, ADD JAR, an option naming a file, ...): SQL
reaches the lake only. ``java/ThriftServerMain.java`` starts the server with what a session
must not change out of its reach: Java system properties (``set:system:`` at session open
is refused), variable substitution (off: ``${env:HOME}`` stays literal) and the login
check's settings.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from collections.abc import Callable, Sequence
from pathlib import Path

from redline import catalog, s3a, secrets
from redline.config import Config
from redline.credentials import THRIFT_SECRET, THRIFT_USER
from redline.errors import RedlineError
from redline.services.base import Service, port_open, service_environment
from redline.services.kafka import java_binary
from redline.spark import conf_entries, prepare_environment, spark_home

#: The one user the Thrift Server accepts; its password is the secret ``PASSWORD_NAME``.
USER, PASSWORD_NAME = THRIFT_USER, THRIFT_SECRET
JAVA_DIR = Path(__file__).resolve().parent / "java"
AUTHENTICATOR_SOURCE = JAVA_DIR / "PasswordFileAuthenticator.java"
AUTHENTICATOR_CLASS = "redline.thrift.PasswordFileAuthenticator"
#: The session extension refusing SQL that reaches past the lake (appended to Delta's).
GUARD_SOURCE = JAVA_DIR / "SqlGuard.java"
GUARD_CLASS = "redline.thrift.SqlGuard"
#: The server's entry point: Spark's HiveThriftServer2 with system properties, Hive's
#: variable substitution and the login check's settings out of a session's reach.
MAIN_SOURCE = JAVA_DIR / "ThriftServerMain.java"
MAIN_CLASS = "redline.thrift.ThriftServerMain"
#: Java sources compiled for the server, with the class each defines.
JAVA_SOURCES = {AUTHENTICATOR_SOURCE: AUTHENTICATOR_CLASS, GUARD_SOURCE: GUARD_CLASS,
                MAIN_SOURCE: MAIN_CLASS}


def credentials(cfg: Config) -> tuple[str, str]:
    """(user, password) of the Thrift Server; the password is generated on first use.

    Callers must not log the password; point people at ``secrets.path_of`` instead.
    """
    return USER, secrets.get_or_create(cfg.home, PASSWORD_NAME)


def _server_message(exc: Exception) -> str:
    """The server's own error message in a pyhive exception (its first line), not the
    Thrift structure around it."""
    status = getattr(exc.args[0], "status", None) if exc.args else None
    text = (getattr(status, "errorMessage", None) or str(exc)).strip()
    return (text.splitlines() or [""])[0][:300]


def connect(cfg: Config):
    """A PyHive connection to ``cfg``'s Thrift Server, logged in as ``USER``."""
    from pyhive import hive

    user, password = credentials(cfg)
    return hive.connect(host=cfg.thrift.host, port=cfg.thrift.port, username=user,
                        password=password, auth="CUSTOM")


def compile_java(out: Path) -> Path:
    """Compile ``JAVA_SOURCES`` into the class folder ``out`` (again only when a source
    changed); return ``out``, the folder to put on the driver's class path."""
    stamp = out / ".source-sha256"
    digest = hashlib.sha256(b"".join(
        path.name.encode() + b"\0" + path.read_bytes() for path in JAVA_SOURCES)).hexdigest()
    compiled = [out.joinpath(*name.split(".")).with_suffix(".class")
                for name in JAVA_SOURCES.values()]
    if all(c.exists() for c in compiled) and stamp.exists() and stamp.read_text() == digest:
        return out
    javac = shutil.which("javac")
    if javac is None:
        raise RedlineError(
            "JAVAC_MISSING",
            "the Thrift Server's login check and SQL guard are compiled at start and need a "
            "JDK: install one (apt-get install openjdk-17-jdk-headless, or `make "
            "system-packages`) so that `javac` is on PATH")
    jars = spark_home() / "jars"
    if not any(jars.glob("spark-hive-thriftserver_*.jar")):
        raise RedlineError("THRIFT_JAR_MISSING",
                           f"no spark-hive-thriftserver jar in {jars}; "
                           f"reinstall pyspark (`make setup`)")
    building = out.with_name(out.name + ".building")
    shutil.rmtree(building, ignore_errors=True)
    # The guard is compiled against the very Spark it runs in: Spark's plan classes change
    # between releases, and a mismatch fails here, not at the first query.
    result = subprocess.run(
        [javac, "--release", "17", "-nowarn", "-cp", str(jars / "*"), "-d", str(building),
         *map(str, JAVA_SOURCES)], capture_output=True, text=True)
    if result.returncode != 0:
        shutil.rmtree(building, ignore_errors=True)
        raise RedlineError(
            "THRIFT_JAVA_COMPILE",
            f"compiling {', '.join(p.name for p in JAVA_SOURCES)} in {JAVA_DIR} failed "
            f"(javac exit {result.returncode}):\n{(result.stdout + result.stderr)[-2000:]}")
    (building / stamp.name).write_text(digest)
    shutil.rmtree(out, ignore_errors=True)
    os.replace(building, out)
    return out


def _as_uri(location: str) -> str:
    return ("file:" + location if location.startswith("/") else location).rstrip("/")


def is_view(cur, qualified_name: str) -> bool:
    """Whether ``qualified_name`` is a view in the server's metastore (a placeholder)."""
    database, name = qualified_name.split(".")
    cur.execute(f"SHOW DATABASES LIKE '{database}'")
    if not cur.fetchall():
        return False
    cur.execute(f"SHOW VIEWS IN {database} LIKE '{name}'")
    return bool(cur.fetchall())


def placeholder_sql(table: catalog.Table) -> list[str]:
    """SQL creating an empty view with ``table``'s columns, until the table is written.

    Dashboards over a table that no job has written yet then show "no results" instead of
    a missing-table error. ``register_tables`` drops the view when the table exists.
    """
    columns = ", ".join(f"CAST(NULL AS {f.dataType.simpleString()}) AS `{f.name}`"
                        for f in table.schema().fields)
    return [f"CREATE DATABASE IF NOT EXISTS {table.layer.value}",
            f"CREATE VIEW IF NOT EXISTS {table.qualified_name} AS SELECT {columns} "
            f"WHERE 1 = 0"]


def _registered_location(cur, qualified_name: str) -> str | None:
    """Where the server's metastore says ``qualified_name`` lives, or None if unknown."""
    database, name = qualified_name.split(".")
    cur.execute(f"SHOW DATABASES LIKE '{database}'")
    if not cur.fetchall():
        return None
    cur.execute(f"SHOW TABLES IN {database} LIKE '{name}'")
    if not cur.fetchall():
        return None
    try:
        cur.execute(f"DESCRIBE DETAIL {qualified_name}")
    except Exception as exc:  # noqa: BLE001 - pyhive's OperationalError carries Spark's
        if "DELTA_PATH_DOES_NOT_EXIST" not in str(exc):
            raise
        # Registered for a lake folder that is gone (deleted, or a disk unmounted): the
        # name is stale, and "" differs from any wanted location, so it is replaced.
        return ""
    cols = [d[0] for d in cur.description]
    return str(dict(zip(cols, cur.fetchall()[0]))["location"])


class ThriftServer(Service):
    name = "spark-thrift"
    start_timeout = 180.0

    def __init__(self, cfg: Config):
        super().__init__(cfg.home, cfg.thrift.host, cfg.thrift.port)
        self.cfg = cfg
        self.java_classes = self.dir / "java-classes"

    def prepare(self) -> None:
        credentials(self.cfg)
        compile_java(self.java_classes)

    def start(self, progress: Callable[[str], None] = print) -> None:
        super().start(progress)
        progress(f"{self.name}: user {USER!r}; password in "
                 f"{secrets.path_of(self.cfg.home, PASSWORD_NAME)}")

    def command(self) -> Sequence[str]:
        java_binary()
        entries = conf_entries(self.cfg)
        entries["spark.driver.memory"] = self.cfg.thrift.driver_memory
        entries["spark.sql.warehouse.dir"] = str(self.dir / "warehouse")
        entries["spark.app.name"] = "redline-thrift-server"
        # Delta answers MIN/MAX from its file statistics with java.time values, which the
        # Thrift Server's row conversion cannot send (ClassCastException LocalDate ->
        # java.sql.Date): `SELECT max(day) FROM gold.first_pass_yield` failed. Reading the
        # files instead is correct and, at these sizes, as fast.
        entries["spark.databricks.delta.optimizeMetadataQuery.enabled"] = "false"
        # The server resolves data sources with the system class loader, which does not
        # see spark.jars: Delta goes on the driver's class path itself.
        entries["spark.driver.extraClassPath"] = ":".join(
            [*entries.pop("spark.jars").split(","), str(self.java_classes)])
        # Else SELECT * FROM text.`file:///etc/hostname` reads any file the server can.
        entries["spark.sql.runSQLOnFiles"] = "false"
        # Else SELECT '${env:HOME}' reads the server's environment (the guard protects it).
        entries["spark.sql.variable.substitute"] = "false"
        # Appended: Delta's extension stays (its parser and rules), and the guard's check
        # sees every plan, whoever resolved it.
        entries["spark.sql.extensions"] = ",".join(
            filter(None, [entries.get("spark.sql.extensions", ""), GUARD_CLASS]))
        metastore = self.dir / "metastore_db"
        entries["spark.hadoop.javax.jdo.option.ConnectionURL"] = (
            f"jdbc:derby:;databaseName={metastore};create=true")
        entries["spark.driver.extraJavaOptions"] = (
            entries.get("spark.driver.extraJavaOptions", "").replace(
                f"-Dderby.system.home={self.cfg.home}/derby", "")
            + f" -Dderby.system.home={self.dir}"
            # The password file's path, not the password: the command line is public.
            + f" -Dredline.thrift.user={USER}"
            + f" -Dredline.thrift.passwordFile={secrets.path_of(self.cfg.home, PASSWORD_NAME)}")
        cmd = [str(spark_home() / "bin" / "spark-submit"), "--class", MAIN_CLASS,
               "--name", "redline-thrift-server"]
        for key, value in entries.items():
            cmd += ["--conf", f"{key}={value}"]
        # The main class is ours, so spark-submit takes Hive's options only as the
        # application's arguments, after the (internal) primary resource.
        cmd += ["spark-internal",
                "--hiveconf", f"hive.server2.thrift.bind.host={self.host}",
                "--hiveconf", f"hive.server2.thrift.port={self.port}",
                "--hiveconf", "hive.server2.transport.mode=binary",
                "--hiveconf", "hive.server2.authentication=CUSTOM",
                "--hiveconf", f"hive.server2.custom.authentication.class={AUTHENTICATOR_CLASS}"]
        return cmd

    def environment(self) -> dict[str, str]:
        prepare_environment()
        return service_environment({
            "SPARK_HOME": str(spark_home()), "SPARK_LOG_DIR": str(self.dir),
            "SPARK_PID_DIR": str(self.dir), "PYSPARK_PYTHON": os.environ["PYSPARK_PYTHON"]})

    def check(self) -> bool:
        if not port_open(self.host, self.port):
            return False
        try:
            conn = connect(self.cfg)
        except Exception:  # noqa: BLE001 - any connection failure means "not yet healthy"
            return False
        try:
            cur = conn.cursor()
            cur.execute("SELECT 1")
            answered = cur.fetchall() == [(1,)]
            conn.close()  # fails when the server went away meanwhile: not healthy either
            return answered
        except Exception:  # noqa: BLE001
            return False

    def version(self) -> str:
        conn = connect(self.cfg)
        try:
            cur = conn.cursor()
            cur.execute("SELECT version()")
            return "spark " + str(cur.fetchall()[0][0]).split()[0]
        finally:
            conn.close()

    @staticmethod
    def reads(lake_root: str) -> bool:
        """Whether the server can read tables under ``lake_root``: not on an object store,
        whose keys it is never given (docs/object-store.md)."""
        return not s3a.is_s3a(lake_root)

    @staticmethod
    def unread_note(lake_root: str) -> str:
        """What a command says when it leaves a lake ``reads`` refuses unregistered."""
        return (f"the Spark Thrift Server does not read a lake on an object store "
                f"({lake_root}): its tables were not registered there (docs/object-store.md)")

    def register_tables(self, lake_root: str, tables: Sequence[catalog.Table]) -> None:
        """Make ``tables`` queryable by qualified name (idempotent); ``THRIFT_DOWN`` when
        the server is not answering, or stops answering meanwhile (a restart)."""
        from thrift.transport.TTransport import TTransportException

        if not self.check():
            raise RedlineError(
                "THRIFT_DOWN",
                f"the Spark Thrift Server is not answering on {self.address}; `redline up`")
        if not self.reads(lake_root):
            raise RedlineError(
                "THRIFT_OBJECT_STORE",
                f"the Spark Thrift Server cannot read a lake on an object store "
                f"({lake_root}): it is not given the store's keys (docs/object-store.md)")
        try:
            self._register(lake_root, tables)
        except (TTransportException, OSError) as exc:
            raise self._stopped_answering(exc) from exc

    def _stopped_answering(self, exc: Exception) -> RedlineError:
        return RedlineError(
            "THRIFT_DOWN",
            f"the Spark Thrift Server on {self.address} stopped answering while tables "
            f"were being registered ({exc}). The data is written; the next run registers "
            f"the tables once the server answers again (`redline status`)")

    def _register(self, lake_root: str, tables: Sequence[catalog.Table]) -> None:
        from pyhive.exc import DatabaseError

        conn = connect(self.cfg)
        try:
            cur = conn.cursor()
            for table in tables:
                wanted = catalog.location(lake_root, table)
                try:
                    self._register_one(cur, lake_root, table, wanted)
                except DatabaseError as exc:
                    message = _server_message(exc)
                    # A server shutting down (a restart) refuses statements before it
                    # closes its port: that is an outage, not a refusal.
                    if "stopped SparkContext" in message or not self.check():
                        raise self._stopped_answering(message) from exc
                    raise RedlineError(
                        "THRIFT_REGISTER",
                        f"the Spark Thrift Server on {self.address} could not register "
                        f"{table.qualified_name} at {wanted}: {message}. The "
                        f"data is written; see {self.log_file}") from exc
        finally:
            conn.close()

    @staticmethod
    def _register_one(cur, lake_root: str, table: catalog.Table, wanted: str) -> None:
        if is_view(cur, table.qualified_name):  # a placeholder: the table is here now
            cur.execute(f"DROP VIEW {table.qualified_name}")
        current = _registered_location(cur, table.qualified_name)
        if current is not None and current.rstrip("/") != _as_uri(wanted):
            # Registered for another lake root: an external table, so dropping it only
            # forgets the name; the data stays where it is.
            cur.execute(f"DROP TABLE {table.qualified_name}")
        for stmt in catalog.register_sql(lake_root, table):
            cur.execute(stmt)
        # The server caches Delta snapshots; a refresh shows the newest version.
        cur.execute(f"REFRESH TABLE {table.qualified_name}")

    def add_placeholders(self, tables: Sequence[catalog.Table]) -> list[catalog.Table]:
        """Register an empty view (``placeholder_sql``) for each of ``tables`` that has no
        name in the server yet (they must be missing from the lake); return those."""
        conn = connect(self.cfg)
        added = []
        try:
            cur = conn.cursor()
            for table in tables:
                database, name = table.qualified_name.split(".")
                cur.execute(f"SHOW DATABASES LIKE '{database}'")
                if cur.fetchall():
                    cur.execute(f"SHOW TABLES IN {database} LIKE '{name}'")
                    if cur.fetchall():
                        continue
                for stmt in placeholder_sql(table):
                    cur.execute(stmt)
                added.append(table)
        finally:
            conn.close()
        return added
