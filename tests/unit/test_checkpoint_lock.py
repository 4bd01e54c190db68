"""The checkpoint lock under real races: several processes, one lock file, many rounds.

Each racer is its own process (multiprocessing, spawn): the lock's owner is a pid, so
threads of one process could not race for it. A shared counter of holders, raised right
after ``acquire`` returns and lowered right before ``release``, must never exceed one.
"""

from __future__ import annotations

import functools
import json
import multiprocessing
import os
import random
import socket
import subprocess
import sys
import time
import traceback
from pathlib import Path

import pytest

from redline.errors import RedlineError
from redline.streaming.guards import LOCK_FILE, CheckpointLock

RACERS = 4
ROUNDS = 150
STALE_ROUNDS = 25


def _reporting(work, *args) -> None:
    """Run ``work(*args)`` in a racer; whatever it raises reaches the parent (the queue is
    the last argument), so a failing racer fails the test instead of hanging it."""
    try:
        work(*args)
    except BaseException:  # noqa: BLE001 - the parent fails the test with it
        args[-1].put(("error", os.getpid(), traceback.format_exc()))


def _racers(ctx, work, *args) -> list:
    procs = [ctx.Process(target=functools.partial(_reporting, work), args=args)
             for _ in range(RACERS)]
    for p in procs:
        p.start()
    return procs


def _hold_many(checkpoint: str, rounds: int, holders, most, lock, start, results) -> None:
    """Try ``rounds`` times to take the lock; while holding it, count the holders."""
    start.wait()
    rnd = random.Random(os.getpid())
    got = refused = 0
    for _ in range(rounds):
        try:
            held = CheckpointLock(checkpoint, "racer").acquire()
        except RedlineError as exc:
            assert exc.code == "CHECKPOINT_IN_USE", exc
            refused += 1
            time.sleep(rnd.uniform(0, 0.002))
            continue
        with lock:
            holders.value += 1
            most.value = max(most.value, holders.value)
        try:
            owner = json.loads(Path(checkpoint, LOCK_FILE).read_text())
        except FileNotFoundError:
            owner = {"pid": None, "why": "the lock file vanished while it was held"}
        time.sleep(rnd.uniform(0, 0.003))  # widen the window another holder would need
        with lock:
            holders.value -= 1
        held.release()
        got += 1
        if owner["pid"] != os.getpid():
            raise AssertionError(f"pid {os.getpid()} holds the lock, the file says {owner}")
    results.put(("done", os.getpid(), {"got": got, "refused": refused}))


def test_racing_processes_hold_the_lock_one_at_a_time(tmp_path):
    ctx = multiprocessing.get_context("spawn")
    checkpoint = str(tmp_path / "ckpt")
    holders, most = ctx.Value("i", 0, lock=False), ctx.Value("i", 0, lock=False)
    lock, start, results = ctx.Lock(), ctx.Event(), ctx.Queue()
    procs = _racers(ctx, _hold_many, checkpoint, ROUNDS, holders, most, lock, start, results)
    start.set()
    reports = [results.get(timeout=300) for _ in procs]
    for p in procs:
        p.join(60)
    assert [r for r in reports if r[0] != "done"] == []
    assert most.value == 1  # never two holders at once
    took = [r[2]["got"] for r in reports]
    refused = [r[2]["refused"] for r in reports]
    assert sum(took) + sum(refused) == RACERS * ROUNDS
    assert all(n > 0 for n in took), took  # every racer got it at some point
    assert sum(refused) > 0, took  # and they did contend
    assert not (tmp_path / "ckpt" / LOCK_FILE).exists()
    # No temporary lock file is left behind, whatever the interleaving.
    assert sorted(p.name for p in (tmp_path / "ckpt").iterdir()) in (
        [], [LOCK_FILE + ".gate"])


def _take_stale(checkpoint: str, rounds: int, barrier, results) -> None:
    """Per round: all racers try at once; the winner holds until every racer tried."""
    for n in range(rounds):
        barrier.wait()  # the parent has planted a stale lock
        try:
            held = CheckpointLock(checkpoint, "racer").acquire()
            outcome = ("won", None)
        except RedlineError as exc:
            held, outcome = None, ("refused", f"{exc.code}: {exc.message}")
        barrier.wait()  # everyone has tried
        results.put((n, os.getpid(), *outcome))
        if held is not None:
            held.release()
        barrier.wait()  # released before the next round


def _dead_pid() -> int:
    done = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)
    return int(done.stdout)


def test_stale_lock_is_taken_over_by_exactly_one_racer(tmp_path):
    ctx = multiprocessing.get_context("spawn")
    folder = tmp_path / "ckpt"
    folder.mkdir()
    barrier, results = ctx.Barrier(RACERS + 1, timeout=120), ctx.Queue()
    procs = _racers(ctx, _take_stale, str(folder), STALE_ROUNDS, barrier, results)
    racers = {p.pid for p in procs}
    host = socket.gethostname()
    for n in range(STALE_ROUNDS):
        # A lock left by a process killed with -9: its pid is no longer alive.
        (folder / LOCK_FILE).write_text(json.dumps(
            {"pid": _dead_pid(), "host": host, "query": "killed with -9"}))
        barrier.wait()
        barrier.wait()
        outcomes = [results.get(timeout=120) for _ in procs]
        barrier.wait()
        assert [o for o in outcomes if o[0] == "error"] == []
        assert {o[0] for o in outcomes} == {n}
        winners = [o[1] for o in outcomes if o[2] == "won"]
        assert len(winners) == 1, outcomes  # exactly one racer took the stale lock over
        assert winners[0] in racers
        for _, pid, outcome, message in outcomes:
            if pid != winners[0]:
                assert outcome == "refused"
                # Refused by the winner's live lock, not by the dead one.
                assert message.startswith("CHECKPOINT_IN_USE"), message
                assert f"pid {winners[0]} on {host}" in message, message
        assert not (folder / LOCK_FILE).exists()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0


def test_a_live_owner_on_this_host_is_never_taken_over(tmp_path):
    folder = tmp_path / "ckpt"
    folder.mkdir()
    owner = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        (folder / LOCK_FILE).write_text(json.dumps(
            {"pid": owner.pid, "host": socket.gethostname(), "query": "bronze_t"}))
        with pytest.raises(RedlineError, match=rf"CHECKPOINT_IN_USE.*pid {owner.pid} "):
            CheckpointLock(str(folder), "bronze_t").acquire()
        assert json.loads((folder / LOCK_FILE).read_text())["pid"] == owner.pid
    finally:
        owner.kill()
        owner.wait(30)
    with CheckpointLock(str(folder), "bronze_t") as held:  # dead now: stale, taken over
        assert held.held
        assert json.loads((folder / LOCK_FILE).read_text())["pid"] == os.getpid()
    assert not (folder / LOCK_FILE).exists()
