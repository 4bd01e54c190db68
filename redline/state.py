"""The state folder (lake, checkpoints, service data, logs, secrets) is private to its user.

redline runs with umask 077, so what it and its services create is 0600/0700; Spark's
local file system applies its own umask (``fs.permissions.umask-mode`` in
spark-conf/local.conf). ``tighten`` fixes a folder created before this rule existed.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

PRIVATE_UMASK = 0o077


def make_private(home: Path) -> Path:
    """Create ``home`` (0700) if needed, and make sure it is 0700."""
    home.mkdir(parents=True, exist_ok=True, mode=0o700)
    if stat.S_IMODE(home.stat().st_mode) != 0o700:
        os.chmod(home, 0o700)
    return home


def _modes(home: Path):
    """``(path, mode)`` of everything under ``home`` but symbolic links."""
    for root, dirs, files in os.walk(home):
        for name in [*dirs, *files]:
            path = os.path.join(root, name)
            try:
                mode = os.lstat(path).st_mode
            except FileNotFoundError:
                continue  # removed while we looked
            if not stat.S_ISLNK(mode):
                yield path, mode


def tighten(home: Path) -> int:
    """Remove group and other permissions under ``home``; return how many paths changed."""
    changed = 0
    for path, mode in _modes(home):
        if mode & 0o077:
            os.chmod(path, stat.S_IMODE(mode) & 0o700)
            changed += 1
    return changed


def exposed(home: Path) -> list[str]:
    """Paths under ``home`` (and ``home`` itself) that others can read, write or enter.

    Jars are left out: Spark copies the public Maven artifacts into its scratch folder
    with their modes, and they hold nothing of the user's.
    """
    out = [str(home)] if home.stat().st_mode & 0o077 else []
    return out + [path for path, mode in _modes(home)
                  if mode & 0o077 and not path.endswith(".jar")]
