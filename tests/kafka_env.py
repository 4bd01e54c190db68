"""Settings of a broker of a test module's own (its own state folder and free ports)."""

from __future__ import annotations

import socket
from pathlib import Path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def sasl_ssl_broker_env(home: Path, topic_prefix: str) -> dict[str, str]:
    """Environment of a managed broker in ``home`` whose clients use its SASL_SSL
    listener."""
    return {"REDLINE_HOME": str(home),
            "REDLINE_KAFKA_PORT": str(free_port()),
            "REDLINE_KAFKA_CONTROLLER_PORT": str(free_port()),
            "REDLINE_KAFKA_SSL_PORT": str(free_port()),
            "REDLINE_KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
            "REDLINE_KAFKA_TOPIC_PREFIX": topic_prefix}
