"""Lifecycle of a local service: pid file, log file, wait for health, clean stop.

A service is a long-running process that redline starts itself on 127.0.0.1. Its state
lives in ``<home>/services/<name>/`` (pid, log, data). ``start`` refuses a port that is
already taken, waits for health, and on failure raises with the tail of the log.

The pid file records the process's start time (``/proc/<pid>/stat`` field 22) and command
line next to its pid: ``stop`` signals a process only while all three still match, so a
pid reused after a reboot or a crash is never killed. A service gets a small environment
(``service_environment``), not its caller's: a password in the caller's environment does
not reach a server's process table entry or its crash dumps.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from redline.errors import RedlineError


def port_open(host: str, port: int, timeout: float = 0.5) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        return sock.connect_ex((host, port)) == 0


def http_ok(host: str, port: int, path: str = "/health", timeout: float = 5.0) -> bool:
    """True when ``http://host:port/path`` answers 200 (a closed port answers False fast)."""
    if not port_open(host, port):
        return False
    import requests

    try:
        return requests.get(f"http://{host}:{port}{path}", timeout=timeout).status_code == 200
    except requests.RequestException:
        return False


def log_tail(path: Path, lines: int = 25) -> str:
    if not path.exists():
        return "(no log)"
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie child still answers kill(0); read its state to tell.
    stat = Path(f"/proc/{pid}/stat")
    if stat.exists():
        return stat.read_text().split(") ", 1)[-1][:1] != "Z"
    return True


def signal_and_wait(pid: int, send: Callable[[int, int], None], sig: int,
                    timeout: float) -> bool:
    """``send(pid, sig)`` (``os.kill``: the process; ``os.killpg``: its group), then wait
    up to ``timeout`` seconds for ``pid`` to end; whether it ended."""
    try:
        send(pid, sig)
    except ProcessLookupError:
        pass
    deadline = time.monotonic() + timeout
    while pid_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.3)
    return not pid_alive(pid)


#: Variables a service inherits from its caller; everything else is left behind.
_INHERITED = ("PATH", "HOME", "USER", "LOGNAME", "LANG", "LC_ALL", "LC_CTYPE", "TZ", "TMPDIR",
              "JAVA_HOME", "SPARK_LOCAL_IP", "SSL_CERT_FILE", "REQUESTS_CA_BUNDLE")


def service_environment(extra: dict[str, str] | None = None) -> dict[str, str]:
    """A service's environment: the few variables of ``_INHERITED`` plus ``extra``."""
    env = {k: os.environ[k] for k in _INHERITED if k in os.environ}
    env.update(extra or {})
    return env


def process_identity(pid: int) -> dict | None:
    """``{"pid", "start", "boot", "cmd"}`` of a live process, or None when it is gone.

    A process in the middle of ``exec`` shows an empty command line for a moment: it is
    read again for up to a second.
    """
    for _ in range(50):
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes()
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            return None
        fields = stat.rsplit(") ", 1)[-1].split()
        if fields[0] == "Z":
            return None
        if cmd:
            break
        time.sleep(0.02)
    return {"pid": pid, "start": int(fields[19]), "boot": _boot_id(),
            "cmd": cmd.replace(b"\0", b" ").decode(errors="replace").strip()}


def _boot_id() -> str:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return ""


def session_processes(session: int):
    """``/proc/<pid>/stat`` fields (after the command name) of each live process in the
    session or process group ``session``, the service's whole tree when it was started
    with ``start_new_session=True``."""
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            fields = (proc / "stat").read_text().rsplit(") ", 1)[-1].split()
        except (FileNotFoundError, ProcessLookupError):
            continue
        if session in (int(fields[2]), int(fields[3])):  # process group, session id
            yield fields


def resident_bytes(pid: int) -> int:
    """Resident memory of ``pid``'s session: a service and every process it started."""
    return sum(int(f[21]) for f in session_processes(pid)) * os.sysconf("SC_PAGE_SIZE")


@dataclass
class Health:
    name: str
    healthy: bool
    pid: int | None
    address: str
    version: str
    detail: str = ""
    rss_bytes: int | None = None
    #: Per stage, what a service made of stages last did (the pipeline's ingest, gold, ...).
    stages: dict | None = None

    def as_dict(self) -> dict:
        out = {"name": self.name, "healthy": self.healthy, "pid": self.pid,
               "address": self.address, "version": self.version, "detail": self.detail,
               "rss_bytes": self.rss_bytes}
        if self.stages is not None:
            out["stages"] = self.stages
        return out


class Service:
    """Base class: subclasses say how to prepare, what to run and how to check health."""

    name: str = "service"
    start_timeout: float = 120.0

    def __init__(self, home: Path, host: str, port: int):
        self.home = home
        self.host = host
        self.port = port
        self.dir = home / "services" / self.name
        self.pid_file = self.dir / f"{self.name}.pid"
        self.log_file = self.dir / f"{self.name}.log"

    # -- to override -------------------------------------------------------------
    def prepare(self) -> None:
        """One-time setup before the first start (formatting storage, secrets...)."""

    def command(self) -> Sequence[str]:
        raise NotImplementedError

    def environment(self) -> dict[str, str]:
        return service_environment()

    def check(self) -> bool:
        """True when the service answers; the default is 'its port accepts connections'."""
        return port_open(self.host, self.port)

    def version(self) -> str:
        return "unknown"

    def ports(self) -> Sequence[int]:
        return (self.port,)

    # -- lifecycle ----------------------------------------------------------------
    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    def pid(self) -> int | None:
        """The service's pid while the process the pid file recorded is still running.

        A pid file that does not parse, or names a pid that now belongs to another process
        (a different start time or command), counts as no process at all.
        """
        try:
            recorded = json.loads(self.pid_file.read_text())
        except (FileNotFoundError, ValueError):
            return None
        if not isinstance(recorded, dict) or not isinstance(recorded.get("pid"), int):
            return None
        now = process_identity(recorded["pid"])
        if now is None or any(now[k] != recorded.get(k) for k in ("start", "boot")):
            return None
        # A launcher script (spark-submit) execs java: the command is recorded again once
        # the service is healthy, and from then on it must match too.
        if recorded.get("final") and now["cmd"] != recorded.get("cmd"):
            return None
        return recorded["pid"]

    def _write_pid_file(self, pid: int, final: bool = False) -> None:
        identity = process_identity(pid) or {"pid": pid, "start": None, "cmd": None}
        identity["final"] = final
        tmp = self.pid_file.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            json.dump(identity, fh)
        os.replace(tmp, self.pid_file)

    def running(self) -> bool:
        return self.pid() is not None

    def start(self, progress: Callable[[str], None] = print) -> None:
        if self.running():
            if self.check():
                progress(f"{self.name}: already running (pid {self.pid()}) on {self.address}")
                return
            self.wait_healthy(progress)
            return
        for port in self.ports():
            if port_open(self.host, port):
                raise RedlineError(
                    "PORT_IN_USE",
                    f"{self.name}: port {self.host}:{port} is taken by another process; stop it "
                    f"or choose another port (see `redline config`)")
        # What the service's folder gets (parents, rendered settings, formatted storage)
        # is private, whatever the caller's umask: the process keeps umask 077 from here
        # on (redline's CLI sets it first thing; services start in parallel threads, so
        # a restored umask would race).
        os.umask(0o077)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.prepare()
        cmd = list(self.command())
        with self.log_file.open("ab") as log:
            log.write(f"\n=== {time.strftime('%Y-%m-%d %H:%M:%S')} starting: "
                      f"{' '.join(cmd[:3])} ...\n".encode())
            log.flush()
            proc = subprocess.Popen(
                cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                env=self.environment(), cwd=self.dir, start_new_session=True,
                umask=0o077)
        self._write_pid_file(proc.pid)
        progress(f"{self.name}: started pid {proc.pid}, waiting for {self.address} "
                 f"(log: {self.log_file})")
        self.wait_healthy(progress, proc)

    def wait_healthy(self, progress: Callable[[str], None] = print,
                     proc: subprocess.Popen | None = None) -> None:
        began = time.monotonic()
        while time.monotonic() - began < self.start_timeout:
            if proc is not None and proc.poll() is not None:
                self.pid_file.unlink(missing_ok=True)
                raise RedlineError(
                    "SERVICE_FAILED",
                    f"{self.name} exited with code {proc.returncode} while starting; "
                    f"last lines of {self.log_file}:\n{log_tail(self.log_file)}")
            if self.check():
                if proc is not None:
                    self._write_pid_file(proc.pid, final=True)
                progress(f"{self.name}: healthy on {self.address} "
                         f"after {time.monotonic() - began:.0f}s")
                return
            time.sleep(1.0)
        raise RedlineError(
            "SERVICE_TIMEOUT",
            f"{self.name} did not become healthy within {self.start_timeout:.0f}s; "
            f"last lines of {self.log_file}:\n{log_tail(self.log_file)}")

    def stop(self, progress: Callable[[str], None] = print, timeout: float = 30.0) -> None:
        pid = self.pid()
        if pid is None:
            if self.pid_file.exists():
                progress(f"{self.name}: its pid file {self.pid_file} names no process that "
                         f"redline started (gone, or the pid now belongs to another process): "
                         f"nothing signalled, pid file removed")
            self.pid_file.unlink(missing_ok=True)
            return
        if not signal_and_wait(pid, os.killpg, signal.SIGTERM, timeout):
            progress(f"{self.name}: did not stop within {timeout:.0f}s, killing")
            try:
                os.killpg(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.pid_file.unlink(missing_ok=True)
        progress(f"{self.name}: stopped")

    def health(self) -> Health:
        pid = self.pid()
        healthy = pid is not None and self.check()
        return Health(self.name, healthy, pid, self.address,
                      self.version() if healthy else "", "" if healthy else
                      ("not running" if pid is None else "running but not answering"),
                      resident_bytes(pid) if pid is not None else None)
