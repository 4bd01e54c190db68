"""Record every command line on the machine while services start (a secret must not be one)."""

from __future__ import annotations

import threading
from pathlib import Path

#: Command lines seen while redline's services started, in this test session.
SEEN: set[str] = set()


class CommandLineWatch:
    """While active, samples ``/proc/*/cmdline`` every 50 ms into ``SEEN``."""

    def __init__(self, every: float = 0.05):
        self.every = every
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
