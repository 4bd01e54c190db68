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

import errno
import json
import os
import re
import socket
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from redline import catalog, s3a
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
            return {}  # not a lock redline wrote (locks appear whole): stale

    def acquire(self) -> CheckpointLock:
        """Take the lock, or raise ``CHECKPOINT_IN_USE`` while a live owner holds it.

        The lock file appears whole or not at all: its content goes to a private temporary
        file first, which is then hard-linked to the lock's name (``link`` fails when the
        name exists, atomically). A reader never sees a half-written lock, so a live
        owner's lock is never mistaken for a torn, stale one.
        """
        if self.path is None:
            return self
        me = {"pid": os.getpid(), "host": socket.gethostname(), "query": self.query}
        tmp = self.path.with_name(f".{LOCK_FILE}.{os.getpid()}.{id(self)}")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(tmp, os.O_CREAT | os.O_TRUNC | os.O_WRONLY, 0o600)
            with os.fdopen(fd, "w") as fh:
                json.dump(me, fh)
        except OSError as exc:
            tmp.unlink(missing_ok=True)
            if exc.errno != errno.ENOSPC:
                raise
            raise disk_full(self.query, str(self.path.parent)) from exc
        try:
            for _ in range(3):
                try:
                    os.link(tmp, self.path)
                except FileExistsError:
                    owner = self._owner()
                    if owner is None:
                        continue  # released between our link and our read: try again
                    alive = (owner.get("host") == me["host"]
                             and isinstance(owner.get("pid"), int) and pid_alive(owner["pid"]))
                    if owner.get("host") not in (None, me["host"]) or alive:
                        raise RedlineError(
                            "CHECKPOINT_IN_USE",
                            f"streaming query {self.query} is already running on checkpoint "
                            f"{self.checkpoint} (pid {owner.get('pid')} on "
                            f"{owner.get('host')}); stop that process first (SIGTERM stops "
                            f"it cleanly). A second query on the same checkpoint would "
                            f"corrupt its offsets.") from None
                    self._remove_stale(owner)
                    continue
                self.held = True
                return self
        finally:
            tmp.unlink(missing_ok=True)
        raise RedlineError("CHECKPOINT_IN_USE",
                           f"could not take the lock {self.path} (contended); try again")

    def _remove_stale(self, owner: dict) -> None:
        """Remove the lock of a dead ``owner``, unless another process replaced it since.

        Two processes can find the same stale lock; an ``flock`` on a side file makes the
        check and the removal one step, so neither removes the lock the other just took.
        """
        import fcntl

        fd = os.open(self.path.with_name(LOCK_FILE + ".gate"), os.O_CREAT | os.O_RDWR, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            if self._owner() == owner:
                self.path.unlink(missing_ok=True)
        finally:
            os.close(fd)  # closing releases the flock

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


def disk_full(query: str, where: str) -> RedlineError:
    """``LAKE_DISK_FULL``: ``query`` could not write under ``where``, its disk is full."""
    return RedlineError(
        "LAKE_DISK_FULL",
        f"streaming query {query} could not write under {where}: no space left on the "
        f"device. Delta commits each write whole or not at all, so every table reads as of "
        f"its last commit, and the batch that failed runs again at the next start (its "
        f"writes are idempotent: nothing lands twice). Free space on that disk (or grow "
        f"it), then run the command again.")


def _out_of_space(exc: BaseException | None) -> bool:
    """Whether ``exc`` (a Python error, or a Spark one and its JVM causes) is ENOSPC."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, OSError) and exc.errno == errno.ENOSPC:
            return True
        # A Spark error's message names its own failure ("Task failed while writing
        # rows"); the JVM stack trace pyspark keeps with it names the causes.
        if "No space left on device" in f"{exc}\n{getattr(exc, '_stackTrace', '')}":
            return True
        exc = getattr(exc, "_cause", None) or exc.__cause__
    return False


def explain_failure(exc: BaseException, query: str, lake_root: str) -> BaseException:
    """What to raise for the failure ``exc`` of ``query``: ``LAKE_DISK_FULL`` when the
    lake's disk filled up (Spark's own error names a failed task, not the full disk), an
    object-store error of an s3a:// lake (``s3a.explain``: refused keys, store down), else
    ``exc`` itself."""
    if _out_of_space(exc):
        return disk_full(query, lake_root)
    store = s3a.explain(exc, lake_root)
    if store is not None:
        return RedlineError(store.code, f"streaming query {query}: {store.message}")
    return exc


def _whole_commit(path: Path) -> bool:
    """Whether ``path`` is a whole commit-log entry: a version line, then a JSON object."""
    try:
        lines = path.read_text().splitlines()
        return (len(lines) >= 2 and re.fullmatch(r"v\d+", lines[0].strip()) is not None
                and isinstance(json.loads(lines[1]), dict))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return False


def repair_commit_log(checkpoint: str, query: str,
                      progress: Callable[[str], None] = print) -> list[int]:
    """Undo what a crash or a lost file left at the end of the checkpoint's commit log, so
    that Spark runs those batches again; the batch ids it will rerun.

    ``commits/n`` says batch ``n`` finished. When it is missing, Spark runs batch ``n``
    again from ``offsets/n``, which redline's writes make harmless (the Delta sink skips a
    batch id it already wrote; silver's appends carry the batch id as their Delta
    transaction version). Two leftovers would stop that rerun with a misleading Spark
    error, and are removed here: a commit file that is empty or cut short (a machine that
    lost power after the rename, before the data reached the disk: Spark cannot parse
    it), and the checksum file ``.n.crc`` of a commit file that is gone (Spark's rename of
    the new one onto it fails, reported as "multiple streaming queries are concurrently
    using" the checkpoint). Call it holding the checkpoint's lock.
    """
    folder = _local_path(checkpoint)
    commits = folder / "commits" if folder is not None else None
    if commits is None or not commits.is_dir():
        return []
    rerun = []
    latest = -1
    for n in sorted((int(p.name) for p in commits.iterdir() if p.name.isdigit()),
                    reverse=True):
        path = commits / str(n)
        if _whole_commit(path):
            latest = n  # Spark reads the newest entry only
            break
        size = path.stat().st_size
        path.unlink()
        (commits / f".{n}.crc").unlink(missing_ok=True)
        rerun.append(n)
        progress(f"{query}: {path} was unreadable ({size} bytes, a write cut short); "
                 f"removed it, so batch {n} runs again (its writes are idempotent: "
                 f"nothing is written twice)")
    for crc in commits.glob(".*.crc"):
        n = crc.name[1:-len(".crc")]
        # Only a batch after the newest commit is written again (older leftovers are
        # harmless).
        if n.isdigit() and int(n) > latest and not (commits / n).exists():
            crc.unlink()
            if int(n) not in rerun:
                rerun.append(int(n))
                progress(f"{query}: {commits / n} is missing; removed its leftover "
                         f"checksum {crc.name}, so batch {n} runs again (its writes are "
                         f"idempotent: nothing is written twice)")
    return sorted(rerun)


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
