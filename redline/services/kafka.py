"""The Apache Kafka broker in KRaft mode (single node), run from its Maven Central jars.

Nobody reaches it without a password. The client listener speaks SASL_PLAINTEXT: the
users ``producer`` and ``ingest`` log in with SCRAM-SHA-512, the super user ``admin`` with
PLAIN. ``admin`` is declared in the broker's own JAAS configuration (in
``server.properties``, mode 0600) because SCRAM credentials live in the cluster metadata
and cannot exist before the first start; it is also the identity the broker uses towards
itself and its controller, whose listener takes only ``admin`` (PLAIN), never an anonymous
client. After each start the broker (re)creates the two SCRAM users and their ACLs:

- ``producer``: WRITE and DESCRIBE on every topic (simulator, replay);
- ``ingest``: READ and DESCRIBE on every topic, READ on every consumer group (Spark's Kafka
  source, ``ingest status``, the data-loss checks);
- only ``admin`` creates, alters and deletes topics.

Passwords are generated secrets (``redline.secrets``, ``kafka_<user>_password``); none is
passed on a command line or written to a log.

With ``kafka.security_protocol = "SASL_SSL"`` the broker also opens the listener ``TLS``
(SASL_SSL, same users and mechanisms) on ``kafka.ssl_port``, which redline's clients then
use; its certificates are made at start by ``redline.services.kafka_tls``. The
SASL_PLAINTEXT listener stays for the broker's own connections and its health check.
"""

from __future__ import annotations

import base64
import os
import shutil
import subprocess
import time
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path

from redline import credentials, jvm, secrets
from redline.config import Config
from redline.errors import RedlineError
from redline.services import kafka_tls
from redline.services.base import Service, port_open

_LOG4J = """rootLogger.level = info
rootLogger.appenderRef.stdout.ref = stdout
appender.stdout.type = Console
appender.stdout.name = stdout
appender.stdout.layout.type = PatternLayout
appender.stdout.layout.pattern = [%d] %p %m (%c)%n
logger.kafka.name = kafka
logger.kafka.level = warn
logger.apache.name = org.apache.kafka
logger.apache.level = warn
"""

ADMIN, PRODUCER, INGEST = (credentials.KAFKA_ADMIN, credentials.KAFKA_PRODUCER,
                           credentials.KAFKA_INGEST)
#: The managed broker's users (module docstring: who may do what).
USERS = credentials.KAFKA_USERS
#: In the secrets folder: ``admin_password=...`` (and with TLS ``ssl_keystore_password=...``),
#: read by the broker's FileConfigProvider.
BROKER_SECRETS = "kafka_broker.properties"
#: Listener of the SASL_SSL client port (``kafka.security_protocol = "SASL_SSL"``).
TLS_LISTENER = "TLS"
SCRAM_MECHANISM = "SCRAM-SHA-512"

#: Largest record batch the broker accepts (``message.max.bytes``), set once. Above silver's
#: ``ingest.max_record_bytes`` (1 MiB) so that an oversized record reaches the lake and is
#: quarantined with its coordinates; redline's producer refuses a larger one itself.
MESSAGE_MAX_BYTES = 8 * 1024 * 1024

_PLAIN_MODULE = "org.apache.kafka.common.security.plain.PlainLoginModule"
_SCRAM_MODULE = "org.apache.kafka.common.security.scram.ScramLoginModule"


def java_binary() -> str:
    java = shutil.which("java")
    if java is None:
        raise RedlineError(
            "JAVA_MISSING",
            "Java 17 or newer is required for Kafka and Spark; install it "
            "(apt-get install openjdk-17-jre-headless) and make sure `java` is on PATH")
    return java


def password(cfg: Config, user: str) -> str:
    """The password of ``user`` on the managed broker (generated on first use, 0600)."""
    if user not in USERS:
        raise RedlineError("KAFKA_USER", f"no Kafka user {user!r}; the managed broker's "
                                         f"users are {', '.join(USERS)}")
    return secrets.get_or_create(cfg.home, credentials.kafka_secret(user))


def mechanism(user: str) -> str:
    """SASL mechanism of ``user`` on the managed broker."""
    return "PLAIN" if user == ADMIN else SCRAM_MECHANISM


def jaas_quote(value: str) -> str:
    """``value`` as a double-quoted JAAS option value."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def jaas_login(mech: str, username: str, secret: str) -> str:
    """A client's ``sasl.jaas.config`` for PLAIN or SCRAM."""
    module = _SCRAM_MODULE if mech.startswith("SCRAM") else _PLAIN_MODULE
    return (f"{module} required username={jaas_quote(username)} "
            f"password={jaas_quote(secret)};")


def _acl_bindings() -> list:
    from kafka.admin import (
        ACL,
        ACLOperation,
        ACLPermissionType,
        ResourcePattern,
        ResourceType,
    )

    grants = [(PRODUCER, ResourceType.TOPIC, ACLOperation.WRITE),
              (PRODUCER, ResourceType.TOPIC, ACLOperation.DESCRIBE),
              (INGEST, ResourceType.TOPIC, ACLOperation.READ),
              (INGEST, ResourceType.TOPIC, ACLOperation.DESCRIBE),
              (INGEST, ResourceType.GROUP, ACLOperation.READ)]
    # Tests and profiles use their own topic prefixes: the grants cover every topic.
    return [ACL(f"User:{user}", "*", op, ACLPermissionType.ALLOW, ResourcePattern(kind, "*"))
            for user, kind, op in grants]


class KafkaBroker(Service):
    name = "kafka"
    start_timeout = 90.0

    def __init__(self, cfg: Config):
        super().__init__(cfg.home, cfg.kafka.host, cfg.kafka.port)
        self.cfg = cfg
        self.controller_port = cfg.kafka.controller_port
        self.tls = cfg.kafka.managed_tls
        self.ssl_port = cfg.kafka.ssl_port
        self.data_dir = self.dir / "data"
        self.props = self.dir / "server.properties"

    def ports(self) -> Sequence[int]:
        return (self.port, self.controller_port, *((self.ssl_port,) if self.tls else ()))

    def classpath(self) -> str:
        return os.pathsep.join(str(j) for j in jvm.jars(self.cfg.cache, "kafka"))

    def java(self, main: str, *args: str, heap_mb: int = 256) -> list[str]:
        return [java_binary(), f"-Xmx{heap_mb}m", "-cp", self.classpath(),
                f"-Dlog4j2.configurationFile={self.dir / 'log4j2.properties'}",
                # The one config provider the broker's settings may use (Kafka 4 allows
                # none by default).
                "-Dorg.apache.kafka.automatic.config.providers="
                "org.apache.kafka.common.config.provider.FileConfigProvider",
                main, *args]

    def _properties(self) -> str:
        h, p, c = self.host, self.port, self.controller_port
        # The broker's side of PLAIN: ``user_admin`` is the one account it accepts;
        # username/password are what the broker itself logs in with (inter-broker and
        # towards the controller). The password stays in the secrets folder: Kafka's
        # FileConfigProvider puts it in place when the broker reads this file.
        admin = f'"${{file:{self._broker_secrets()}:{ADMIN}_password}}"'
        plain = (f"{_PLAIN_MODULE} required username={jaas_quote(ADMIN)} "
                 f"password={admin} user_{ADMIN}={admin};")
        listeners = [f"CLIENT://{h}:{p}"]
        protocols = ["CLIENT:SASL_PLAINTEXT"]
        tls: list[str] = []
        if self.tls:
            listeners.append(f"{TLS_LISTENER}://{h}:{self.ssl_port}")
            protocols.append(f"{TLS_LISTENER}:SASL_SSL")
            name = f"listener.name.{TLS_LISTENER.lower()}"
            keystore = f"${{file:{self._broker_secrets()}:ssl_keystore_password}}"
            tls = [f"{name}.sasl.enabled.mechanisms=PLAIN,{SCRAM_MECHANISM}",
                   f"{name}.plain.sasl.jaas.config={plain}",
                   f"{name}.{SCRAM_MECHANISM.lower()}.sasl.jaas.config={_SCRAM_MODULE} "
                   f"required;",
                   f"{name}.ssl.keystore.type=PKCS12",
                   f"{name}.ssl.keystore.location="
                   f"{secrets.path_of(self.home, kafka_tls.KEYSTORE)}",
                   f"{name}.ssl.keystore.password={keystore}",
                   f"{name}.ssl.key.password={keystore}",
                   f"{name}.ssl.client.auth=none"]
        return "\n".join([
            "config.providers=file",
            "config.providers.file.class="
            "org.apache.kafka.common.config.provider.FileConfigProvider",
            "process.roles=broker,controller",
            "node.id=1",
            f"controller.quorum.voters=1@{h}:{c}",
            f"listeners={','.join(listeners)},CONTROLLER://{h}:{c}",
            f"advertised.listeners={','.join(listeners)}",
            "controller.listener.names=CONTROLLER",
            "inter.broker.listener.name=CLIENT",
            f"listener.security.protocol.map={','.join(protocols)},CONTROLLER:SASL_PLAINTEXT",
            f"listener.name.client.sasl.enabled.mechanisms=PLAIN,{SCRAM_MECHANISM}",
            f"listener.name.client.plain.sasl.jaas.config={plain}",
            f"listener.name.client.{SCRAM_MECHANISM.lower()}.sasl.jaas.config="
            f"{_SCRAM_MODULE} required;",
            "listener.name.controller.sasl.enabled.mechanisms=PLAIN",
            f"listener.name.controller.plain.sasl.jaas.config={plain}",
            *tls,
            "sasl.mechanism.inter.broker.protocol=PLAIN",
            "sasl.mechanism.controller.protocol=PLAIN",
            "authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer",
            f"super.users=User:{ADMIN}",
            "allow.everyone.if.no.acl.found=false",
            f"log.dirs={self.data_dir}",
            f"num.partitions={self.cfg.kafka.partitions}",
            f"message.max.bytes={MESSAGE_MAX_BYTES}",
            "offsets.topic.replication.factor=1",
            "transaction.state.log.replication.factor=1",
            "transaction.state.log.min.isr=1",
            "share.coordinator.state.topic.replication.factor=1",
            "share.coordinator.state.topic.min.isr=1",
            "group.initial.rebalance.delay.ms=0",
            "auto.create.topics.enable=false",
            "log.retention.hours=168",
            "",
        ])

    def _broker_secrets(self) -> Path:
        return secrets.path_of(self.home, BROKER_SECRETS)

    def _write_properties(self) -> None:
        value = password(self.cfg, ADMIN)
        if any(c in value for c in '"\\\n'):  # generated ones are URL-safe base64
            raise RedlineError(
                "KAFKA_PASSWORD", f"{secrets.path_of(self.home, 'kafka_admin_password')} "
                                  f"holds a quote, backslash or newline")
        lines = [f"{ADMIN}_password={value}"]
        if self.tls:
            lines.append(f"ssl_keystore_password={kafka_tls.keystore_password(self.home)}")
        secrets.write(self.home, BROKER_SECRETS, "\n".join(lines), replace=True)
        # No secret in it, but private like everything under the state folder.
        tmp = self.props.with_name(f".{self.props.name}.{os.getpid()}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.fchmod(fd, 0o600)
            with os.fdopen(fd, "w") as fh:
                fh.write(self._properties())
            os.replace(tmp, self.props)
        finally:
            tmp.unlink(missing_ok=True)

    def prepare(self) -> None:
        (self.dir / "log4j2.properties").write_text(_LOG4J)
        if self.tls:
            kafka_tls.ensure(self.home, self.host, java_binary())
        self._write_properties()
        if (self.data_dir / "meta.properties").exists():
            return
        cluster_id = "-"
        while cluster_id.startswith("-"):  # the storage tool would read "-..." as an option
            cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        # No --add-scram: it would put passwords on a command line. The SCRAM users are
        # created through the admin API once the broker runs (``grant_access``).
        result = subprocess.run(
            self.java("kafka.tools.StorageTool", "format", "-t", cluster_id,
                      "-c", str(self.props)),
            capture_output=True, text=True)
        if result.returncode != 0:
            raise RedlineError(
                "KAFKA_FORMAT_FAILED",
                f"formatting the KRaft storage in {self.data_dir} failed:\n"
                f"{result.stdout[-2000:]}{result.stderr[-2000:]}")

    def command(self) -> Sequence[str]:
        return self.java("kafka.Kafka", str(self.props), heap_mb=self.cfg.kafka.heap_mb)

    def start(self, progress: Callable[[str], None] = print) -> None:
        super().start(progress)
        self.grant_access(progress)

    def admin_options(self) -> dict:
        """kafka-python keyword arguments that log in as ``admin``."""
        return {"bootstrap_servers": [self.address], "security_protocol": "SASL_PLAINTEXT",
                "sasl_mechanism": mechanism(ADMIN), "sasl_plain_username": ADMIN,
                "sasl_plain_password": password(self.cfg, ADMIN)}

    def grant_access(self, progress: Callable[[str], None] = print,
                     timeout: float = 30.0) -> None:
        """Create or update the SCRAM users and their ACLs (idempotent), and wait until
        the broker enforces them."""
        from kafka import KafkaAdminClient
        from kafka.admin import (
            ACLFilter,
            ACLOperation,
            ACLPermissionType,
            ACLResourcePatternType,
            ResourcePatternFilter,
            ResourceType,
            UserScramCredentialUpsertion,
        )
        from kafka.errors import KafkaError

        scram_users = [u for u in USERS if mechanism(u) != "PLAIN"]
        wanted = set(_acl_bindings())
        try:
            admin = KafkaAdminClient(client_id="redline-access", request_timeout_ms=10000,
                                     **self.admin_options())
        except KafkaError as exc:
            raise RedlineError("KAFKA_ACCESS", f"cannot log in to Kafka at {self.address} "
                                               f"as {ADMIN}: {exc}") from exc
        try:
            failed = {user: err for user, err in admin.alter_user_scram_credentials(
                [UserScramCredentialUpsertion(u, SCRAM_MECHANISM, password(self.cfg, u))
                 for u in scram_users]).items() if err}
            created = admin.create_acls(list(wanted))
            if failed or created["failed"]:
                raise RedlineError(
                    "KAFKA_ACCESS",
                    f"setting up Kafka's users and ACLs failed: "
                    f"{failed or created['failed']}")
            everything = ACLFilter(None, None, ACLOperation.ANY, ACLPermissionType.ANY,
                                   ResourcePatternFilter(ResourceType.ANY, None,
                                                         ACLResourcePatternType.ANY))
            # Both are metadata records: the broker applies them a moment after the
            # controller commits them. Wait, so that the first client is not refused.
            deadline = time.monotonic() + timeout
            while True:
                users = admin.describe_user_scram_credentials(scram_users)
                acls, _err = admin.describe_acls(everything)
                if wanted <= set(acls) and all(not users[u]["error"] for u in scram_users):
                    break
                if time.monotonic() > deadline:
                    raise RedlineError("KAFKA_ACCESS", f"Kafka did not apply its users and "
                                                       f"ACLs within {timeout:.0f}s")
                time.sleep(0.2)
        except KafkaError as exc:
            raise RedlineError("KAFKA_ACCESS",
                               f"setting up Kafka's users and ACLs failed: {exc}") from exc
        finally:
            admin.close()
        progress(f"{self.name}: users {', '.join(USERS)} and their ACLs in force "
                 f"(passwords in {secrets.secrets_dir(self.home)})")

    def check(self) -> bool:
        if not port_open(self.host, self.port):
            return False
        if self.tls and not port_open(self.host, self.ssl_port):
            return False
        from kafka import KafkaAdminClient
        from kafka.errors import KafkaError

        try:
            admin = KafkaAdminClient(request_timeout_ms=3000, client_id="redline-health",
                                     **self.admin_options())
        except KafkaError:
            return False
        try:
            admin.list_topics()
            return True
        except KafkaError:
            return False
        finally:
            admin.close()

    def version(self) -> str:
        return jvm.KAFKA_VERSION
