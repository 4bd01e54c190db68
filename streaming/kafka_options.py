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
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from redline import credentials, secrets
from redline.config import Config
from redline.errors import RedlineError
from redline.schemas.payloads import PAYLOADS
from redline.services import kafka as broker
from redline.services import kafka_tls

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
        return Login("SASL_SSL" if cfg.kafka.managed_tls else "SASL_PLAINTEXT",
                     broker.mechanism(user), user, broker.password(cfg, user))
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
    if cfg.kafka.managed_tls:
        opts.update(ssl_cafile=str(kafka_tls.client_trust(cfg.home).ca_pem),
                    ssl_check_hostname=True)
    elif cfg.kafka.ssl_ca_file and who.protocol.endswith("SSL"):
        opts.update(ssl_cafile=_ca_file(cfg), ssl_check_hostname=True)
    return opts


def _ca_file(cfg: Config) -> str:
    path = cfg.kafka.ssl_ca_file
    if not os.path.isfile(path):
        raise RedlineError("KAFKA_TLS_MISSING", f"kafka.ssl_ca_file {path} is not a file")
    return path


def _java_options(cfg: Config, user: str) -> dict[str, str]:
    who = login(cfg, user)
    opts = {"bootstrap.servers": cfg.kafka.servers, "security.protocol": who.protocol}
    if who.mechanism:
        opts["sasl.mechanism"] = who.mechanism
        opts["sasl.jaas.config"] = broker.jaas_login(who.mechanism, who.username,
                                                     who.password)
    if cfg.kafka.managed_tls:
        trust = kafka_tls.client_trust(cfg.home)
        opts.update({"ssl.truststore.type": "PKCS12",
                     "ssl.truststore.location": str(trust.truststore),
                     "ssl.truststore.password": trust.truststore_password,
                     "ssl.endpoint.identification.algorithm": "https"})
    elif cfg.kafka.ssl_ca_file and who.protocol.endswith("SSL"):
        opts.update({"ssl.truststore.type": "PEM", "ssl.truststore.location": _ca_file(cfg),
                     "ssl.endpoint.identification.algorithm": "https"})
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


def listener(cfg: Config) -> str:
    """The listener redline's clients use, for messages: ``host:port (PROTOCOL)``."""
    return f"{cfg.kafka.servers} ({login_protocol(cfg)})"


def login_protocol(cfg: Config) -> str:
    if cfg.kafka.managed:
        return "SASL_SSL" if cfg.kafka.managed_tls else "SASL_PLAINTEXT"
    return cfg.kafka.security_protocol


def _trusted_by(cfg: Config) -> str:
    if cfg.kafka.managed:
        return f"the managed broker's authority {kafka_tls.client_trust(cfg.home).ca_pem}"
    return "the system's certificate authorities"


def _tls_refusal(cfg: Config, host: str, port: int, timeout: float) -> str:
    """Why a TLS handshake with ``host:port`` fails as redline's clients make it; empty
    when it succeeds."""
    import socket
    import ssl

    cafile = (str(kafka_tls.client_trust(cfg.home).ca_pem) if cfg.kafka.managed else None)
    context = ssl.create_default_context(cafile=cafile)
    try:
        with socket.create_connection((host, port), timeout=timeout) as sock:
            with context.wrap_socket(sock, server_hostname=host):
                return ""
    except ssl.SSLCertVerificationError as exc:
        return exc.verify_message or str(exc)
    except (ssl.SSLError, OSError) as exc:
        return str(exc)


def diagnose(cfg: Config, user: str, timeout: float = 5.0) -> RedlineError:
    """The error to raise when a client acting as ``user`` could not log in: nothing
    listening, a certificate the client does not trust, or a refused login."""
    import socket

    where = listener(cfg)
    who = login(cfg, user)
    for server in cfg.kafka.servers.split(","):
        host, _, port = server.strip().rpartition(":")
        try:
            socket.create_connection((host, int(port)), timeout=timeout).close()
        except OSError as exc:
            return RedlineError("KAFKA_UNREACHABLE",
                                f"nothing accepts connections at {server} ({exc.strerror or exc}), "
                                f"the {who.protocol} listener redline's clients use; is the "
                                f"broker running? `redline up`")
        if who.protocol.endswith("SSL"):
            refusal = _tls_refusal(cfg, host, int(port), timeout)
            if refusal:
                return RedlineError(
                    "KAFKA_TLS_UNTRUSTED",
                    f"the {who.protocol} listener at {server} presented a certificate that "
                    f"{_trusted_by(cfg)} does not vouch for ({refusal}); "
                    + ("restart the broker (`redline down kafka`, then `redline up`) so that it "
                       "uses the certificate its authority signed" if cfg.kafka.managed
                       else "give the client the cluster's CA"))
    if cfg.kafka.managed:
        secret = secrets.path_of(cfg.home, credentials.kafka_secret(user))
        fix = (f"the password in {secret} is not the one the broker knows: restart the "
               f"broker (`redline down kafka`, then `redline up`), which sets its users' "
               f"passwords from the secrets folder")
    else:
        fix = (f"check kafka.sasl_username ({who.username!r}) and the password in "
               f"${cfg.kafka.sasl_password_env}")
    return RedlineError("KAFKA_LOGIN",
                        f"Kafka at {where} refused the login of {who.username or user!r}"
                        f"{f' ({who.mechanism})' if who.mechanism else ''}: wrong password or "
                        f"unknown user; {fix}")


@contextmanager
def login_errors(cfg: Config, user: str) -> Iterator[None]:
    """Around the creation of a kafka-python client acting as ``user``: its bootstrap
    timeout (kafka-python retries a refused login until then and reports only that it
    could not bootstrap) becomes ``diagnose``'s error, naming the listener."""
    from kafka.errors import KafkaTimeoutError

    try:
        yield
    except KafkaTimeoutError as exc:
        if "bootstrap" not in str(exc).lower():
            raise
        raise diagnose(cfg, user) from exc


#: What the JVM's Kafka client says when a login or the TLS handshake fails.
_JAVA_LOGIN_FAILURES = ("SaslAuthenticationException", "SslAuthenticationException",
                        "SSLHandshakeException", "PKIX path building failed")


def explain_login_failure(cfg: Config, exc: BaseException, user: str) -> BaseException:
    """Spark's failure ``exc`` of a Kafka query acting as ``user`` as a RedlineError naming
    the listener when the login or the TLS handshake failed; else ``exc`` itself."""
    text = str(exc)
    cause = next((line.strip() for line in text.splitlines()
                  if any(m in line for m in _JAVA_LOGIN_FAILURES)), "")
    if not cause:
        return exc
    found = diagnose(cfg, user)
    if found.code == "KAFKA_LOGIN" and "SaslAuthenticationException" not in text:
        # Python trusts the certificate but the JVM does not: its truststore is wrong.
        trust = (kafka_tls.client_trust(cfg.home).truststore if cfg.kafka.managed_tls
                 else "the JVM's default truststore")
        found = RedlineError("KAFKA_TLS_UNTRUSTED",
                             f"the TLS handshake with the listener at {listener(cfg)} failed "
                             f"for Spark's Kafka client: the certificate is not trusted by "
                             f"{trust}")
    return RedlineError(found.code, f"{found.message}\nSpark's Kafka source: {cause[:300]}")
