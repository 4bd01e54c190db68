"""The continuous pipeline as a service: `redline up pipeline` runs `redline pipeline run`
(redline/continuous.py) in its own session, with a pid file and a log like the other
services; `redline down` stops it with SIGTERM (both loops end between batches); `redline
status` shows each stage's last run from its ``status.json``.

It has no port: it is healthy while its process runs and its status file's heartbeat is
recent (the gold loop rewrites it every ``pipeline.gold_interval_seconds``; a gold cycle
can take minutes on a big increment, hence the generous limit). It needs Kafka (and uses
the Thrift Server when it runs), so start it after `redline up`.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from redline.config import Config
from redline.services.base import Health, Service, service_environment, signal_and_wait

STATUS_FILE = "status.json"
#: A heartbeat older than this (seconds, or 3 gold intervals if longer) means not healthy.
HEARTBEAT_LIMIT = 900.0
#: Seconds a stop waits for the pipeline to end its queries and gold cycle by itself.
STOP_GRACE = 120.0


class PipelineService(Service):
    name = "pipeline"
    start_timeout = 300.0

    def __init__(self, cfg: Config):
        super().__init__(cfg.home, "-", 0)
        self.cfg = cfg
        self.status_file = self.dir / STATUS_FILE

    @property
    def address(self) -> str:
        """No port: what `up` waits for and `status` shows is its status file."""
        return STATUS_FILE

    def ports(self) -> Sequence[int]:
        return ()

    def prepare(self) -> None:
        # The previous run's status must not pass for this one's heartbeat.
        self.status_file.unlink(missing_ok=True)

    def command(self) -> Sequence[str]:
        return [str(Path(sys.executable).parent / "redline"), "pipeline", "run",
                "--status-file", str(self.status_file)]

    def environment(self) -> dict[str, str]:
        # The configuration travels as it came (REDLINE_* overrides: home, lake, ports),
        # and so does the variable naming the webhook URL when one is configured.
        passed = {k: v for k, v in os.environ.items() if k.startswith("REDLINE_")}
        named = self.cfg.alerts.webhook_url_env
        if named and named in os.environ:
            passed[named] = os.environ[named]
        return service_environment(passed)

    def stop(self, progress=print, timeout: float = 30.0) -> None:
        """SIGTERM to the Python process alone first: it stops its queries between batches
        and ends its Spark driver (a signal to the whole group would stop the driver's JVM
        under the queries). What is left after ``STOP_GRACE`` seconds gets the group's
        SIGTERM, then SIGKILL (``Service.stop``)."""
        pid = self.pid()
        if pid is not None and signal_and_wait(pid, os.kill, signal.SIGTERM, STOP_GRACE):
            self.pid_file.unlink(missing_ok=True)
            progress(f"{self.name}: stopped")
            return
        super().stop(progress, timeout)

    def status(self) -> dict | None:
        """``status.json`` of the running process (``continuous.Status``; read without
        importing it, which would start loading Spark's Python modules), else None."""
        try:
            found = json.loads(self.status_file.read_text())
        except (FileNotFoundError, ValueError):
            return None
        if not isinstance(found, dict) or found.get("pid") != self.pid():
            return None
        return found

    def check(self) -> bool:
        found = self.status()
        if found is None:
            return False
        limit = max(HEARTBEAT_LIMIT, 3 * float(found.get("gold_interval_seconds", 0)))
        return time.time() - float(found.get("heartbeat", 0)) < limit

    def version(self) -> str:
        return f"gold every {self.cfg.pipeline.gold_interval_seconds:g}s"

    def health(self) -> Health:
        health = super().health()
        found = self.status()
        if found is not None:
            health.stages = {name: stage_summary(found.get(name) or {})
                             for name in ("ingest", "spc", "gold", "alerts")}
        return health


def stage_summary(stage: dict) -> dict:
    """A stage of ``status.json`` for `redline status`: its result, when it last ended
    (seconds ago), how long it took, how many runs, and its detail line."""
    ended = stage.get("ended")
    began = stage.get("began")
    return {"result": stage.get("result"), "runs": stage.get("runs", 0),
            "ago_s": None if ended is None else round(time.time() - ended, 1),
            "seconds": None if ended is None or began is None else round(ended - began, 1),
            "detail": stage.get("detail", "")}
