"""Import a dashboards bundle into Superset, with the lake database's password.

Run by ``dashboards/deploy.py`` with the Superset virtualenv's Python (it imports Superset,
so the core never imports it)::

    python import_bundle.py DIRECTORY   < Thrift Server password on stdin

It does what ``superset import-directory --overwrite DIRECTORY`` does, and also hands the
password to every database of the bundle: the bundle's URI holds Superset's password mask,
and ``import-directory`` has no way to fill it in. The password arrives on stdin, never on
the command line, and never through the REST API (Superset's event log keeps request
bodies); Superset stores it encrypted with its secret key, as it does for any database.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def main(directory: Path, password: str) -> dict:
    import yaml
    from superset.app import create_app

    app = create_app()
    with app.app_context():
        from superset.commands.exceptions import CommandInvalidError
        from superset.commands.importers.v1.examples import ImportExamplesCommand

        contents = {str(p.relative_to(directory)): p.read_text()
                    for p in directory.rglob("*.yaml")}
        # As import-directory: without "type", the metadata admits every kind of file.
        metadata = yaml.safe_load(contents.get("metadata.yaml", "{}")) or {}
        metadata.pop("type", None)
        contents["metadata.yaml"] = yaml.safe_dump(metadata)
        passwords = {name: password for name in contents if name.startswith("databases/")}
        try:
            ImportExamplesCommand(contents, overwrite=True, force_data=False,
                                  passwords=passwords).run()
        except CommandInvalidError as exc:
            raise SystemExit(f"the bundle is not valid: {exc.normalized_messages()}") from exc
        return {"files": len(contents), "databases": sorted(passwords)}


if __name__ == "__main__":
    if len(sys.argv) != 2:
        raise SystemExit("usage: import_bundle.py DIRECTORY < password")
    print(json.dumps(main(Path(sys.argv[1]), sys.stdin.readline().strip())))
