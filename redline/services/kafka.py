"""The Apache Kafka broker in KRaft mode (single node), run from its Maven Central jars."""

from __future__ import annotations

import base64
import os
import shutil
import subprocess
import uuid
from collections.abc import Sequence

from redline import jvm
from redline.config import Config
from redline.errors import RedlineError
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


def java_binary() -> str:
    java = shutil.which("java")
    if java is None:
        raise RedlineError(
            "JAVA_MISSING",
            "Java 17 or newer is required for Kafka and Spark; install it "
            "(apt-get install openjdk-17-jre-headless) and make sure `java` is on PATH")
    return java


class KafkaBroker(Service):
    name = "kafka"
    start_timeout = 90.0

    def __init__(self, cfg: Config):
        super().__init__(cfg.home, cfg.kafka.host, cfg.kafka.port)
        self.cfg = cfg
        self.controller_port = cfg.kafka.controller_port
        self.data_dir = self.dir / "data"
        self.props = self.dir / "server.properties"

    def ports(self) -> Sequence[int]:
        return (self.port, self.controller_port)

    def classpath(self) -> str:
        return os.pathsep.join(str(j) for j in jvm.jars(self.cfg.cache, "kafka"))

    def java(self, main: str, *args: str, heap_mb: int = 256) -> list[str]:
        return [java_binary(), f"-Xmx{heap_mb}m", "-cp", self.classpath(),
                f"-Dlog4j2.configurationFile={self.dir / 'log4j2.properties'}",
                main, *args]

    def _properties(self) -> str:
        h, p, c = self.host, self.port, self.controller_port
        return "\n".join([
            "process.roles=broker,controller",
            "node.id=1",
            f"controller.quorum.voters=1@{h}:{c}",
            f"listeners=PLAINTEXT://{h}:{p},CONTROLLER://{h}:{c}",
            f"advertised.listeners=PLAINTEXT://{h}:{p}",
            "controller.listener.names=CONTROLLER",
            "inter.broker.listener.name=PLAINTEXT",
            "listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
            f"log.dirs={self.data_dir}",
            f"num.partitions={self.cfg.kafka.partitions}",
            # Records up to 8 MiB are accepted so that an oversized one reaches the lake
            # and is quarantined with its coordinates (silver's limit is 1 MiB).
            "message.max.bytes=8388608",
            "offsets.topic.replication.factor=1",
            "transaction.state.log.replication.factor=1",
            "transaction.state.log.min.isr=1",
            "share.coordinator.state.topic.replication.factor=1",
            "share.coordinator.state.topic.min.isr=1",
            "group.initial.rebalance.delay.ms=0",
            "auto.create.topics.enable=false",
            "message.max.bytes=2097152",
            "log.retention.hours=168",
            "",
        ])

    def prepare(self) -> None:
        (self.dir / "log4j2.properties").write_text(_LOG4J)
        self.props.write_text(self._properties())
        if (self.data_dir / "meta.properties").exists():
            return
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
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

    def check(self) -> bool:
        if not port_open(self.host, self.port):
            return False
        from kafka import KafkaAdminClient
        from kafka.errors import KafkaError

        try:
            admin = KafkaAdminClient(bootstrap_servers=self.address, request_timeout_ms=3000,
                                     client_id="redline-health")
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
