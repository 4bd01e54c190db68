"""Spark Thrift Server (HiveServer2 protocol) with Delta: SQL over the lake for BI tools.

Its embedded Derby metastore admits one process, so the Thrift Server owns it. Jobs
address tables by path through the catalog; after they write, ``register_tables`` makes
every existing catalog table visible here by its qualified name.

Every client logs in: the server runs with ``hive.server2.authentication=CUSTOM`` and
``java/PasswordFileAuthenticator.java`` (compiled by ``prepare``), which accepts the user
``redline`` with the password in ``<home>/secrets/thrift_password``. Queries on files
(``SELECT * FROM text.`file:///...```) are off: SQL reaches the lake's tables only.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from collections.abc import Callable, Sequence
from pathlib import Path

from redline import catalog, secrets
from redline.config import Config
from redline.errors import RedlineError
from redline.services.base import Service, port_open, service_environment
from redline.services.kafka import java_binary
from redline.spark import conf_entries, prepare_environment, spark_home

#: The one user the Thrift Server accepts; its password is the secret ``PASSWORD_NAME``.
USER = "redline"
PASSWORD_NAME = "thrift_password"
AUTHENTICATOR_SOURCE = Path(__file__).resolve().parent / "java" / "PasswordFileAuthenticator.java"
AUTHENTICATOR_CLASS = "redline.thrift.PasswordFileAuthenticator"


def credentials(cfg: Config) -> tuple[str, str]:
    """(user, password) of the Thrift Server; the password is generated on first use.

    Callers must not log the password; point people at ``secrets.path_of`` instead.
    """
    return USER, secrets.get_or_create(cfg.home, PASSWORD_NAME)


def connect(cfg: Config):
    """A PyHive connection to ``cfg``'s Thrift Server, logged in as ``USER``."""
    from pyhive import hive

    user, password = credentials(cfg)
    return hive.connect(host=cfg.thrift.host, port=cfg.thrift.port, username=user,
                        password=password, auth="CUSTOM")


def compile_authenticator(out: Path) -> Path:
    """Compile ``AUTHENTICATOR_SOURCE`` into the class folder ``out`` (again only when the
    source changed); return ``out``, the folder to put on the driver's class path."""
    source = AUTHENTICATOR_SOURCE.read_bytes()
    stamp = out / ".source-sha256"
    digest = hashlib.sha256(source).hexdigest()
    compiled = out.joinpath(*AUTHENTICATOR_CLASS.split(".")).with_suffix(".class")
    if compiled.exists() and stamp.exists() and stamp.read_text() == digest:
        return out
    javac = shutil.which("javac")
    if javac is None:
        raise RedlineError(
            "JAVAC_MISSING",
            "the Thrift Server's login check is compiled at start and needs a JDK: install "
            "one (apt-get install openjdk-17-jdk-headless, or `make system-packages`) so "
            "that `javac` is on PATH")
    hive_jars = sorted((spark_home() / "jars").glob("spark-hive-thriftserver_*.jar"))
    if not hive_jars:
        raise RedlineError("THRIFT_JAR_MISSING",
                           f"no spark-hive-thriftserver jar in {spark_home() / 'jars'}; "
                           f"reinstall pyspark (`make setup`)")
    building = out.with_name(out.name + ".building")
    shutil.rmtree(building, ignore_errors=True)
    result = subprocess.run(
        [javac, "--release", "17", "-nowarn", "-cp", str(hive_jars[0]), "-d", str(building),
         str(AUTHENTICATOR_SOURCE)], capture_output=True, text=True)
    if result.returncode != 0:
        shutil.rmtree(building, ignore_errors=True)
        raise RedlineError(
            "THRIFT_AUTH_COMPILE",
            f"compiling {AUTHENTICATOR_SOURCE} failed (javac exit {result.returncode}):\n"
            f"{(result.stdout + result.stderr)[-2000:]}")
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
    cur.execute(f"DESCRIBE DETAIL {qualified_name}")
    cols = [d[0] for d in cur.description]
    return str(dict(zip(cols, cur.fetchall()[0]))["location"])


class ThriftServer(Service):
    name = "spark-thrift"
    start_timeout = 180.0

    def __init__(self, cfg: Config):
        super().__init__(cfg.home, cfg.thrift.host, cfg.thrift.port)
        self.cfg = cfg
        self.auth_classes = self.dir / "auth-classes"

    def prepare(self) -> None:
        credentials(self.cfg)
        compile_authenticator(self.auth_classes)

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
            [*entries.pop("spark.jars").split(","), str(self.auth_classes)])
        # Else SELECT * FROM text.`file:///etc/hostname` reads any file the server can.
        entries["spark.sql.runSQLOnFiles"] = "false"
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
        cmd = [str(spark_home() / "bin" / "spark-submit"),
               "--class", "org.apache.spark.sql.hive.thriftserver.HiveThriftServer2",
               "--name", "redline-thrift-server"]
        for key, value in entries.items():
            cmd += ["--conf", f"{key}={value}"]
        cmd += ["--hiveconf", f"hive.server2.thrift.bind.host={self.host}",
                "--hiveconf", f"hive.server2.thrift.port={self.port}",
                "--hiveconf", "hive.server2.transport.mode=binary",
                "--hiveconf", "hive.server2.authentication=CUSTOM",
                "--hiveconf", f"hive.server2.custom.authentication.class={AUTHENTICATOR_CLASS}",
                "spark-internal"]
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
            return cur.fetchall() == [(1,)]
        except Exception:  # noqa: BLE001
            return False
        finally:
            conn.close()

    def version(self) -> str:
        conn = connect(self.cfg)
        try:
            cur = conn.cursor()
            cur.execute("SELECT version()")
            return "spark " + str(cur.fetchall()[0][0]).split()[0]
        finally:
            conn.close()

    def register_tables(self, lake_root: str, tables: Sequence[catalog.Table]) -> None:
        """Make ``tables`` queryable by qualified name (idempotent)."""
        if not self.check():
            raise RedlineError(
                "THRIFT_DOWN",
                f"the Spark Thrift Server is not answering on {self.address}; `redline up`")
        conn = connect(self.cfg)
        try:
            cur = conn.cursor()
            for table in tables:
                if is_view(cur, table.qualified_name):  # a placeholder: the table is here now
                    cur.execute(f"DROP VIEW {table.qualified_name}")
                wanted = catalog.location(lake_root, table)
                current = _registered_location(cur, table.qualified_name)
                if current is not None and current.rstrip("/") != _as_uri(wanted):
                    # Registered for another lake root: an external table, so dropping
                    # it only forgets the name; the data stays where it is.
                    cur.execute(f"DROP TABLE {table.qualified_name}")
                for stmt in catalog.register_sql(lake_root, table):
                    cur.execute(stmt)
                # The server caches Delta snapshots; a refresh shows the newest version.
                cur.execute(f"REFRESH TABLE {table.qualified_name}")
        finally:
            conn.close()

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
