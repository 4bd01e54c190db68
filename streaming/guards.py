"""Guards around a streaming query's checkpoint: one owner at a time, never a silent restart.

Two failure modes cost data silently in Structured Streaming and both are refused here:

- two processes running the same query on the same checkpoint (each believes it owns the
  offsets; on a local filesystem Delta is not safe for concurrent writers either). A lock
  file with the owner's host and pid sits in the checkpoint folder; a lock whose pid is no
  longer alive on this host (the owner was killed with -9) is stale and taken over.
- a checkpoint whose ``metadata`` vanished next to a table that already holds rows: Spark
  would start a new query from scratch (re-reading Kafka from ``earliest`` or bronze from
  version 0) and the lake would get every record again, or lose its place.
"""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path
from typing import TYPE_CHECKING

from redline import catalog
from redline.errors import RedlineError
from redline.services.base import pid_alive

if TYPE_CHECKING:
    from pyspark.sql import SparkSession
    from pyspark.sql.streaming import StreamingQuery

LOCK_FILE = "_redline.lock"


def _local_path(uri: str) -> Path | None:
    """The local folder behind ``uri``; None for object stores (no lock file there)."""
    if uri.startswith("file:"):
        return Path(uri[len("file:"):])
    if "://" in uri:
        return None
    return Path(uri)


class CheckpointLock:
    """Exclusive ownership of one checkpoint folder by this process (a context manager).

    Acquire raises ``CHECKPOINT_IN_USE`` naming the owner's host and pid while the owner is
    alive. The lock is advisory: every redline query takes it before it starts.
    """

    def __init__(self, checkpoint: str, query: str):
        self.checkpoint = checkpoint
        self.query = query
        folder = _local_path(checkpoint)
        self.path = folder / LOCK_FILE if folder is not None else None
        self.held = False

    def _owner(self) -> dict | None:
        try:
            return json.loads(self.path.read_text())
        except FileNotFoundError:
            return None
        except (json.JSONDecodeError, OSError):
            return {}  # torn write by an owner that died mid-write: stale

    def acquire(self) -> CheckpointLock:
        if self.path is None:
            return self
        self.path.parent.mkdir(parents=True, exist_ok=True)
        me = {"pid": os.getpid(), "host": socket.gethostname(), "query": self.query}
        for _ in range(3):
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                owner = self._owner()
                if owner is None:
                    continue  # released between our open and our read: try again
                alive = (owner.get("host") == me["host"]
                         and isinstance(owner.get("pid"), int) and pid_alive(owner["pid"]))
                if owner.get("host") not in (None, me["host"]) or alive:
                    raise RedlineError(
                        "CHECKPOINT_IN_USE",
                        f"streaming query {self.query} is already running on checkpoint "
                        f"{self.checkpoint} (pid {owner.get('pid')} on {owner.get('host')}); "
                        f"stop that process first (SIGTERM stops it cleanly). A second query "
                        f"on the same checkpoint would corrupt its offsets.") from None
                self.path.unlink(missing_ok=True)  # stale: its owner is gone
                continue
            with os.fdopen(fd, "w") as fh:
                json.dump(me, fh)
            self.held = True
            return self
        raise RedlineError("CHECKPOINT_IN_USE",
                           f"could not take the lock {self.path} (contended); try again")

    def release(self) -> None:
        if self.held and self.path is not None:
            owner = self._owner()
            if owner and owner.get("pid") == os.getpid():
                self.path.unlink(missing_ok=True)
            self.held = False

    def __enter__(self) -> CheckpointLock:
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()


def _has_rows(spark: SparkSession, path: str) -> bool:
    from delta.tables import DeltaTable

    if not DeltaTable.isDeltaTable(spark, path):
        return False
    detail = DeltaTable.forPath(spark, path).detail().select("numFiles").first()
    return bool(detail and detail.numFiles)


def require_checkpoint_for(spark: SparkSession, checkpoint: str, lake_root: str,
                           table: catalog.Table, query: str) -> None:
    """Refuse to start ``query`` on a fresh checkpoint when ``table`` already has rows."""
    folder = _local_path(checkpoint)
    if folder is None or (folder / "metadata").exists():
        return
    if _has_rows(spark, catalog.location(lake_root, table)):
        raise RedlineError(
            "CHECKPOINT_MISSING",
            f"streaming query {query} has no checkpoint metadata at {checkpoint}, but "
            f"{table.qualified_name} at {catalog.location(lake_root, table)} already holds "
            f"data: starting over would re-read the source from the beginning. Restore the "
            f"checkpoint folder, or, to rebuild on purpose, delete the table and its "
            f"checkpoint together.")


class LockedQuery:
    """A running streaming query and the checkpoint lock it holds until ``stop``."""

    def __init__(self, topic: str, query: StreamingQuery, lock: CheckpointLock):
        self.topic, self.query, self.lock = topic, query, lock

    def stop(self) -> None:
        try:
            if self.query.isActive:
                self.query.stop()
        finally:
            self.lock.release()
