"""Settings of the managed broker's SASL_SSL listener and its clients, without a broker."""

from pathlib import Path

import pytest

from redline.config import load
from redline.errors import RedlineError
from redline.services.kafka import KafkaBroker
from redline.streaming.kafka_options import client_options, client_properties, spark_options


def _cfg(tmp_path: Path, **env):
    path = tmp_path / "redline.toml"
    path.write_text("[local]\n")
    return load("local", {"REDLINE_CONFIG": str(path), "REDLINE_HOME": str(tmp_path / "h"),
                          "REDLINE_KAFKA_PORT": "19192", "REDLINE_KAFKA_SSL_PORT": "19194",
                          **env})


def _props(text: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            key, value = line.split("=", 1)
            assert key not in out, f"{key} set twice"
            out[key] = value
    return out


def _fake_trust(cfg) -> None:
    """Stand-ins for the files the broker makes at start (their content is not read)."""
    folder = cfg.home / "secrets"
    folder.mkdir(parents=True, mode=0o700)
    for name, text in {"kafka_ca.pem": "pem", "kafka_truststore.p12": "p12",
                       "kafka_truststore_password": "trust-pw"}.items():
        (folder / name).write_text(text + "\n")
        (folder / name).chmod(0o600)


def test_default_profile_is_unchanged(tmp_path):
    cfg = _cfg(tmp_path)
    assert not cfg.kafka.managed_tls and cfg.kafka.servers == "127.0.0.1:19192"
    props = _props(KafkaBroker(cfg)._properties())
    assert props["listeners"] == "CLIENT://127.0.0.1:19192,CONTROLLER://127.0.0.1:9093"
    assert not [k for k in props if "ssl" in k]


def test_sasl_ssl_opens_a_tls_listener_with_its_keystore_by_reference(tmp_path):
    cfg = _cfg(tmp_path, REDLINE_KAFKA_SECURITY_PROTOCOL="SASL_SSL")
    broker = KafkaBroker(cfg)
    assert cfg.kafka.managed_tls and cfg.kafka.servers == "127.0.0.1:19194"
    assert tuple(broker.ports()) == (19192, 9093, 19194)
    props = _props(broker._properties())
    assert props["listeners"] == ("CLIENT://127.0.0.1:19192,TLS://127.0.0.1:19194,"
                                  "CONTROLLER://127.0.0.1:9093")
    assert props["advertised.listeners"] == "CLIENT://127.0.0.1:19192,TLS://127.0.0.1:19194"
    assert props["listener.security.protocol.map"] == (
        "CLIENT:SASL_PLAINTEXT,TLS:SASL_SSL,CONTROLLER:SASL_PLAINTEXT")
    assert props["inter.broker.listener.name"] == "CLIENT"
    assert props["listener.name.tls.sasl.enabled.mechanisms"] == "PLAIN,SCRAM-SHA-512"
    secrets = cfg.home / "secrets"
    assert props["listener.name.tls.ssl.keystore.location"] == str(
        secrets / "kafka_broker_keystore.p12")
    assert props["listener.name.tls.ssl.keystore.password"] == (
        f"${{file:{secrets / 'kafka_broker.properties'}:ssl_keystore_password}}")


def test_sasl_ssl_clients_verify_the_certificate_and_host(tmp_path):
    cfg = _cfg(tmp_path, REDLINE_KAFKA_SECURITY_PROTOCOL="SASL_SSL")
    _fake_trust(cfg)
    secrets = cfg.home / "secrets"
    opts = client_options(cfg, user="producer")
    assert opts["bootstrap_servers"] == ["127.0.0.1:19194"]
    assert opts["security_protocol"] == "SASL_SSL"
    assert opts["sasl_mechanism"] == "SCRAM-SHA-512"
    assert opts["ssl_cafile"] == str(secrets / "kafka_ca.pem")
    assert opts["ssl_check_hostname"] is True
    spark = spark_options(cfg, user="ingest")
    assert spark["kafka.bootstrap.servers"] == "127.0.0.1:19194"
    assert spark["kafka.security.protocol"] == "SASL_SSL"
    assert spark["kafka.ssl.truststore.type"] == "PKCS12"
    assert spark["kafka.ssl.truststore.location"] == str(secrets / "kafka_truststore.p12")
    assert spark["kafka.ssl.truststore.password"] == "trust-pw"
    assert spark["kafka.ssl.endpoint.identification.algorithm"] == "https"
    props = _props(client_properties(cfg, user="admin"))
    assert props["security.protocol"] == "SASL_SSL" and props["sasl.mechanism"] == "PLAIN"
    assert props["ssl.truststore.location"] == str(secrets / "kafka_truststore.p12")


def test_clients_before_the_broker_made_its_certificates(tmp_path):
    cfg = _cfg(tmp_path, REDLINE_KAFKA_SECURITY_PROTOCOL="SASL_SSL")
    with pytest.raises(RedlineError, match=r"\[KAFKA_TLS_MISSING\] .*kafka_ca\.pem.* "
                                           r"missing: the managed broker makes"):
        client_options(cfg, user="producer")


@pytest.mark.parametrize(("value", "message"), [
    ("SSL", r"kafka.security_protocol SSL: the managed broker asks every client for a "
            r"password; use SASL_SSL"),
    ("sasl_ssl", r"kafka.security_protocol must be one of PLAINTEXT, SSL, SASL_PLAINTEXT, "
                 r"SASL_SSL, got 'sasl_ssl'"),
])
def test_bad_protocols_fail_at_load_naming_the_key(tmp_path, value, message):
    with pytest.raises(RedlineError, match=message):
        _cfg(tmp_path, REDLINE_KAFKA_SECURITY_PROTOCOL=value)


def test_external_cluster_may_use_ssl(tmp_path):
    cfg = _cfg(tmp_path, REDLINE_KAFKA_BOOTSTRAP_SERVERS="b1:9093",
               REDLINE_KAFKA_SECURITY_PROTOCOL="SSL")
    assert not cfg.kafka.managed_tls
    assert client_options(cfg, user="ingest") == {"bootstrap_servers": ["b1:9093"],
                                                  "security_protocol": "SSL"}
