"""Kafka connection settings, derived once from config for kafka-python and for Spark."""

from __future__ import annotations

import os

from redline.config import Config
from redline.errors import RedlineError
from redline.schemas.payloads import PAYLOADS


def topic_name(cfg: Config, payload_name: str) -> str:
    return f"{cfg.kafka.topic_prefix}{payload_name}"


def all_topics(cfg: Config) -> dict[str, str]:
    """Logical payload name -> Kafka topic."""
    return {name: topic_name(cfg, name) for name in PAYLOADS}


def _password(cfg: Config) -> str:
    var = cfg.kafka.sasl_password_env
    if not var or var not in os.environ:
        raise RedlineError(
            "KAFKA_SASL_PASSWORD",
            f"kafka.security_protocol is {cfg.kafka.security_protocol} but the password "
            f"variable {var or '(kafka.sasl_password_env unset)'} is not set")
    return os.environ[var]


def client_options(cfg: Config) -> dict:
    """Keyword arguments for kafka-python clients."""
    opts: dict = {"bootstrap_servers": cfg.kafka.servers.split(","),
                  "security_protocol": cfg.kafka.security_protocol}
    if cfg.kafka.security_protocol.startswith("SASL"):
        opts.update(sasl_mechanism=cfg.kafka.sasl_mechanism,
                    sasl_plain_username=cfg.kafka.sasl_username,
                    sasl_plain_password=_password(cfg))
    return opts


def spark_options(cfg: Config) -> dict[str, str]:
    """Options for Spark's Kafka source (``kafka.``-prefixed consumer settings)."""
    opts = {"kafka.bootstrap.servers": cfg.kafka.servers,
            "kafka.security.protocol": cfg.kafka.security_protocol}
    if cfg.kafka.security_protocol.startswith("SASL"):
        module = ("org.apache.kafka.common.security.scram.ScramLoginModule"
                  if cfg.kafka.sasl_mechanism.startswith("SCRAM")
                  else "org.apache.kafka.common.security.plain.PlainLoginModule")
        pw = _password(cfg).replace('"', '\\"')
        opts["kafka.sasl.mechanism"] = cfg.kafka.sasl_mechanism
        opts["kafka.sasl.jaas.config"] = (
            f'{module} required username="{cfg.kafka.sasl_username}" password="{pw}";')
    return opts
