"""Check the import contracts of pyproject.toml ([tool.importlinter]) with import-linter.

redline installs as one distribution whose subpackages live in top-level folders
(``[tool.setuptools.package-dir]``: ``redline.jobs -> jobs/``), which import-linter cannot
follow: it walks the root package's folder. This script lays the package out as it is
installed, in a temporary folder (copies of the .py files, named by that mapping), and runs
import-linter there. Exit status: import-linter's (0 when every contract is kept).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _layout(target: Path) -> None:
    setup = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    # Longest package names last: a subpackage's folder is copied over its parent's copy.
    for package, folder in sorted(setup["package-dir"].items(), key=lambda kv: kv[0].count(".")):
        dest = target.joinpath(*package.split("."))
        shutil.copytree(ROOT / folder, dest, dirs_exist_ok=True,
                        ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "bundle"))


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="redline-layers-") as tmp:
        _layout(Path(tmp))
        env = {**os.environ, "PYTHONPATH": tmp}
        lint = Path(sys.executable).parent / "lint-imports"
        return subprocess.call([str(lint), str(ROOT / "pyproject.toml"),
                                "--no-cache"], cwd=tmp, env=env)


if __name__ == "__main__":
    sys.exit(main())
