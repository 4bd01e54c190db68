"""The managed broker's SASL_SSL listener (issue 20), against a real broker of its own.

The run's SASL_SSL broker (``sasl_ssl_broker`` in tests/conftest.py, shared with the
cluster test), with its own state folder and ports, so that the session's broker (the
default SASL_PLAINTEXT profile) is left alone. Certificates are checked with openssl and
Python's ssl module, not with the code that made them.
"""

from __future__ import annotations

import json
import socket
import ssl
import subprocess
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from redline import catalog
from redline.cli import main
from redline.config import load
from redline.errors import RedlineError
from redline.streaming.kafka_options import client_options, topic_name
from redline.streaming.producer import ensure_topics, produce
from redline.streaming.simulator import Event

pytestmark = [pytest.mark.integration, pytest.mark.cluster]

TOPIC = "vehicle_telemetry"
#: Every file the SASL_SSL listener needs, in <home>/secrets.
TLS_FILES = ("kafka_broker_keystore.p12", "kafka_broker_keystore_password",
             "kafka_truststore.p12", "kafka_truststore_password", "kafka_ca.pem",
             "kafka_broker_cert.pem")
#: A refused login or an untrusted certificate must be reported within this many seconds
#: (kafka-python gives up bootstrapping after 30 s).
BOUND_S = 60


@pytest.fixture(scope="module")
def tls_env(sasl_ssl_env) -> dict[str, str]:
    """The run's SASL_SSL broker (tests/conftest.py) with this module's own topics."""
    return {**sasl_ssl_env, "REDLINE_KAFKA_TOPIC_PREFIX": f"tls-{uuid.uuid4().hex[:8]}."}


@pytest.fixture(scope="module")
def tls_broker(sasl_ssl_broker):
    return sasl_ssl_broker


@pytest.fixture
def tls_cfg(tls_broker, tls_env, lake, monkeypatch):
    """Config of the SASL_SSL broker with this test's lake (env too, for the CLI)."""
    for key, value in tls_env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("REDLINE_LAKE_ROOT", lake)
    return load()


def _secrets(cfg) -> Path:
    return cfg.home / "secrets"


def _events(n: int) -> list[Event]:
    return [Event(TOPIC, f"RDLTLS{i:011d}",
                  {"event_id": str(uuid.uuid4()), "event_time": "2026-02-01T10:00:00Z",
                   "schema_version": 1, "vin": f"RDLTLS{i:011d}", "odometer_km": float(i)})
            for i in range(n)]


def _consume_all(opts: dict, topic: str) -> list[bytes]:
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(enable_auto_commit=False, **opts)
    try:
        tps = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic))]
        consumer.assign(tps)
        end = consumer.end_offsets(tps)
        consumer.seek_to_beginning(*tps)
        values: list[bytes] = []
        deadline = time.monotonic() + 30
        while any(consumer.position(tp) < end[tp] for tp in tps):
            assert time.monotonic() < deadline, "records did not arrive within 30 s"
            for records in consumer.poll(timeout_ms=1000).values():
                values += [r.value for r in records]
        return values
    finally:
        consumer.close()


@pytest.fixture
def wrong_secret(tls_cfg):
    """Replace one of the files in the secrets folder for the test; restore it after."""
    saved: dict[Path, bytes] = {}

    def replace(name: str, value: bytes) -> None:
        path = _secrets(tls_cfg) / name
        saved.setdefault(path, path.read_bytes())
        path.write_bytes(value)
        path.chmod(0o600)

    yield replace
    for path, value in saved.items():
        path.write_bytes(value)


@pytest.fixture(scope="module")
def foreign_ca(tmp_path_factory, tls_broker) -> Path:
    """Another authority's PEM and truststore (same passwords file layout): a client that
    trusts only these must refuse the broker's certificate."""
    from redline.services import kafka_tls
    from redline.services.kafka import java_binary

    home = tmp_path_factory.mktemp("foreign-ca")
    kafka_tls.ensure(home, "127.0.0.1", java_binary(), progress=lambda _m: None)
    return home / "secrets"


# -- the files --------------------------------------------------------------------------
def test_certificates_are_private_signed_and_name_loopback(tls_cfg, tls_broker):
    folder = _secrets(tls_cfg)
    assert folder.stat().st_mode & 0o777 == 0o700
    for name in TLS_FILES:
        assert (folder / name).stat().st_mode & 0o777 == 0o600, name
    for path in folder.iterdir():  # everything in it, the users' passwords too
        assert path.stat().st_mode & 0o777 == 0o600, path
    # The authority's private key was deleted after it signed: only certificates remain.
    pem = (folder / "kafka_ca.pem").read_text()
    assert "PRIVATE KEY" not in pem and pem.count("BEGIN CERTIFICATE") == 1
    assert not [p for p in folder.iterdir() if p.name.startswith(".")]

    verify = subprocess.run(["openssl", "verify", "-CAfile", str(folder / "kafka_ca.pem"),
                             str(folder / "kafka_broker_cert.pem")],
                            capture_output=True, text=True)
    assert verify.returncode == 0 and verify.stdout.strip().endswith(": OK"), verify
    # What the listener presents: signed by that authority, for 127.0.0.1 and localhost.
    context = ssl.create_default_context(cafile=str(folder / "kafka_ca.pem"))
    port = tls_cfg.kafka.ssl_port
    for name in ("127.0.0.1", "localhost"):
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            with context.wrap_socket(sock, server_hostname=name) as tls:
                san = tls.getpeercert()["subjectAltName"]
                assert tls.version() in ("TLSv1.2", "TLSv1.3")
        assert ("IP Address", "127.0.0.1") in san and ("DNS", "localhost") in san
    # Another name is refused (hostname verification is on in Python's default).
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        with pytest.raises(ssl.SSLCertVerificationError, match="Hostname mismatch"):
            context.wrap_socket(sock, server_hostname="kafka.example.org")


def test_no_tls_password_on_a_command_line_or_in_server_properties(tls_cfg, tls_broker):
    from process_watch import SEEN

    folder = _secrets(tls_cfg)
    values = {name: (folder / name).read_text().strip()
              for name in ("kafka_broker_keystore_password", "kafka_truststore_password",
                           "kafka_admin_password", "kafka_producer_password",
                           "kafka_ingest_password")}
    keytool = [c for c in SEEN if "keytool" in c.split(" ", 1)[0]]
    assert len(keytool) >= 4, "keytool's runs were not seen"
    assert all("-storepass:file" in c for c in keytool if "-storepass" in c)
    for name, value in values.items():
        assert len(value) >= 32, name
        leaked = [c for c in SEEN if value in c]
        assert not leaked, f"{name} was on a command line"
    props = (tls_broker.dir / "server.properties").read_text()
    assert "listener.name.tls.ssl.keystore.password=${file:" in props
    assert not [n for n, v in values.items() if v in props]
    assert f"TLS://127.0.0.1:{tls_cfg.kafka.ssl_port}" in props
    assert "TLS:SASL_SSL" in props


def test_certificates_are_kept_while_valid(tls_cfg, tls_broker):
    from redline.services import kafka_tls
    from redline.services.kafka import java_binary

    before = (_secrets(tls_cfg) / "kafka_broker_cert.pem").read_bytes()
    assert kafka_tls.ensure(tls_cfg.home, "127.0.0.1", java_binary(),
                            progress=lambda _m: None) is False
    assert (_secrets(tls_cfg) / "kafka_broker_cert.pem").read_bytes() == before
    # When they would be made again: the end date as openssl reads it, 30 days before.
    end = subprocess.run(["openssl", "x509", "-noout", "-enddate", "-in",
                          str(_secrets(tls_cfg) / "kafka_broker_cert.pem")],
                         capture_output=True, text=True, check=True).stdout
    not_after = datetime.strptime(end.strip().removeprefix("notAfter="),
                                  "%b %d %H:%M:%S %Y GMT").replace(tzinfo=UTC)
    assert timedelta(days=364) < not_after - datetime.now(UTC) <= timedelta(days=365)
    home = tls_cfg.home
    assert kafka_tls.renewal_reason(home, "127.0.0.1", now=not_after - timedelta(days=31)) == ""
    assert kafka_tls.renewal_reason(home, "127.0.0.1", now=not_after - timedelta(days=29)
                                    ) == f"the broker certificate expires {not_after:%Y-%m-%d}"
    assert kafka_tls.renewal_reason(home, "10.1.2.3") == (
        "the broker certificate does not name 10.1.2.3")


# -- clients ----------------------------------------------------------------------------
def test_kafka_python_produces_and_consumes_over_sasl_ssl(tls_cfg):
    opts = client_options(tls_cfg, user="ingest")
    assert opts["security_protocol"] == "SASL_SSL"
    assert opts["bootstrap_servers"] == [f"127.0.0.1:{tls_cfg.kafka.ssl_port}"]
    assert opts["ssl_check_hostname"] is True
    assert Path(opts["ssl_cafile"]) == _secrets(tls_cfg) / "kafka_ca.pem"
    ensure_topics(tls_cfg)
    topic = topic_name(tls_cfg, TOPIC)
    before = len(_consume_all(opts, topic))
    events = _events(25)
    report = produce(tls_cfg, events)
    assert report.total == 25 and report.failed == 0
    values = _consume_all(opts, topic)
    assert len(values) == before + 25
    sent = {e.payload["event_id"] for e in events}
    assert sent <= {json.loads(v)["event_id"] for v in values}


def test_console_tools_over_sasl_ssl_with_client_config(tls_cfg, tls_broker, tmp_path):
    ensure_topics(tls_cfg)
    topic = topic_name(tls_cfg, "vehicle_dtc")
    files = {}
    for user in ("producer", "ingest"):
        files[user] = tmp_path / f"{user}.properties"
        assert main(["kafka", "client-config", "--user", user, "--out",
                     str(files[user])]) == 0
        assert files[user].stat().st_mode & 0o777 == 0o600
        text = files[user].read_text()
        assert "security.protocol=SASL_SSL\n" in text
        assert f"ssl.truststore.location={_secrets(tls_cfg) / 'kafka_truststore.p12'}\n" in text
        assert "ssl.endpoint.identification.algorithm=https\n" in text
    line = json.dumps({"event_id": f"console-tls-{uuid.uuid4().hex}", "n": 1})
    produced = subprocess.run(tls_broker.java(
        "org.apache.kafka.tools.ConsoleProducer", "--bootstrap-server", tls_cfg.kafka.servers,
        "--command-config", str(files["producer"]), "--topic", topic),
        input=line + "\n", text=True, capture_output=True, timeout=120)
    assert produced.returncode == 0, produced.stderr[-3000:]
    consumed = subprocess.run(tls_broker.java(
        "org.apache.kafka.tools.consumer.ConsoleConsumer", "--bootstrap-server",
        tls_cfg.kafka.servers, "--command-config", str(files["ingest"]), "--topic", topic,
        "--from-beginning", "--max-messages", "1", "--timeout-ms", "60000"),
        text=True, capture_output=True, timeout=120)
    assert consumed.returncode == 0, consumed.stderr[-3000:]
    assert consumed.stdout.splitlines() == [line]


def test_ingest_available_now_over_sasl_ssl(tls_cfg, spark):
    assert main(["kafka", "client-config", "--user", "ingest", "--out",
                 str(tls_cfg.home / "unused.properties")]) == 0
    ensure_topics(tls_cfg)
    topic = topic_name(tls_cfg, TOPIC)
    before = len(_consume_all(client_options(tls_cfg, user="ingest"), topic))
    events = _events(40)
    events.append(events[3])  # a redelivery: silver keeps one
    assert produce(tls_cfg, events).total == 41
    assert main(["ingest", "--available-now", "--topics", TOPIC]) == 0
    root = tls_cfg.lake_root
    bronze = catalog.read(spark, root, catalog.bronze(TOPIC))
    assert bronze.count() == before + 41
    assert {r.topic for r in bronze.select("topic").distinct().collect()} == {topic}
    silver = catalog.read(spark, root, catalog.get(f"silver.{TOPIC}"))
    ids = {r.event_id for r in silver.select("event_id").collect()}
    assert {e.payload["event_id"] for e in events} <= ids
    assert silver.where(silver.event_id.isin([e.payload["event_id"] for e in events])
                        ).count() == 40


# -- refusals ---------------------------------------------------------------------------
def _listener(cfg) -> str:
    return rf"127\.0\.0\.1:{cfg.kafka.ssl_port} \(SASL_SSL\)"


def test_wrong_password_fails_naming_the_listener(tls_cfg, wrong_secret):
    wrong_secret("kafka_producer_password", b"not-the-password-the-broker-knows\n")
    began = time.monotonic()
    with pytest.raises(RedlineError, match=rf"\[KAFKA_LOGIN\] Kafka at {_listener(tls_cfg)} "
                                           r"refused the login of 'producer' "
                                           r"\(SCRAM-SHA-512\): wrong password"):
        produce(tls_cfg, _events(1))
    assert time.monotonic() - began < BOUND_S


def test_wrong_admin_password_fails_naming_the_listener(tls_cfg, wrong_secret):
    wrong_secret("kafka_admin_password", b"not-the-admin-password\n")
    began = time.monotonic()
    with pytest.raises(RedlineError, match=rf"\[KAFKA_LOGIN\] Kafka at {_listener(tls_cfg)} "
                                           r"refused the login of 'admin' \(PLAIN\)"):
        ensure_topics(tls_cfg)
    assert time.monotonic() - began < BOUND_S


def test_unknown_user_fails_naming_the_listener(tls_cfg, monkeypatch):
    """An external-cluster profile pointed at the TLS listener, logging in as a user the
    broker does not know (the authority trusted through SSL_CERT_FILE)."""
    monkeypatch.setenv("REDLINE_KAFKA_BOOTSTRAP_SERVERS", tls_cfg.kafka.servers)
    monkeypatch.setenv("REDLINE_KAFKA_SASL_MECHANISM", "SCRAM-SHA-512")
    monkeypatch.setenv("REDLINE_KAFKA_SASL_USERNAME", "nobody")
    monkeypatch.setenv("REDLINE_KAFKA_SASL_PASSWORD_ENV", "TLS_TEST_PASSWORD")
    monkeypatch.setenv("TLS_TEST_PASSWORD", "whatever")
    monkeypatch.setenv("SSL_CERT_FILE", str(_secrets(tls_cfg) / "kafka_ca.pem"))
    external = load()
    assert not external.kafka.managed
    began = time.monotonic()
    with pytest.raises(RedlineError, match=rf"\[KAFKA_LOGIN\] Kafka at {_listener(tls_cfg)} "
                                           r"refused the login of 'nobody' "
                                           r"\(SCRAM-SHA-512\): wrong password or unknown "
                                           r"user; check kafka.sasl_username"):
        produce(external, _events(1))
    assert time.monotonic() - began < BOUND_S


def test_ingest_with_a_wrong_password_fails_naming_the_listener(tls_cfg, spark,
                                                                 wrong_secret, capsys):
    ensure_topics(tls_cfg)
    produce(tls_cfg, _events(2))
    wrong_secret("kafka_ingest_password", b"not-the-ingest-password\n")
    began = time.monotonic()
    assert main(["ingest", "--available-now", "--topics", TOPIC]) == 2
    assert time.monotonic() - began < BOUND_S + 60
    err = capsys.readouterr().err
    assert f"[KAFKA_LOGIN] Kafka at 127.0.0.1:{tls_cfg.kafka.ssl_port} (SASL_SSL) refused " \
           f"the login of 'ingest' (SCRAM-SHA-512)" in err, err[-3000:]
    assert "not-the-ingest-password" not in err


def test_untrusted_certificate_fails_clearly(tls_cfg, spark, wrong_secret, foreign_ca,
                                             capsys):
    ensure_topics(tls_cfg)
    produce(tls_cfg, _events(1))
    for name in ("kafka_ca.pem", "kafka_truststore.p12", "kafka_truststore_password"):
        wrong_secret(name, (foreign_ca / name).read_bytes())
    began = time.monotonic()
    with pytest.raises(RedlineError, match=rf"\[KAFKA_TLS_UNTRUSTED\] the SASL_SSL listener "
                                           rf"at 127\.0\.0\.1:{tls_cfg.kafka.ssl_port} "
                                           r"presented a certificate .* does not vouch for "
                                           r"\(self.signed certificate in certificate chain\)"):
        produce(tls_cfg, _events(1))
    assert time.monotonic() - began < BOUND_S
    assert main(["ingest", "--available-now", "--topics", TOPIC]) == 2
    err = capsys.readouterr().err
    assert "[KAFKA_TLS_UNTRUSTED]" in err and str(tls_cfg.kafka.ssl_port) in err, err[-3000:]


# -- the default profile ----------------------------------------------------------------
def test_default_profile_keeps_sasl_plaintext(cfg, kafka_broker, monkeypatch):
    assert cfg.kafka.security_protocol == "PLAINTEXT" and not cfg.kafka.managed_tls
    assert cfg.kafka.servers == f"127.0.0.1:{cfg.kafka.port}"
    opts = client_options(cfg, user="producer")
    assert opts["security_protocol"] == "SASL_PLAINTEXT"
    assert "ssl_cafile" not in opts
    props = (kafka_broker.dir / "server.properties").read_text()
    assert "SASL_SSL" not in props and "TLS://" not in props
    assert tuple(kafka_broker.ports()) == (cfg.kafka.port, cfg.kafka.controller_port)
    with socket.socket() as sock:  # the TLS port stays closed
        sock.settimeout(1)
        assert sock.connect_ex(("127.0.0.1", cfg.kafka.ssl_port)) != 0
    monkeypatch.setenv("REDLINE_KAFKA_TOPIC_PREFIX", f"plain-{uuid.uuid4().hex[:8]}.")
    cfg = load()
    ensure_topics(cfg)
    topic = topic_name(cfg, TOPIC)
    assert produce(cfg, _events(3)).total == 3
    assert len(_consume_all(client_options(cfg, user="ingest"), topic)) == 3

