"""The managed broker's settings and each client's login, without a broker."""

from pathlib import Path

import pytest

from redline.config import load
from redline.errors import RedlineError
from redline.services.kafka import MESSAGE_MAX_BYTES, KafkaBroker
from redline.streaming.kafka_options import client_options, client_properties, spark_options


def _cfg(tmp_path: Path, **env):
    path = tmp_path / "redline.toml"
    path.write_text("[local]\n")
    return load("local", {"REDLINE_CONFIG": str(path), "REDLINE_HOME": str(tmp_path / "h"),
                          **env})


def _props(text: str) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            key, value = line.split("=", 1)
            out.setdefault(key, []).append(value)
    return out


def test_broker_listens_with_sasl_only_and_one_message_limit(tmp_path):
    cfg = _cfg(tmp_path)
    props = _props(KafkaBroker(cfg)._properties())
    assert all(len(v) == 1 for v in props.values()), "a key set twice: the last one wins"
    assert props["message.max.bytes"] == [str(MESSAGE_MAX_BYTES)] == ["8388608"]
    assert props["listener.security.protocol.map"] == [
        "CLIENT:SASL_PLAINTEXT,CONTROLLER:SASL_PLAINTEXT"]
    assert "PLAINTEXT://" not in props["listeners"][0]
    assert props["listener.name.controller.sasl.enabled.mechanisms"] == ["PLAIN"]
    assert props["authorizer.class.name"] == [
        "org.apache.kafka.metadata.authorizer.StandardAuthorizer"]
    assert props["super.users"] == ["User:admin"]
    assert props["allow.everyone.if.no.acl.found"] == ["false"]


def test_server_properties_are_private_from_the_first_byte(tmp_path):
    broker = KafkaBroker(_cfg(tmp_path))
    broker.dir.mkdir(parents=True)
    broker.props.write_text("old")
    broker.props.chmod(0o644)
    broker._write_properties()
    assert broker.props.stat().st_mode & 0o777 == 0o600
    assert "user_admin=" in broker.props.read_text()


@pytest.mark.parametrize(("user", "mechanism"), [
    ("producer", "SCRAM-SHA-512"), ("ingest", "SCRAM-SHA-512"), ("admin", "PLAIN")])
def test_managed_broker_login_per_user_from_the_secrets_folder(tmp_path, user, mechanism):
    cfg = _cfg(tmp_path)
    opts = client_options(cfg, user=user)
    secret = (cfg.home / "secrets" / f"kafka_{user}_password").read_text().strip()
    assert opts == {"bootstrap_servers": [cfg.kafka.servers],
                    "security_protocol": "SASL_PLAINTEXT", "sasl_mechanism": mechanism,
                    "sasl_plain_username": user, "sasl_plain_password": secret}
    spark = spark_options(cfg, user=user)
    assert spark["kafka.sasl.mechanism"] == mechanism
    assert f'username="{user}" password="{secret}";' in spark["kafka.sasl.jaas.config"]


def test_users_have_different_passwords(tmp_path):
    cfg = _cfg(tmp_path)
    passwords = {client_options(cfg, user=u)["sasl_plain_password"]
                 for u in ("admin", "producer", "ingest")}
    assert len(passwords) == 3


def test_unknown_user_is_refused(tmp_path):
    with pytest.raises(RedlineError, match=r"\[KAFKA_USER\] no Kafka user 'root'"):
        client_options(_cfg(tmp_path), user="root")


def test_external_cluster_keeps_its_one_account_from_the_environment(tmp_path, monkeypatch):
    cfg = _cfg(tmp_path, REDLINE_KAFKA_BOOTSTRAP_SERVERS="b1:9093,b2:9093",
               REDLINE_KAFKA_SECURITY_PROTOCOL="SASL_SSL",
               REDLINE_KAFKA_SASL_MECHANISM="SCRAM-SHA-512",
               REDLINE_KAFKA_SASL_USERNAME="redline",
               REDLINE_KAFKA_SASL_PASSWORD_ENV="TEST_KAFKA_PW")
    monkeypatch.setenv("TEST_KAFKA_PW", 'p"w\\x')
    for user in ("admin", "producer", "ingest"):
        assert client_options(cfg, user=user) == {
            "bootstrap_servers": ["b1:9093", "b2:9093"], "security_protocol": "SASL_SSL",
            "sasl_mechanism": "SCRAM-SHA-512", "sasl_plain_username": "redline",
            "sasl_plain_password": 'p"w\\x'}
    jaas = spark_options(cfg, user="ingest")["kafka.sasl.jaas.config"]
    assert jaas.endswith('username="redline" password="p\\"w\\\\x";')
    assert not (tmp_path / "h" / "secrets" / "kafka_ingest_password").exists()
    monkeypatch.delenv("TEST_KAFKA_PW")
    with pytest.raises(RedlineError, match="KAFKA_SASL_PASSWORD"):
        client_options(cfg, user="producer")


def test_client_properties_file_logs_in_as_the_user(tmp_path):
    cfg = _cfg(tmp_path)
    text = client_properties(cfg, user="ingest")
    props = _props(text)
    secret = (cfg.home / "secrets" / "kafka_ingest_password").read_text().strip()
    assert props["bootstrap.servers"] == [cfg.kafka.servers]
    assert props["security.protocol"] == ["SASL_PLAINTEXT"]
    assert props["sasl.mechanism"] == ["SCRAM-SHA-512"]
    assert props["sasl.jaas.config"] == [
        "org.apache.kafka.common.security.scram.ScramLoginModule required "
        f'username="ingest" password="{secret}";']
