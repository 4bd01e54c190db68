"""Probes of what a local attacker would try against a running redline (issue 19).

Each test names the hole it closes: anonymous access to a service, reading files through
SQL, secrets in logs or process lists, state readable by other users.
"""

from __future__ import annotations

# -- Kafka ---------------------------------------------------------------------------------
import subprocess
import uuid

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
    """Records read from the start of partition 0 (a refusal raises)."""
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(**_KAFKA_FAST, **opts)
    tp = TopicPartition(topic, 0)
    try:
        consumer.assign([tp])
        consumer.seek(tp, 0)
        for _ in range(10):
            got = consumer.poll(timeout_ms=1000).get(tp, [])
            if got:
                return len(got)
        return 0
    finally:
        consumer.close()


@pytest.mark.integration
def test_kafka_refuses_an_anonymous_client(cfg, kafka_only):
    from kafka.errors import KafkaTimeoutError

    from redline.streaming.kafka_options import client_options

    admin = _kafka_admin(client_options(cfg, user="admin"))
    admin.close()
    # A client without SASL cannot even fetch metadata: once, anyone could delete topics.
    with pytest.raises(KafkaTimeoutError, match="Unable to bootstrap"):
        _kafka_admin({"bootstrap_servers": cfg.kafka.servers,
                      "security_protocol": "PLAINTEXT"})


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

    allowed = quorum(admin)
    assert allowed.returncode == 0 and "LeaderId" in allowed.stdout, allowed.stderr[-2000:]
    refused = quorum(anonymous)
    assert refused.returncode != 0 and "LeaderId" not in refused.stdout
    assert "TimeoutException" in refused.stderr, refused.stderr[-2000:]


@pytest.mark.integration
@pytest.mark.parametrize("user", ["producer", "ingest", "admin"])
def test_kafka_refuses_a_wrong_password(cfg, kafka_only, user, caplog):
    from kafka.errors import KafkaTimeoutError

    from redline.streaming.kafka_options import client_options

    right = client_options(cfg, user=user)
    assert isinstance(_kafka_admin(right).list_topics(), list)
    caplog.set_level("WARNING", logger="kafka")
    with pytest.raises(KafkaTimeoutError, match="Unable to bootstrap"):
        _kafka_admin({**right, "sasl_plain_password": right["sasl_plain_password"] + "x"})
    # kafka-python retries until its bootstrap timeout; the broker said why.
    assert "SaslAuthenticationFailedError" in caplog.text
    assert "invalid credentials" in caplog.text


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
    assert props.stat().st_mode & 0o777 == 0o600  # it holds the admin password (JAAS)
    pid = kafka_only.pid()
    cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
    log = kafka_only.log_file.read_text(errors="replace")
    for user in ("admin", "producer", "ingest"):
        path = secrets.path_of(cfg.home, f"kafka_{user}_password")
        assert path.stat().st_mode & 0o777 == 0o600
        password = path.read_text().strip()
        assert password not in cmdline and password not in log


# -- MLflow --------------------------------------------------------------------------------

# -- Spark Thrift Server -------------------------------------------------------------------

# -- secrets, processes and the state folder ------------------------------------------------
