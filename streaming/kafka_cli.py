"""`redline kafka client-config`: a client properties file for Kafka's own console tools.

Kept apart from redline/cli.py (which only adds the parser) and light to import.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from redline.errors import RedlineError
from redline.services.kafka import USERS

if TYPE_CHECKING:
    from redline.config import Config


def add_kafka_parser(sub) -> None:
    """Add ``redline kafka`` to the CLI's sub-command parsers ``sub``."""
    s = sub.add_parser("kafka", help="Kafka access: a client settings file for Kafka's "
                                     "console tools")
    k = s.add_subparsers(dest="action", required=True)
    a = k.add_parser("client-config", help="write the connection settings and password of "
                                           "one Kafka user to FILE (mode 0600), for the "
                                           "tools' --command-config")
    a.add_argument("--user", required=True, choices=USERS,
                   help="producer: write; ingest: read; admin: everything (topics)")
    a.add_argument("--out", required=True, metavar="FILE")
    s.set_defaults(fn=cmd_kafka)


def write_private(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` readable by its owner only, replacing it whole."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(text)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def cmd_kafka(cfg: Config, args) -> int:
    """``redline kafka client-config --user USER --out FILE``."""
    from redline.streaming.kafka_options import client_properties

    out = Path(args.out)
    if not out.parent.is_dir():
        raise RedlineError("KAFKA_CLIENT_CONFIG", f"--out {out}: folder {out.parent} does "
                                                  f"not exist")
    write_private(out, client_properties(cfg, user=args.user))
    print(f"wrote {out} (mode 0600): Kafka user {args.user} at {cfg.kafka.servers}; it "
          f"holds the password, keep it private. Use it as the tools' --command-config, "
          f"e.g. kafka-console-producer.sh --bootstrap-server {cfg.kafka.servers} "
          f"--command-config {out} --topic TOPIC")
    return 0
