"""Record every command line on the machine while services start (a secret must not be one)."""

from __future__ import annotations

import json
import threading
from pathlib import Path

#: Command lines seen while redline's services started, in this test session.
SEEN: set[str] = set()


def seen(record: Path | None = None) -> set[str]:
    """``SEEN``, with the lines another test process of the run kept in ``record``."""
    out = set(SEEN)
    if record is not None and record.exists():
        out |= {json.loads(line) for line in record.read_text().splitlines() if line}
    return out


class CommandLineWatch:
    """While active, samples ``/proc/*/cmdline`` every 50 ms into ``SEEN``; with ``record``,
    appends what it saw to that file (JSON lines) when it ends."""

    def __init__(self, every: float = 0.05, record: Path | None = None):
        self.every = every
        self.record = record
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            for proc in Path("/proc").iterdir():
                if proc.name.isdigit():
                    try:
                        raw = (proc / "cmdline").read_bytes()
                    except OSError:
                        continue
                    if raw:
                        SEEN.add(raw.replace(b"\0", b" ").decode(errors="replace"))
            self._stop.wait(self.every)

    def __enter__(self) -> CommandLineWatch:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        if self.record is not None:
            with self.record.open("a") as fh:
                fh.writelines(json.dumps(line) + "\n" for line in sorted(SEEN))
