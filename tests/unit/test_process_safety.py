"""Secrets written whole and checked on read; pid files that never name a stranger."""

from __future__ import annotations

import json
import multiprocessing
import os
import subprocess
import sys
import time

import pytest

from redline import secrets, state
from redline.errors import RedlineError
from redline.services.base import Service, process_identity


# -- secrets ---------------------------------------------------------------------------------
def test_secret_is_generated_once_private_and_reused(tmp_path):
    first = secrets.get_or_create(tmp_path, "s")
    assert len(first) >= 32
    path = secrets.path_of(tmp_path, "s")
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    assert oct(path.parent.stat().st_mode & 0o777) == "0o700"
    assert secrets.get_or_create(tmp_path, "s") == first
    assert [p.name for p in path.parent.iterdir()] == ["s"]  # no temporary file left


def test_empty_secret_left_by_a_crash_is_an_error_not_a_password(tmp_path):
    path = secrets.path_of(tmp_path, "s")
    fd = os.open(path, os.O_CREAT | os.O_WRONLY, 0o600)
    os.close(fd)
    with pytest.raises(RedlineError) as err:
        secrets.get_or_create(tmp_path, "s")
    assert err.value.code == "SECRET_EMPTY"


def test_secret_readable_by_others_is_refused(tmp_path):
    path = secrets.path_of(tmp_path, "s")
    path.write_text("leaked\n")
    os.chmod(path, 0o644)
    with pytest.raises(RedlineError) as err:
        secrets.get_or_create(tmp_path, "s")
    assert err.value.code == "SECRET_UNSAFE"


def _create(home: str, queue) -> None:
    from pathlib import Path

    queue.put(secrets.get_or_create(Path(home), "raced"))


def test_processes_racing_to_create_a_secret_agree_on_one_value(tmp_path):
    ctx = multiprocessing.get_context("fork")
    queue = ctx.Queue()
    procs = [ctx.Process(target=_create, args=(str(tmp_path), queue)) for _ in range(8)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(30)
    values = {queue.get(timeout=5) for _ in procs}
    assert len(values) == 1
    assert secrets.read(tmp_path, "raced") == values.pop()


# -- pid files ---------------------------------------------------------------------------------
class _Sleeper(Service):
    name = "sleeper"
    start_timeout = 10

    def command(self):
        return [sys.executable, "-c", "import time; time.sleep(600)"]

    def check(self):
        return True


@pytest.fixture
def stranger():
    """A process redline did not start (what a reused pid would belong to)."""
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    yield proc
    proc.kill()
    proc.wait()


def test_pid_file_records_start_time_and_command(tmp_path):
    svc = _Sleeper(tmp_path, "127.0.0.1", 1)
    svc.start(progress=lambda _: None)
    try:
        recorded = json.loads(svc.pid_file.read_text())
        now = process_identity(recorded["pid"])
        assert recorded["start"] == now["start"] and recorded["cmd"] == now["cmd"]
        assert "time.sleep(600)" in recorded["cmd"]
        assert svc.pid() == recorded["pid"]
    finally:
        svc.stop(progress=lambda _: None)
    assert not svc.pid_file.exists()


def test_down_leaves_a_process_that_reused_the_pid_alone(tmp_path, stranger):
    svc = _Sleeper(tmp_path, "127.0.0.1", 1)
    svc.dir.mkdir(parents=True)
    identity = process_identity(stranger.pid)
    # The pid file of a service that died; its pid now belongs to the stranger, which
    # started at another time.
    svc.pid_file.write_text(json.dumps({**identity, "start": identity["start"] - 100,
                                        "final": True}))
    assert svc.pid() is None
    svc.stop(progress=lambda _: None)
    time.sleep(0.2)
    assert stranger.poll() is None  # still running: not signalled


def test_down_leaves_a_process_with_another_command_alone(tmp_path, stranger):
    svc = _Sleeper(tmp_path, "127.0.0.1", 1)
    svc.dir.mkdir(parents=True)
    identity = process_identity(stranger.pid)
    svc.pid_file.write_text(json.dumps({**identity, "cmd": "java kafka.Kafka", "final": True}))
    svc.stop(progress=lambda _: None)
    time.sleep(0.2)
    assert stranger.poll() is None


def test_a_bare_pid_file_names_no_process(tmp_path, stranger):
    svc = _Sleeper(tmp_path, "127.0.0.1", 1)
    svc.dir.mkdir(parents=True)
    svc.pid_file.write_text(str(stranger.pid))  # the old format: just a number
    svc.stop(progress=lambda _: None)
    time.sleep(0.2)
    assert stranger.poll() is None


# -- the state folder ----------------------------------------------------------------------------
def test_tighten_makes_an_old_state_folder_private(tmp_path):
    home = tmp_path / "home"
    (home / "lake" / "t").mkdir(parents=True)
    (home / "lake" / "t" / "part.parquet").write_bytes(b"x")
    os.chmod(home / "lake" / "t" / "part.parquet", 0o644)
    os.chmod(home / "lake", 0o755)
    os.chmod(home / "lake" / "t", 0o700)
    state.make_private(home)
    assert sorted(state.exposed(home)) == [str(home / "lake"),
                                           str(home / "lake" / "t" / "part.parquet")]
    assert state.tighten(home) == 2
    assert state.exposed(home) == []
    assert oct((home / "lake" / "t" / "part.parquet").stat().st_mode & 0o777) == "0o600"
