"""Generated secrets, stored 0600 in the state folder; never printed, never committed.

A secret is written whole or not at all (a temporary file in the same folder, fsync,
then a hard link to its name, which fails if another process got there first), so a
crash never leaves an empty secret that would be reused. Reading checks that the file
is a regular file private to its owner and not empty.
"""

from __future__ import annotations

import os
import secrets as _secrets
import stat
from pathlib import Path

from redline.errors import RedlineError


def secrets_dir(home: Path) -> Path:
    path = home / "secrets"
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(path, 0o700)
    return path


def _read(path: Path) -> str:
    info = path.lstat()
    if not stat.S_ISREG(info.st_mode):
        raise RedlineError("SECRET_UNSAFE", f"secret {path} is not a regular file; remove it "
                                            f"and run the command again to generate a new one")
    if info.st_mode & 0o077:
        raise RedlineError(
            "SECRET_UNSAFE",
            f"secret {path} is readable by others (mode {stat.S_IMODE(info.st_mode):o}); "
            f"treat it as leaked: delete it and run the command again to generate a new "
            f"one (services that use it must be restarted)")
    if info.st_uid != os.getuid():
        raise RedlineError("SECRET_UNSAFE", f"secret {path} belongs to another user")
    value = path.read_text().strip()
    if not value:
        raise RedlineError("SECRET_EMPTY", f"secret {path} is empty; delete it and run the "
                                           f"command again to generate a new one")
    return value


def write(home: Path, name: str, value: str, replace: bool = False) -> Path:
    """Store ``value`` as the secret ``name`` atomically (0600).

    Fails with ``FileExistsError`` if it exists, unless ``replace`` (a file derived from
    other secrets, rewritten whole at every start).
    """
    folder = secrets_dir(home)
    path = folder / name
    tmp = folder / f".{name}.{os.getpid()}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(value + "\n")
            fh.flush()
            os.fsync(fh.fileno())
        if replace:
            os.replace(tmp, path)
        else:  # atomic, and refuses to replace a secret another process wrote
            os.link(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def get_or_create(home: Path, name: str, nbytes: int = 32) -> str:
    """Return the secret ``name``, generating it (mode 0600) on first use."""
    path = secrets_dir(home) / name
    if not path.exists():
        try:
            write(home, name, _secrets.token_urlsafe(nbytes))
        except FileExistsError:
            pass  # another process created it first: use theirs
    return _read(path)


def read(home: Path, name: str) -> str:
    """The existing secret ``name``; a clear error when it was never generated."""
    path = path_of(home, name)
    if not path.exists():
        raise RedlineError("SECRET_MISSING", f"secret {path} does not exist yet; "
                                             f"`redline up` generates it")
    return _read(path)


def path_of(home: Path, name: str) -> Path:
    return secrets_dir(home) / name
