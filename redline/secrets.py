"""Generated secrets, stored 0600 in the state folder; never printed, never committed."""

from __future__ import annotations

import os
import secrets as _secrets
from pathlib import Path


def secrets_dir(home: Path) -> Path:
    path = home / "secrets"
    path.mkdir(parents=True, exist_ok=True)
    os.chmod(path, 0o700)
    return path


def get_or_create(home: Path, name: str, nbytes: int = 32) -> str:
    """Return the secret ``name``, generating it (mode 0600) on first use."""
    path = secrets_dir(home) / name
    if path.exists():
        return path.read_text().strip()
    value = _secrets.token_urlsafe(nbytes)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(value + "\n")
    return value


def path_of(home: Path, name: str) -> Path:
    return secrets_dir(home) / name
