"""Probes of what a local attacker would try against a running redline (issue 19).

Each test names the hole it closes: anonymous access to a service, reading files through
SQL, secrets in logs or process lists, state readable by other users.
"""

from __future__ import annotations

# -- Kafka ---------------------------------------------------------------------------------
import os
import subprocess
import uuid
from pathlib import Path

import pytest

_KAFKA_FAST = {"request_timeout_ms": 5000, "bootstrap_timeout_ms": 5000}


@pytest.fixture
def kafka_topic(cfg, kafka_only):
    """A fresh one-partition topic, created and finally deleted by admin."""
    from kafka import KafkaAdminClient
    from kafka.admin import NewTopic

    from redline.streaming.kafka_options import client_options

    name = f"sec-{uuid.uuid4().hex[:8]}"
    admin = KafkaAdminClient(**client_options(cfg, user="admin"))
    try:
        admin.create_topics([NewTopic(name, 1, 1)])
        yield name
        admin.delete_topics([name])
    finally:
        admin.close()


def _kafka_admin(opts: dict):
    from kafka import KafkaAdminClient

    return KafkaAdminClient(client_id="redline-probe", **_KAFKA_FAST, **opts)


def _kafka_send(opts: dict, topic: str) -> None:
    """One record, acknowledged or raising the broker's error."""
    from kafka import KafkaProducer

    # Without idempotence the refusal is the topic's (with it, InitProducerId's).
    producer = KafkaProducer(enable_idempotence=False, max_block_ms=10_000, retries=0,
                             **_KAFKA_FAST, **opts)
    try:
        producer.send(topic, b"probe").get(timeout=15)
    finally:
        producer.close(5)


def _kafka_read(opts: dict, topic: str) -> int:
    """Records in partition 0, all read from its start (a refusal raises)."""
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(**_KAFKA_FAST, **opts)
    tp = TopicPartition(topic, 0)
    try:
        consumer.assign([tp])
        end = consumer.end_offsets([tp])[tp]
        consumer.seek(tp, 0)
        read = 0
        for _ in range(10):
            if read >= end:
                break
            read += len(consumer.poll(timeout_ms=1000).get(tp, []))
        return read
    finally:
        consumer.close()


@pytest.mark.integration
def test_kafka_refuses_an_anonymous_client(cfg, kafka_only):
    from kafka.errors import KafkaTimeoutError

    from redline.streaming.kafka_options import client_options

    # A client without SASL cannot even fetch metadata: once, anyone could delete topics.
    with pytest.raises(KafkaTimeoutError, match="Unable to bootstrap"):
        _kafka_admin({"bootstrap_servers": cfg.kafka.servers,
                      "security_protocol": "PLAINTEXT"})
    _kafka_admin(client_options(cfg, user="admin")).close()  # the broker is up


def _kafka_request(host: str, port: int, api_key: int, version: int, body: bytes = b""
                   ) -> bytes | None:
    """One raw Kafka request on a fresh connection, no login: the response's bytes after
    the correlation id, or None if the broker closed the connection without answering."""
    import socket
    import struct

    client = b"probe"
    message = struct.pack(">hhih", api_key, version, 7, len(client)) + client + body
    with socket.create_connection((host, port), timeout=10) as sock:
        sock.sendall(struct.pack(">i", len(message)) + message)
        data = b""
        try:
            while len(data) < 4 or len(data) < 4 + struct.unpack(">i", data[:4])[0]:
                chunk = sock.recv(65536)
                if not chunk:
                    return None
                data += chunk
        except (TimeoutError, ConnectionResetError):
            return None
    assert struct.unpack(">i", data[4:8])[0] == 7  # our correlation id
    return data[8:]


@pytest.mark.integration
def test_kafka_answers_only_the_sasl_exchange_before_login(cfg, kafka_only):
    """docs/security.md once said an anonymous client gets no answer at all; the SASL
    protocol itself answers two requests before login (KIP-35, KIP-43), and nothing else."""
    import struct

    host, port = cfg.kafka.host, cfg.kafka.port
    # ApiVersions v0: error 0 and the list of API keys with their version ranges.
    versions = _kafka_request(host, port, api_key=18, version=0)
    assert versions is not None and struct.unpack(">h", versions[:2])[0] == 0
    count = struct.unpack(">i", versions[2:6])[0]
    keys = {struct.unpack(">h", versions[6 + 6 * i:8 + 6 * i])[0] for i in range(count)}
    assert {0, 1, 3, 17, 18, 36} <= keys  # Produce, Fetch, Metadata, the SASL pair
    # SaslHandshake v1 for PLAIN: error 0 and the enabled mechanisms.
    mechanism = b"PLAIN"
    handshake = _kafka_request(host, port, api_key=17, version=1,
                               body=struct.pack(">h", len(mechanism)) + mechanism)
    assert handshake is not None and struct.unpack(">h", handshake[:2])[0] == 0
    assert b"SCRAM-SHA-512" in handshake and b"PLAIN" in handshake
    # Anything else before login: the broker closes the connection without an answer.
    for api_key, version, body in ((3, 0, struct.pack(">i", 0)),  # Metadata, all topics
                                   (19, 0, struct.pack(">i", 0)),  # CreateTopics, none
                                   (32, 0, struct.pack(">i", 0))):  # DescribeConfigs
        assert _kafka_request(host, port, api_key, version, body) is None, api_key


@pytest.mark.integration
def test_kafka_controller_refuses_an_anonymous_client(cfg, kafka_only, tmp_path):
    """Since Kafka 3.7 admin clients talk to controllers directly (--bootstrap-controller):
    an anonymous client there would be a super user."""
    from redline.cli import main

    controller = f"{cfg.kafka.host}:{cfg.kafka.controller_port}"
    limits = "request.timeout.ms=3000\ndefault.api.timeout.ms=6000\n"
    admin = tmp_path / "admin.properties"
    assert main(["kafka", "client-config", "--user", "admin", "--out", str(admin)]) == 0
    admin.write_text(admin.read_text() + limits)
    anonymous = tmp_path / "anonymous.properties"
    anonymous.write_text(limits)

    def quorum(settings):
        return subprocess.run(kafka_only.java(
            "org.apache.kafka.tools.MetadataQuorumCommand", "--bootstrap-controller",
            controller, "--command-config", str(settings), "describe", "--status"),
            capture_output=True, text=True, timeout=120)

    refused = quorum(anonymous)
    assert refused.returncode != 0 and "LeaderId" not in refused.stdout, refused.stdout
    assert "TimeoutException" in refused.stderr, refused.stderr[-2000:]
    allowed = quorum(admin)  # the controller answers its super user
    assert allowed.returncode == 0 and "LeaderId" in allowed.stdout, allowed.stderr[-2000:]


@pytest.mark.integration
@pytest.mark.parametrize("user", ["producer", "ingest", "admin"])
def test_kafka_refuses_a_wrong_password(cfg, kafka_only, user):
    from kafka.errors import KafkaTimeoutError

    from redline.streaming.kafka_options import client_options

    right = client_options(cfg, user=user)
    admin = _kafka_admin(right)
    try:
        assert isinstance(admin.list_topics(), list)
    finally:
        admin.close()
    # kafka-python retries a refused login until its bootstrap timeout.
    with pytest.raises(KafkaTimeoutError, match="Unable to bootstrap"):
        _kafka_admin({**right, "sasl_plain_password": right["sasl_plain_password"] + "x"})


@pytest.mark.integration
def test_kafka_producer_writes_but_cannot_read_create_or_delete(cfg, kafka_topic):
    from kafka.admin import NewPartitions, NewTopic
    from kafka.errors import TopicAuthorizationFailedError

    from redline.streaming.kafka_options import client_options

    producer = client_options(cfg, user="producer")
    _kafka_send(producer, kafka_topic)  # what it is for
    with pytest.raises(TopicAuthorizationFailedError):
        _kafka_read(producer, kafka_topic)
    admin = _kafka_admin(producer)
    try:
        with pytest.raises(TopicAuthorizationFailedError):
            admin.create_topics([NewTopic(f"{kafka_topic}-new", 1, 1)])
        with pytest.raises(TopicAuthorizationFailedError):
            admin.delete_topics([kafka_topic])
        with pytest.raises(TopicAuthorizationFailedError):
            admin.create_partitions({kafka_topic: NewPartitions(2)})
        assert f"{kafka_topic}-new" not in admin.list_topics()
        assert kafka_topic in admin.list_topics()
    finally:
        admin.close()
    assert _kafka_read(client_options(cfg, user="ingest"), kafka_topic) == 1


@pytest.mark.integration
def test_kafka_ingest_reads_but_cannot_write_create_or_delete(cfg, kafka_topic):
    from kafka.admin import NewTopic
    from kafka.errors import TopicAuthorizationFailedError

    from redline.streaming.kafka_options import client_options

    ingest = client_options(cfg, user="ingest")
    with pytest.raises(TopicAuthorizationFailedError):
        _kafka_send(ingest, kafka_topic)
    assert _kafka_read(ingest, kafka_topic) == 0  # nothing was written
    admin = _kafka_admin(ingest)
    try:
        with pytest.raises(TopicAuthorizationFailedError):
            admin.create_topics([NewTopic(f"{kafka_topic}-new", 1, 1)])
        with pytest.raises(TopicAuthorizationFailedError):
            admin.delete_topics([kafka_topic])
    finally:
        admin.close()


@pytest.mark.integration
def test_kafka_admin_manages_topics(cfg, kafka_only):
    from kafka.admin import NewTopic

    from redline.streaming.kafka_options import client_options

    opts = client_options(cfg, user="admin")
    name = f"sec-admin-{uuid.uuid4().hex[:8]}"
    admin = _kafka_admin(opts)
    try:
        admin.create_topics([NewTopic(name, 1, 1)])
        _kafka_send(opts, name)
        assert _kafka_read(opts, name) == 1
        admin.delete_topics([name])
    finally:
        admin.close()


@pytest.mark.integration
def test_kafka_passwords_stay_out_of_files_others_read_and_the_process_list(cfg, kafka_only):
    from pathlib import Path

    from redline import secrets

    props = kafka_only.props
    assert props.stat().st_mode & 0o777 == 0o600
    settings = props.read_text()
    pid = kafka_only.pid()
    cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
    log = kafka_only.log_file.read_text(errors="replace")
    for user in ("admin", "producer", "ingest"):
        path = secrets.path_of(cfg.home, f"kafka_{user}_password")
        assert path.stat().st_mode & 0o777 == 0o600
        password = path.read_text().strip()
        assert password not in cmdline and password not in log and password not in settings
    # The broker's JAAS settings name the file the admin password is in, not the password.
    assert f"${{file:{secrets.path_of(cfg.home, 'kafka_broker.properties')}:" in settings


# -- MLflow --------------------------------------------------------------------------------
def _mlflow(server, method: str, path: str, auth=None, **kwargs):
    import requests

    return requests.request(method, f"http://{server.address}/api/2.0/mlflow/{path}",
                            auth=auth, timeout=30, **kwargs)


@pytest.fixture
def mlflow_model(cfg, mlflow_server):
    """A registered model created by the admin, deleted afterwards."""
    from redline.services.mlflow_server import admin_credentials

    admin = admin_credentials(cfg)
    name = f"probe-{uuid.uuid4().hex[:8]}"
    created = _mlflow(mlflow_server, "POST", "registered-models/create", admin,
                      json={"name": name})
    assert created.status_code == 200, created.text
    yield name
    _mlflow(mlflow_server, "DELETE", "registered-models/delete", admin, json={"name": name})


@pytest.mark.integration
def test_mlflow_refuses_anonymous_requests(cfg, mlflow_server, mlflow_model):
    """Once, any local process could register a model version and move @champion, and
    `redline ml score` ran that model."""
    from redline.services.mlflow_server import admin_credentials

    writes = [("registered-models/alias", {"name": mlflow_model, "alias": "champion",
                                           "version": "1"}),
              ("model-versions/create", {"name": mlflow_model, "source": "/tmp/evil"}),
              ("registered-models/create", {"name": f"{mlflow_model}-evil"})]
    user, password = admin_credentials(cfg)
    for auth in (None, (user, password + "x"), ("nobody", password)):
        search = _mlflow(mlflow_server, "GET", "registered-models/search", auth)
        assert search.status_code == 401, (auth and auth[0], search.text[:200])
        for path, body in writes:
            r = _mlflow(mlflow_server, "POST", path, auth, json=body)
            assert r.status_code == 401, (path, r.text[:200])
    search = _mlflow(mlflow_server, "GET", "registered-models/search", (user, password))
    assert search.status_code == 200
    models = {m["name"]: m for m in search.json()["registered_models"]}
    assert mlflow_model in models and f"{mlflow_model}-evil" not in models
    assert not models[mlflow_model].get("latest_versions")  # nothing got registered


@pytest.mark.integration
def test_mlflow_gives_a_new_user_nothing_by_default(cfg, mlflow_server, mlflow_model):
    """default_permission: a user who logs in sees and changes only what it created."""
    from redline.services.mlflow_server import admin_credentials

    admin = admin_credentials(cfg)
    probe = (f"probe-{uuid.uuid4().hex[:8]}", uuid.uuid4().hex)
    created = _mlflow(mlflow_server, "POST", "users/create", admin,
                      json={"username": probe[0], "password": probe[1]})
    assert created.status_code == 200, created.text
    try:
        got = _mlflow(mlflow_server, "GET", "registered-models/get", probe,
                      params={"name": mlflow_model})
        assert got.status_code == 403, got.text[:200]
        tag = _mlflow(mlflow_server, "POST", "registered-models/set-tag", probe,
                      json={"name": mlflow_model, "key": "k", "value": "v"})
        assert tag.status_code == 403, tag.text[:200]
        search = _mlflow(mlflow_server, "GET", "registered-models/search", probe)
        assert mlflow_model not in {m["name"] for m in
                                    search.json().get("registered_models", [])}
    finally:
        _mlflow(mlflow_server, "DELETE", "users/delete", admin, json={"username": probe[0]})


@pytest.mark.integration
def test_mlflow_clients_of_redline_log_in(cfg, mlflow_server, mlflow_model, monkeypatch):
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    from redline.services.mlflow_server import tracking_uri

    monkeypatch.delenv("MLFLOW_TRACKING_USERNAME", raising=False)
    monkeypatch.delenv("MLFLOW_TRACKING_PASSWORD", raising=False)
    with pytest.raises(MlflowException, match="401|not authenticated|Unauthorized"):
        MlflowClient(cfg.mlflow.uri).get_registered_model(mlflow_model)
    client = MlflowClient(tracking_uri(cfg))  # puts the admin's login in os.environ
    assert client.get_registered_model(mlflow_model).name == mlflow_model
    assert mlflow_server.version().startswith("mlflow 3.17")
    assert mlflow_server.check()  # /health stays open for the health check


@pytest.mark.integration
def test_mlflow_runs_no_job_workers_and_keeps_its_password_private(cfg, mlflow_server):
    """MLflow 3.17 started a job runner and seven huey workers (about 2.2 GB) redline never
    used; the admin password is in files only the owner reads, not in a process's
    command line or the log."""
    import os
    from pathlib import Path

    from redline import secrets
    from redline.services.mlflow_server import ADMIN_PASSWORD_NAME

    pid = mlflow_server.pid()
    group, environments = [], []
    for proc in Path("/proc").iterdir():
        try:
            if proc.name.isdigit() and os.getpgid(int(proc.name)) == pid:
                group.append((proc / "cmdline").read_bytes().decode(errors="replace"))
                environments.append((proc / "environ").read_bytes().decode(errors="replace"))
        except (ProcessLookupError, FileNotFoundError):
            continue
    assert group and not [c for c in group if "huey" in c or "_job_runner" in c], group
    password = secrets.path_of(cfg.home, ADMIN_PASSWORD_NAME).read_text().strip()
    assert not [c for c in group if password in c]
    # Once, the first start passed the admin password in the server's environment
    # (MLFLOW_AUTH_ADMIN_PASSWORD), readable in /proc/PID/environ for the server's life.
    # The session's server is a first start (its user database is new).
    assert len(environments) == len(group)
    assert not [e for e in environments if password in e or "ADMIN_PASSWORD" in e]
    assert password not in mlflow_server.auth_config.read_text()
    assert password not in mlflow_server.log_file.read_text(errors="replace")
    for path in (secrets.path_of(cfg.home, ADMIN_PASSWORD_NAME), mlflow_server.auth_config,
                 mlflow_server.auth_db):
        assert path.stat().st_mode & 0o777 == 0o600, path



# -- Spark Thrift Server -------------------------------------------------------------------
def _thrift_login(cfg, **login) -> list:
    from pyhive import hive

    conn = hive.connect(host=cfg.thrift.host, port=cfg.thrift.port, **login)
    try:
        cur = conn.cursor()
        cur.execute("SELECT 1")
        return cur.fetchall()
    finally:
        conn.close()


@pytest.mark.integration
def test_thrift_refuses_anonymous_and_wrong_logins(cfg, thrift_server):
    """Once, any user name was accepted (auth NONE) and anyone could query the lake."""
    from thrift.transport.TTransport import TTransportException

    from redline.services.thrift import credentials

    user, password = credentials(cfg)
    assert _thrift_login(cfg, username=user, password=password, auth="CUSTOM") == [(1,)]
    for login in ({"username": user, "auth": "NONE"},
                  {"username": "anonymous", "auth": "NONE"},
                  {"username": user, "password": password + "x", "auth": "CUSTOM"},
                  {"username": "admin", "password": password, "auth": "CUSTOM"},
                  {"username": user, "password": "", "auth": "CUSTOM"}):
        with pytest.raises(TTransportException, match="Error validating the login"):
            _thrift_login(cfg, **login)


@pytest.mark.integration
def test_thrift_refuses_sql_on_files_even_logged_in(cfg, thrift_server, tmp_path):
    """Once, SELECT value FROM text.`file:///etc/hostname` returned the file."""
    from pyhive.exc import OperationalError

    from redline.services.thrift import connect

    private = tmp_path / "private.txt"
    private.write_text("not for SQL\n")
    conn = connect(cfg)
    try:
        cur = conn.cursor()
        for path in (f"file://{private}", "file:///etc/hostname"):
            with pytest.raises(OperationalError, match="TABLE_OR_VIEW_NOT_FOUND"):
                cur.execute(f"SELECT * FROM text.`{path}`")
        cur.execute("SELECT 1")  # the session is still usable
        assert cur.fetchall() == [(1,)]
    finally:
        conn.close()


# The SQL guard (redline/services/java/SqlGuard.java): statements reaching past the lake's
# tables fail before they run, with this message.
def _refused(cur, sql: str, what: str) -> None:
    """``sql`` fails with the guard's refusal of ``what`` (a regex); the session goes on."""
    from pyhive.exc import OperationalError

    with pytest.raises(OperationalError,
                       match=f"redline: {what}.* is not allowed through the Thrift Server"):
        cur.execute(sql)
    cur.execute("SELECT 1")
    assert cur.fetchall() == [(1,)]


@pytest.fixture
def thrift_cursor(cfg, thrift_server):
    """A cursor of a connection logged in as redline's Thrift user."""
    from redline.services.thrift import connect

    conn = connect(cfg)
    try:
        yield conn.cursor()
    finally:
        conn.close()


def _names(cur, sql: str) -> list[str]:
    cur.execute(sql)
    return [row[1] for row in cur.fetchall()]


@pytest.mark.integration
def test_thrift_guard_refuses_running_a_command(thrift_cursor, tmp_path):
    """Once, SELECT TRANSFORM(1) USING 'cat /etc/hostname' ran cat as the server's user."""
    marker = tmp_path / "ran"
    for sql in (f"SELECT TRANSFORM(1) USING 'touch {marker}'",
                f"SELECT * FROM range(1) WHERE id IN "
                f"(SELECT TRANSFORM(id) USING 'touch {marker}' AS (x BIGINT) FROM range(1))",
                f"""EXECUTE IMMEDIATE "SELECT TRANSFORM(1) USING 'touch {marker}'" """,
                "SELECT TRANSFORM(1) USING 'cat /etc/hostname'"):
        _refused(thrift_cursor, sql, r"running a command \(TRANSFORM")
    assert not marker.exists()


@pytest.mark.integration
def test_thrift_guard_refuses_data_sources_on_files(thrift_cursor, tmp_path):
    """Once, CREATE TEMPORARY VIEW v USING text OPTIONS (path '/etc/hostname') read the file
    (and CREATE TABLE ... USING csv LOCATION '/etc' a folder): only Delta sources now."""
    private = tmp_path / "private.txt"
    private.write_text("not for SQL\n")
    cur = thrift_cursor
    name = f"guard_{uuid.uuid4().hex[:8]}"
    cur.execute(f"CREATE TABLE {name}_src (value STRING) USING delta "
                f"LOCATION '{tmp_path / 'src'}'")
    try:
        for provider in ("text", "csv", "json", "parquet", "orc"):
            _refused(cur, f"CREATE TEMPORARY VIEW {name} USING {provider} "
                          f"OPTIONS (path '{private}')", f"creating a temporary view with {provider}")
            _refused(cur, f"CREATE TABLE {name} USING {provider} LOCATION '{tmp_path}'",
                     f"creating a table with {provider}")
            _refused(cur, f"CREATE TABLE {name} USING {provider} OPTIONS (path '{private}')",
                     f"creating a table with {provider}")
        _refused(cur, f"CREATE TABLE {name} (value STRING) STORED AS TEXTFILE "
                      f"LOCATION '{tmp_path}'", "creating a table with hive")
        _refused(cur, f"CREATE TABLE {name} LIKE {name}_src USING text LOCATION '{tmp_path}'",
                 r"creating a table \(CREATE TABLE ... LIKE\) with text")
        _refused(cur, f"CREATE TABLE {name} USING csv LOCATION '{tmp_path / 'ctas'}' "
                      f"AS SELECT 'x' AS value", "creating a table with csv")
        _refused(cur, f"CREATE TEMPORARY VIEW {name} USING jdbc OPTIONS "
                      f"(url 'jdbc:derby:memory:{name};create=true', dbtable 'SYS.SYSTABLES')",
                 "creating a temporary view with jdbc")
        assert _names(cur, f"SHOW TABLES LIKE '{name}'") == []  # no table, no temporary view
        assert not (tmp_path / "ctas").exists()
    finally:
        cur.execute(f"DROP TABLE IF EXISTS {name}_src")


@pytest.mark.integration
def test_thrift_guard_keeps_sql_on_files_off(cfg, thrift_cursor, tmp_path):
    """Once, SET spark.sql.runSQLOnFiles=true turned file queries back on for the session."""
    from pyhive import hive
    from pyhive.exc import OperationalError

    from redline.services.thrift import credentials

    private = tmp_path / "private.txt"
    private.write_text("not for SQL\n")
    cur = thrift_cursor
    for sql in ("SET spark.sql.runSQLOnFiles=true", "SET `spark.sql.runSQLOnFiles` = true",
                "SET hivevar:spark.sql.runSQLOnFiles=true", "RESET spark.sql.runSQLOnFiles"):
        _refused(cur, sql, "changing (hivevar:)?spark.sql.runSQLOnFiles")
    for sql in ("SET spark.sql.catalog.files="
                "org.apache.spark.sql.execution.datasources.v2.jdbc.JDBCTableCatalog",
                "SET spark.sql.extensions=io.delta.sql.DeltaSparkSessionExtension"):
        _refused(cur, sql, "changing spark.sql.(catalog.files|extensions)")
    cur.execute("SET spark.sql.runSQLOnFiles")
    assert cur.fetchall() == [("spark.sql.runSQLOnFiles", "false")]
    with pytest.raises(OperationalError, match="TABLE_OR_VIEW_NOT_FOUND"):
        cur.execute(f"SELECT * FROM text.`file://{private}`")
    # A client may also send settings when it opens its session, not as a SET statement.
    user, password = credentials(cfg)
    with pytest.raises(OperationalError, match="redline: a session with "
                                               "spark.sql.runSQLOnFiles=true is not allowed"):
        conn = hive.connect(host=cfg.thrift.host, port=cfg.thrift.port, username=user,
                            password=password, auth="CUSTOM",
                            configuration={"set:hiveconf:spark.sql.runSQLOnFiles": "true"})
        try:
            leak = conn.cursor()
            leak.execute(f"SELECT * FROM text.`file://{private}`")
        finally:
            conn.close()


@pytest.mark.integration
def test_thrift_guard_refuses_writing_a_directory(thrift_cursor, tmp_path):
    """INSERT OVERWRITE [LOCAL] DIRECTORY would write (and replace) any folder the server
    can write."""
    folders = [tmp_path / f"out{n}" for n in range(3)]
    for sql in (f"INSERT OVERWRITE DIRECTORY '{folders[0]}' USING csv SELECT 'x' AS value",
                f"INSERT OVERWRITE LOCAL DIRECTORY '{folders[1]}' SELECT 'x' AS value",
                f"INSERT OVERWRITE LOCAL DIRECTORY '{folders[2]}' STORED AS TEXTFILE "
                f"SELECT 'x' AS value"):
        _refused(thrift_cursor, sql, r"writing to a directory \(INSERT OVERWRITE")
    assert not any(folder.exists() for folder in folders)


@pytest.mark.integration
def test_thrift_guard_refuses_placing_a_database_in_a_folder(thrift_cursor, tmp_path):
    """CREATE DATABASE d LOCATION '/some/dir' then DROP DATABASE d deleted /some/dir and
    everything in it."""
    folder = tmp_path / "precious"
    folder.mkdir()
    (folder / "file.txt").write_text("keep me\n")
    cur = thrift_cursor
    name = f"guard_{uuid.uuid4().hex[:8]}"
    try:
        for sql in (f"CREATE DATABASE {name} LOCATION '{folder}'",
                    f"CREATE SCHEMA IF NOT EXISTS {name} LOCATION '{folder}'"):
            _refused(cur, sql, "placing a database in a folder")
        cur.execute(f"CREATE DATABASE {name}")  # in the warehouse: allowed
        _refused(cur, f"ALTER DATABASE {name} SET LOCATION '{folder}'",
                 "placing a database in a folder")
    finally:
        cur.execute(f"DROP DATABASE IF EXISTS {name} CASCADE")
    assert (folder / "file.txt").read_text() == "keep me\n"


@pytest.mark.integration
def test_thrift_guard_refuses_loading_files_and_code(thrift_cursor, tmp_path):
    """ADD JAR/FILE/ARCHIVE would load any file into the server (a jar's classes run there);
    LOAD DATA would copy a file into a table."""
    import zipfile

    private = tmp_path / "private.txt"
    private.write_text("not for SQL\n")
    jar, archive = tmp_path / "probe.jar", tmp_path / "probe.zip"
    for path in (jar, archive):
        with zipfile.ZipFile(path, "w") as zf:
            zf.writestr("probe.txt", "probe")
    cur = thrift_cursor
    name = f"guard_{uuid.uuid4().hex[:8]}"
    cur.execute(f"CREATE TABLE {name} (value STRING) USING delta "
                f"LOCATION '{tmp_path / 'table'}'")
    try:
        _refused(cur, f"ADD JAR {jar}", "ADD JAR")
        _refused(cur, f"ADD FILE {private}", "ADD FILE")
        _refused(cur, f"ADD ARCHIVE {archive}", "ADD ARCHIVE")
        _refused(cur, f"LOAD DATA LOCAL INPATH '{private}' INTO TABLE {name}", "LOAD DATA")
        _refused(cur, f"LOAD DATA INPATH '{private}' OVERWRITE INTO TABLE {name}", "LOAD DATA")
        for kind in ("JARS", "FILES", "ARCHIVES"):
            cur.execute(f"LIST {kind}")
            assert not [row for row in cur.fetchall() if str(tmp_path) in row[0]], kind
        cur.execute(f"SELECT count(*) FROM {name}")
        assert cur.fetchall() == [(0,)]
        assert private.read_text() == "not for SQL\n"
    finally:
        cur.execute(f"DROP TABLE IF EXISTS {name}")


@pytest.mark.integration
def test_thrift_guard_refuses_java_calls(thrift_cursor):
    """SELECT reflect('java.lang.System', 'getProperty', ...) called any static Java method."""
    cur = thrift_cursor
    name = f"guard_{uuid.uuid4().hex[:8]}"
    call = "reflect('java.lang.System', 'getProperty', 'user.name')"
    for sql in (f"SELECT {call}",
                f"SELECT {call.replace('reflect', 'java_method')}",
                f"SELECT {call.replace('reflect', 'try_reflect')}",
                f"SELECT * FROM range(1) WHERE id IN (SELECT length({call}))",
                f"SELECT transform(array(1), x -> {call})",
                f"WITH c AS (SELECT {call} AS who) SELECT * FROM c",
                f"CREATE VIEW {name} AS SELECT {call} AS who",
                f"CREATE TEMPORARY FUNCTION {name}() RETURNS STRING RETURN {call}"):
        _refused(cur, sql, r"calling Java methods \(reflect")
    _refused(cur, f"CREATE TEMPORARY FUNCTION {name} AS "
                  f"'org.apache.hadoop.hive.ql.udf.generic.GenericUDFReflect'",
             "creating a function from a class")
    assert _names(cur, f"SHOW VIEWS LIKE '{name}'") == []
    cur.execute(f"SHOW USER FUNCTIONS LIKE '{name}'")
    assert cur.fetchall() == []


@pytest.mark.integration
def test_thrift_session_open_cannot_set_system_properties(cfg, thrift_server, tmp_path):
    """Once, a session opened with configuration {'set:system:NAME': VALUE} set the Java
    system property NAME for the whole server, before any check ran: re-pointing
    redline.thrift.passwordFile at a file of the caller's made the next login take the
    caller's password, and a bad value locked every client out, Superset's included."""
    from pyhive import hive

    from redline.services.thrift import credentials

    user, password = credentials(cfg)
    planted = tmp_path / "planted_password"
    planted.write_text("planted\n")
    planted.chmod(0o600)
    attempts = ({"set:system:redline.thrift.passwordFile": str(planted)},
                {"set:system:redline.thrift.user": "intruder"},
                {"set:system:redline.thrift.passwordFile": "/nonexistent"},
                {"set:system:user.home": str(tmp_path), "use:database": "default"})
    for configuration in attempts:
        with pytest.raises(Exception, match="redline: setting the Java system property "
                           ".* is not allowed through the Thrift Server"):
            hive.connect(host=cfg.thrift.host, port=cfg.thrift.port, username=user,
                         password=password, auth="CUSTOM", configuration=configuration)
    # The next logins are judged as before: the real password in, the planted one out.
    assert _thrift_login(cfg, username=user, password=password, auth="CUSTOM") == [(1,)]
    from thrift.transport.TTransport import TTransportException

    for login in ({"username": user, "password": "planted"},
                  {"username": "intruder", "password": password}):
        with pytest.raises(TTransportException, match="Error validating the login"):
            _thrift_login(cfg, auth="CUSTOM", **login)


@pytest.mark.integration
def test_thrift_variables_stay_literal(cfg, thrift_server, thrift_cursor):
    """Once, SELECT '${env:HOME}', '${system:user.name}' answered the server's home folder
    and OS user: what the refused reflect would give. Substitution is off and a session
    cannot turn it on, neither by SET nor at session open (Spark's or Hive's)."""
    from pyhive import hive

    from redline.services.thrift import credentials

    cur = thrift_cursor
    cur.execute("SELECT '${env:HOME}', '${system:user.name}', "
                "'${hiveconf:hive.server2.thrift.port}', '${spark.app.name}'")
    assert cur.fetchall() == [("${env:HOME}", "${system:user.name}",
                               "${hiveconf:hive.server2.thrift.port}", "${spark.app.name}")]
    for sql in ("SET spark.sql.variable.substitute=true",
                "SET hivevar:spark.sql.variable.substitute=true",
                "RESET spark.sql.variable.substitute"):
        _refused(cur, sql, "changing (hivevar:)?spark.sql.variable.substitute")
    user, password = credentials(cfg)
    # At session open: Hive's own substitution of the values sent (a variable set to
    # ${env:HOME} reads back literally), and turning either substitution on.
    conn = hive.connect(host=cfg.thrift.host, port=cfg.thrift.port, username=user,
                        password=password, auth="CUSTOM",
                        configuration={"set:hivevar:probe": "${env:HOME}"})
    try:
        other = conn.cursor()
        other.execute("SET probe")
        assert other.fetchall() == [("probe", "${env:HOME}")]
    finally:
        conn.close()
    with pytest.raises(Exception, match="Cannot modify hive.variable.substitute"):
        hive.connect(host=cfg.thrift.host, port=cfg.thrift.port, username=user,
                     password=password, auth="CUSTOM",
                     configuration={"set:hiveconf:hive.variable.substitute": "true"})
    # The session opens, but runs nothing: PyHive's first statement (USE default) fails.
    with pytest.raises(Exception, match="redline: a session that changes "
                       "spark.sql.variable.substitute is not allowed through the Thrift"):
        hive.connect(host=cfg.thrift.host, port=cfg.thrift.port, username=user,
                     password=password, auth="CUSTOM",
                     configuration={"set:hiveconf:spark.sql.variable.substitute": "true"})


@pytest.fixture
def http_listener():
    """A local HTTP server answering 404 to everything; yields (url, paths requested)."""
    import http.server
    import threading

    requested: list[str] = []

    class Recorder(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 - the standard library's name
            requested.append(self.path)
            self.send_response(404)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Recorder)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}", requested
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.integration
def test_thrift_guard_refuses_options_naming_files(thrift_cursor, http_listener, tmp_path):
    """Once, from_xml(..., map('rowValidationXSDPath', PATH)) made the server open any path
    (a missing one answered FileNotFoundException: which files exist) or fetch any URL."""
    cur = thrift_cursor
    base, requested = http_listener
    missing = tmp_path / "missing.xsd"
    xml = "'<ROW><a>1</a></ROW>'"
    for location in (f"{base}/schema.xsd", str(missing), f"file://{missing}", "/etc/hostname"):
        for sql in (f"SELECT from_xml({xml}, 'a INT', map('rowValidationXSDPath', "
                    f"'{location}'))",
                    f"SELECT from_xml({xml}, 'a INT', map('mode', 'PERMISSIVE', "
                    f"'ROWVALIDATIONXSDPATH', '{location}'))",
                    f"SELECT schema_of_xml({xml}, map('rowValidationXSDPath', '{location}'))",
                    f"SELECT * FROM range(1) WHERE id IN (SELECT from_xml({xml}, "
                    f"'a INT', map('rowValidationXSDPath', '{location}')).a - 1)",
                    f"SELECT from_json('{{}}', 'a INT', map('avroSchemaUrl', '{location}'))"):
            _refused(cur, sql, "the option .* \\(an option naming a file or URL\\)")
    assert requested == []
    # Options that name no place still work (XML's worked example: rowTag).
    cur.execute(f"SELECT from_xml({xml}, 'a INT', map('rowTag', 'ROW')).a, "
                f"from_json('{{\"a\": 2}}', 'a INT', map('mode', 'PERMISSIVE')).a")
    assert cur.fetchall() == [(1, 2)]
    # An external entity is not resolved either (the parser does not fetch it).
    cur.execute(f"SELECT xpath_string('<!DOCTYPE a [<!ENTITY x SYSTEM \"{base}/e\">]>"
                f"<a>&x;</a>', '/a')")
    cur.fetchall()
    assert requested == []


@pytest.mark.integration
def test_thrift_guard_lets_lake_sql_through(thrift_cursor, tmp_path):
    """What redline and Superset send still runs: Delta tables by location, views, queries
    with joins, aggregates and windows, SHOW, DESCRIBE, REFRESH, USE, SET of other keys."""
    cur = thrift_cursor
    db = f"guard_{uuid.uuid4().hex[:8]}"
    location = tmp_path / "orders"
    cur.execute(f"CREATE DATABASE IF NOT EXISTS {db}")
    try:
        cur.execute(f"CREATE TABLE {db}.orders (id INT, site STRING, qty INT) USING delta "
                    f"LOCATION '{location}'")
        cur.execute(f"INSERT INTO {db}.orders VALUES (1, 'a', 2), (2, 'a', 3), (3, 'b', 5)")
        # As catalog.register_sql and placeholder_sql do.
        cur.execute(f"CREATE TABLE IF NOT EXISTS {db}.again USING delta LOCATION '{location}'")
        cur.execute(f"CREATE VIEW IF NOT EXISTS {db}.empty AS SELECT CAST(NULL AS INT) AS `a` "
                    f"WHERE 1 = 0")
        cur.execute(f"CREATE VIEW {db}.by_site AS SELECT site, sum(qty) AS total "
                    f"FROM {db}.again GROUP BY site")
        cur.execute(f"CREATE TEMPORARY VIEW {db}_recent USING delta OPTIONS (path '{location}')")
        cur.execute("CREATE TEMPORARY FUNCTION plus_one(x INT) RETURNS INT RETURN x + 1")
        for sql in ("SET spark.sql.session.timeZone=UTC", "SET spark.sql.ansi.enabled",
                    f"USE {db}", f"REFRESH TABLE {db}.orders", f"DESCRIBE {db}.orders",
                    "SHOW DATABASES", f"SHOW VIEWS IN {db}", "SHOW FUNCTIONS LIKE 'plus_one'"):
            cur.execute(sql)
            cur.fetchall()
        assert sorted(_names(cur, f"SHOW TABLES IN {db}")) == sorted(
            ["again", "by_site", "empty", "orders", f"{db}_recent"])  # temporary views too
        cur.execute(f"DESCRIBE DETAIL {db}.orders")
        assert cur.fetchall()[0][0] == "delta"
        cur.execute("SELECT o.id, s.total, plus_one(o.qty), "
                    "rank() OVER (PARTITION BY o.site ORDER BY o.qty DESC) "
                    "FROM orders o JOIN by_site s ON o.site = s.site ORDER BY o.id")
        assert cur.fetchall() == [(1, 5, 3, 2), (2, 5, 4, 1), (3, 5, 6, 1)]
        cur.execute(f"SELECT count(*), max(qty) FROM {db}_recent, empty")
        assert cur.fetchall() == [(0, None)]
        cur.execute(f"SELECT count(*) FROM {db}_recent")
        assert cur.fetchall() == [(3,)]
        cur.execute("USE default")
        cur.execute(f"DROP VIEW {db}.empty")
        cur.execute(f"DROP TABLE {db}.again")
    finally:
        cur.execute(f"DROP DATABASE IF EXISTS {db} CASCADE")


@pytest.mark.integration
def test_thrift_password_stays_out_of_the_command_line_and_log(cfg, thrift_server):
    from pathlib import Path

    from redline import secrets
    from redline.services.thrift import PASSWORD_NAME

    path = secrets.path_of(cfg.home, PASSWORD_NAME)
    assert path.stat().st_mode & 0o777 == 0o600
    password = path.read_text().strip()
    cmdline = Path(f"/proc/{thrift_server.pid()}/cmdline").read_bytes().decode(
        errors="replace")
    assert f"-Dredline.thrift.passwordFile={path}" in cmdline  # the path, not the value
    assert password not in cmdline
    assert password not in thrift_server.log_file.read_text(errors="replace")
    environ = Path(f"/proc/{thrift_server.pid()}/environ").read_bytes().decode(
        errors="replace")
    assert "MLFLOW_TRACKING_PASSWORD" not in environ and password not in environ



# -- secrets, processes and the state folder ------------------------------------------------


def _secret_values(cfg) -> dict[str, bytes]:
    folder = cfg.home / "secrets"
    return {p.name: p.read_text().strip().encode() for p in folder.iterdir()
            if p.is_file() and not p.name.startswith(".") and p.read_text().strip()}


@pytest.mark.integration
def test_no_secret_in_a_log_config_or_command_line(cfg, services):
    """Every generated secret stays in <home>/secrets: not in a service's log, rendered
    config, pid file or database dump, nor in any command line seen while they started."""
    from conftest import SEEN_FILE
    from process_watch import seen

    values = _secret_values(cfg)
    assert {"superset_admin_password", "superset_secret_key", "thrift_password",
            "mlflow_admin_password"} <= set(values), sorted(values)
    found = []
    # Another test process of the run may be writing Spark's scratch files meanwhile: a
    # file removed while we look held nothing at rest.
    for root, _dirs, files in os.walk(cfg.home):
        if "secrets" in Path(root).relative_to(cfg.home).parts:
            continue
        for name in files:
            path = Path(root, name)
            try:
                if path.is_symlink() or path.stat().st_size > 50_000_000:
                    continue
                data = path.read_bytes()
            except FileNotFoundError:
                continue
            found += [f"{key} in {path}" for key, value in values.items() if value in data]
    assert found == []
    lines = seen(cfg.home / SEEN_FILE)
    assert lines, "the command-line watch saw nothing while the services started"
    leaked = [f"{name} in `{line[:120]}`" for line in lines for name, value in values.items()
              if value.decode() in line]
    assert leaked == []


@pytest.mark.integration
def test_state_folder_is_private_to_its_user(cfg, services):
    from redline import state

    assert oct(cfg.home.stat().st_mode & 0o777) == "0o700"
    assert oct((cfg.home / "secrets").stat().st_mode & 0o777) == "0o700"
    assert state.exposed(cfg.home) == []


@pytest.mark.integration
def test_status_lists_each_services_resident_memory(cfg, services):
    import json
    import subprocess
    import sys

    result = subprocess.run([sys.executable, "-m", "redline.cli", "status", "--json"],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    rows = {r["name"]: r for r in json.loads(result.stdout)["services"]}
    assert set(rows) == {"kafka", "mlflow", "spark-thrift", "superset"}
    for name, row in rows.items():
        # Every one is a JVM or a Python server: tens of MB at the least, under 8 GB.
        assert 20e6 < row["rss_bytes"] < 8e9, (name, row["rss_bytes"])
