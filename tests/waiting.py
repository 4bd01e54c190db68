"""Waits that follow observed progress instead of a fixed timeout.

A fixed timeout fails a healthy run on a slow machine: from a fresh clone, with another
build loading both cores, a `redline ingest` took more than 120 s to plan its first batch
although Spark had started. ``until`` keeps waiting while the work visibly advances (its
log grows, a checkpoint or table folder changes, its processes use CPU) and fails only
when nothing moved for ``stall`` seconds, when the process it waits on exits, or when the
overall ``budget`` is spent.

pytest puts this folder on ``sys.path`` (``tests`` has a conftest.py and no package), so a
test module imports it as ``waiting``.
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from redline.services.base import session_processes

#: Overall limit of one wait, however steadily the work advances.
BUDGET_S = 600.0
#: A wait fails when nothing it watches changed for this long (a JVM starting on a busy
#: machine may print nothing for a minute, but it uses CPU).
STALL_S = 180.0


def _tree_signature(path: Path) -> tuple:
    """What changes when anything under ``path`` is written (names, sizes, mtimes)."""
    if path.is_file():
        st = path.stat()
        return (st.st_size, st.st_mtime_ns)
    if not path.is_dir():
        return ()
    out = []
    for folder, _dirs, files in os.walk(path):
        for name in files:
            try:
                st = os.stat(os.path.join(folder, name))
            except FileNotFoundError:
                continue  # written and renamed while we looked
            out.append((folder, name, st.st_size, st.st_mtime_ns))
    return tuple(sorted(out))


def cpu_ticks(session: int) -> int:
    """CPU time (clock ticks) used so far by every live process of ``session``: a process
    started with ``start_new_session=True`` and its children (the Spark JVM)."""
    return sum(int(f[11]) + int(f[12]) for f in session_processes(session))  # utime+stime


def tail(log: Path | None, chars: int = 3000) -> str:
    if log is None or not log.exists():
        return ""
    return log.read_text(errors="replace")[-chars:]


def until(done: Callable[[], bool], what: str, *, proc: subprocess.Popen | None = None,
          log: Path | None = None, watch: Sequence[Path | str] = (),
          session: int | None = None, stall: float = STALL_S, budget: float = BUDGET_S,
          poll: float = 0.5) -> float:
    """Wait until ``done()`` is true; returns the seconds waited.

    Progress is any change of ``log``, of a file or folder in ``watch``, or of the CPU time
    of the processes of ``session`` (default: ``proc``'s, when it was started in a new
    session). Fails with ``what`` and the log's tail when ``proc`` exits before ``done``,
    when nothing advanced for ``stall`` seconds, or after ``budget`` seconds in all.
    """
    paths = [Path(p) for p in watch] + ([log] if log is not None else [])
    if session is None and proc is not None:
        try:
            session = proc.pid if os.getsid(proc.pid) == proc.pid else None
        except ProcessLookupError:
            session = None

    def signature() -> tuple:
        return (tuple(_tree_signature(p) for p in paths),
                cpu_ticks(session) if session is not None else 0)

    began = last_move = time.monotonic()
    seen = signature()
    while not done():
        now = time.monotonic()
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"{what}: the process exited with {proc.returncode} first\n"
                                 f"{tail(log)}")
        if now - began > budget:
            raise AssertionError(f"{what}: not done after {budget:.0f}s although it kept "
                                 f"advancing\n{tail(log)}")
        if now - last_move > stall:
            raise AssertionError(f"{what}: nothing advanced for {stall:.0f}s (log, "
                                 f"{', '.join(map(str, watch)) or 'no folders'}, CPU)\n"
                                 f"{tail(log)}")
        time.sleep(poll)
        current = signature()
        if current != seen:
            seen, last_move = current, time.monotonic()
    return time.monotonic() - began


def exited(proc: subprocess.Popen, what: str, log: Path | None = None,
           **kwargs) -> int:
    """Wait (as ``until``) for ``proc`` to exit; its return code."""
    session = proc.pid
    until(lambda: proc.poll() is not None, what, log=log, session=session, **kwargs)
    return proc.returncode
