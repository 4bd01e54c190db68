"""Kafka connection settings, derived once from config for kafka-python, Spark and Kafka's
own console tools.

Every client names the user it acts as: ``producer`` (simulator, replay), ``ingest``
(bronze, ``ingest status``, offsets and data-loss checks) or ``admin`` (topic creation and
deletion). On the managed broker each has its own password from the secrets folder
(``redline.services.kafka``); an external cluster (``kafka.bootstrap_servers``) is reached
as the one configured user, whatever the role.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from redline.config import Config
from redline.errors import RedlineError
from redline.schemas.payloads import PAYLOADS
from redline.services import kafka as broker

#: The users a client may act as (``redline.services.kafka`` says what each may do).
USERS = broker.USERS


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


@dataclass(frozen=True)
class Login:
    """How one client logs in: a protocol and, with SASL, a mechanism and an account."""

    protocol: str
    mechanism: str = ""
    username: str = ""
    password: str = field(default="", repr=False)


def login(cfg: Config, user: str) -> Login:
    """The login of ``user`` (one of ``USERS``) on the configured Kafka."""
    if user not in USERS:
        raise RedlineError("KAFKA_USER", f"no Kafka user {user!r}; redline's users are "
                                         f"{', '.join(USERS)}")
    if cfg.kafka.managed:
        return Login("SASL_PLAINTEXT", broker.mechanism(user), user,
                     broker.password(cfg, user))
    if not cfg.kafka.security_protocol.startswith("SASL"):
        return Login(cfg.kafka.security_protocol)
    return Login(cfg.kafka.security_protocol, cfg.kafka.sasl_mechanism,
                 cfg.kafka.sasl_username, _password(cfg))


def client_options(cfg: Config, *, user: str) -> dict:
    """Keyword arguments for kafka-python clients acting as ``user``."""
    who = login(cfg, user)
    opts: dict = {"bootstrap_servers": cfg.kafka.servers.split(","),
                  "security_protocol": who.protocol}
    if who.mechanism:
        opts.update(sasl_mechanism=who.mechanism, sasl_plain_username=who.username,
                    sasl_plain_password=who.password)
    return opts


def _java_options(cfg: Config, user: str) -> dict[str, str]:
    who = login(cfg, user)
    opts = {"bootstrap.servers": cfg.kafka.servers, "security.protocol": who.protocol}
    if who.mechanism:
        opts["sasl.mechanism"] = who.mechanism
        opts["sasl.jaas.config"] = broker.jaas_login(who.mechanism, who.username,
                                                     who.password)
    return opts


def spark_options(cfg: Config, *, user: str) -> dict[str, str]:
    """Options for Spark's Kafka source (``kafka.``-prefixed consumer settings)."""
    return {f"kafka.{k}": v for k, v in _java_options(cfg, user).items()}


def client_properties(cfg: Config, *, user: str) -> str:
    """A Java client properties file for ``user`` (Kafka's console tools); it holds the
    password."""
    def escape(value: str) -> str:  # java.util.Properties reads backslashes as escapes
        return value.replace("\\", "\\\\").replace("\n", "\\n")

    return "".join(f"{k}={escape(v)}\n" for k, v in _java_options(cfg, user).items())
