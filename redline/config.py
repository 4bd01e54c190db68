"""Typed configuration: one file with profiles plus environment-variable overrides.

Every setting is declared exactly once, as a dataclass field with a type, a default and
a ``doc``. The profile file (``redline.toml`` at the project root, or ``REDLINE_CONFIG``)
holds one table per profile (``[local]``, ``[cluster]``); each section's keys must be
fields of the matching dataclass, and unknown keys are rejected at load time. Any field
can be overridden by ``REDLINE_<SECTION>_<FIELD>`` (e.g. ``REDLINE_KAFKA_PORT=19092``);
a value that does not parse fails with the variable's name.
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from redline.errors import RedlineError

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def _doc(text: str, default: Any) -> Any:
    return field(default=default, metadata={"doc": text})


@dataclass(frozen=True)
class KafkaConfig:
    bootstrap_servers: str = _doc(
        "Bootstrap servers. Empty means the local broker that `redline up` manages.", "")
    host: str = _doc("Address the managed local broker binds to.", "127.0.0.1")
    port: int = _doc("Client port of the managed local broker.", 9092)
    controller_port: int = _doc("KRaft controller port of the managed local broker.", 9093)
    topic_prefix: str = _doc("Prefix of every topic name redline reads or writes.", "redline.")
    partitions: int = _doc("Partitions of topics that redline creates.", 2)
    security_protocol: str = _doc("PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL.", "PLAINTEXT")
    sasl_mechanism: str = _doc("SASL mechanism (PLAIN, SCRAM-SHA-512) when SASL is used.", "")
    sasl_username: str = _doc("SASL user name when SASL is used.", "")
    sasl_password_env: str = _doc(
        "Name of the environment variable holding the SASL password (never the password).", "")
    heap_mb: int = _doc("Heap of the managed local broker, MiB.", 512)

    @property
    def managed(self) -> bool:
        """True when redline starts the broker itself (no external cluster configured)."""
        return not self.bootstrap_servers

    @property
    def servers(self) -> str:
        return self.bootstrap_servers or f"{self.host}:{self.port}"


@dataclass(frozen=True)
class SparkConfig:
    conf_file: str = _doc("File in spark-conf/ with this profile's Spark settings.", "local.conf")
    driver_memory: str = _doc(
        "Driver memory of redline's own Spark driver. A silver micro-batch catching up on a "
        "backlog (up to 256 MB of bronze, about 2M records) is cached parsed: in 2g it "
        "spilled to disk and took 40.6 s instead of 35.0 s.", "4g")


@dataclass(frozen=True)
class LakeConfig:
    root: str = _doc("Lake root: a local folder, or s3a://, abfss://, gs:// URI. "
                     "Empty means <home>/lake.", "")


@dataclass(frozen=True)
class IngestConfig:
    max_record_bytes: int = _doc(
        "Records with a larger value are quarantined unparsed (RECORD_TOO_LARGE).", 1_048_576)
    silver_trigger_seconds: float = _doc(
        "Micro-batch interval of the continuous silver streams, seconds.", 1.0)
    bronze_trigger_seconds: float = _doc(
        "Micro-batch interval of the continuous bronze streams, seconds.", 1.0)
    max_offsets_per_trigger: int = _doc(
        "Most Kafka records one bronze micro-batch reads per topic (each Delta commit has "
        "a fixed cost: larger batches catch up faster).", 2_000_000)
    dedupe_window_minutes: float = _doc(
        "A record whose event_id is in silver already is a duplicate when the silver row "
        "reached Kafka at most this many minutes before or after it (and their event times "
        "are within 24 hours). Each silver micro-batch reads this much of silver's recent "
        "arrivals, so its cost grows with the window and the event rate.", 15.0)


@dataclass(frozen=True)
class QualityConfig:
    freshness_hours: str = _doc(
        "Freshness limits of the quality gate, `table=hours` pairs separated by commas (e.g. "
        "`silver.vehicle_telemetry=24,bronze.vehicle_telemetry=24`): a table whose newest row "
        "arrived longer ago fails the gate. Empty: no freshness check.", "")
    audit_gold: bool = _doc(
        "Write-audit-publish: validate every gold job's outputs after it writes them and "
        "restore the previous version when an error-severity check fails.", True)


@dataclass(frozen=True)
class ThriftConfig:
    host: str = _doc("Address the Spark Thrift Server binds to.", "127.0.0.1")
    port: int = _doc("HiveServer2 port of the Spark Thrift Server.", 10000)
    driver_memory: str = _doc("Driver memory of the Thrift Server.", "1g")


@dataclass(frozen=True)
class MlflowConfig:
    tracking_uri: str = _doc("Tracking server URI. Empty means the managed local server.", "")
    host: str = _doc("Address the managed tracking server binds to.", "127.0.0.1")
    port: int = _doc("Port of the managed tracking server.", 5000)
    experiment: str = _doc("Prefix of the experiment of each model task (<prefix>-vehicle, "
                           "-cmapss, -ai4i) and of the registered model names.", "redline")

    @property
    def uri(self) -> str:
        return self.tracking_uri or f"http://{self.host}:{self.port}"


@dataclass(frozen=True)
class SupersetConfig:
    host: str = _doc("Address Superset binds to.", "127.0.0.1")
    port: int = _doc("Port of the Superset web server.", 8088)
    admin_user: str = _doc("Superset admin user name (its password is generated).", "admin")
    workers: int = _doc("gunicorn workers.", 2)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"


@dataclass(frozen=True)
class ReplayConfig:
    datasets: str = _doc("Folder of the public data sets that `redline replay` publishes "
                         "(one sub-folder per set, files plain or .gz). Empty means "
                         "<project root>/datasets, the gzip-compressed copies that ship in "
                         "the repository.", "")

    @property
    def datasets_dir(self) -> Path:
        if self.datasets:
            return Path(self.datasets)
        return PROJECT_ROOT / "datasets"


@dataclass(frozen=True)
class Config:
    """The whole configuration of one profile, with overrides applied."""

    profile: str
    home: Path
    kafka: KafkaConfig
    spark: SparkConfig
    lake: LakeConfig
    thrift: ThriftConfig
    mlflow: MlflowConfig
    superset: SupersetConfig
    replay: ReplayConfig = field(default_factory=ReplayConfig)
    ingest: IngestConfig = field(default_factory=IngestConfig)
    quality: QualityConfig = field(default_factory=QualityConfig)

    @property
    def lake_root(self) -> str:
        return self.lake.root or str(self.home / "lake")

    @property
    def cache(self) -> Path:
        return Path(os.environ.get("REDLINE_CACHE", PROJECT_ROOT / ".cache"))


_SECTIONS: Mapping[str, type] = {
    "kafka": KafkaConfig,
    "spark": SparkConfig,
    "lake": LakeConfig,
    "thrift": ThriftConfig,
    "mlflow": MlflowConfig,
    "superset": SupersetConfig,
    "replay": ReplayConfig,
    "ingest": IngestConfig,
    "quality": QualityConfig,
}

ENV_HOME = "REDLINE_HOME"
ENV_PROFILE = "REDLINE_PROFILE"
ENV_CONFIG = "REDLINE_CONFIG"


def _parse(value: str, typ: Any, key: str) -> Any:
    if typ in (int, "int"):
        try:
            return int(value)
        except ValueError:
            raise RedlineError("CONFIG_INVALID", f"{key}={value!r} is not an integer") from None
    if typ in (float, "float"):
        try:
            return float(value)
        except ValueError:
            raise RedlineError("CONFIG_INVALID", f"{key}={value!r} is not a number") from None
    if typ in (bool, "bool"):
        if value.lower() in ("1", "true", "yes"):
            return True
        if value.lower() in ("0", "false", "no"):
            return False
        raise RedlineError("CONFIG_INVALID", f"{key}={value!r} is not a boolean (true/false)")
    return value


def _check_type(value: Any, typ: Any, key: str) -> Any:
    expected = {"int": int, "str": str, "bool": bool, "float": float}.get(typ, typ)
    if expected is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if not isinstance(value, expected) or (expected is int and isinstance(value, bool)):
        raise RedlineError(
            "CONFIG_INVALID", f"{key} must be {getattr(expected, '__name__', expected)}, "
            f"got {value!r}")
    return value


def _section(cls: type, values: Mapping[str, Any], where: str, env: Mapping[str, str]) -> Any:
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = set(values) - set(fields)
    if unknown:
        raise RedlineError(
            "CONFIG_UNKNOWN_KEY",
            f"unknown key(s) {sorted(unknown)} in {where}; known: {sorted(fields)}")
    kwargs = {k: _check_type(v, fields[k].type, f"{where}.{k}") for k, v in values.items()}
    section = where.rsplit(".", 1)[-1].upper()
    for name, f in fields.items():
        var = f"REDLINE_{section}_{name.upper()}"
        if var in env:
            kwargs[name] = _parse(env[var], f.type, var)
    return cls(**kwargs)


def config_path(env: Mapping[str, str] | None = None) -> Path:
    env = os.environ if env is None else env
    return Path(env.get(ENV_CONFIG, PROJECT_ROOT / "redline.toml"))


def load(profile: str | None = None, env: Mapping[str, str] | None = None) -> Config:
    """Load ``profile`` (default ``REDLINE_PROFILE`` or ``local``) with env overrides."""
    env = os.environ if env is None else env
    profile = profile or env.get(ENV_PROFILE, "local")
    path = config_path(env)
    if not path.exists():
        raise RedlineError("CONFIG_MISSING", f"configuration file {path} does not exist")
    with path.open("rb") as fh:
        doc = tomllib.load(fh)
    if profile not in doc:
        raise RedlineError(
            "CONFIG_PROFILE", f"profile {profile!r} is not in {path}; profiles: {sorted(doc)}")
    body = dict(doc[profile])
    unknown = set(body) - set(_SECTIONS) - {"home"}
    if unknown:
        raise RedlineError(
            "CONFIG_UNKNOWN_KEY",
            f"unknown section(s) {sorted(unknown)} in [{profile}] of {path}; "
            f"known: {sorted(_SECTIONS)} and 'home'")
    home = Path(env.get(ENV_HOME, body.get("home", PROJECT_ROOT / ".redline")))
    if not home.is_absolute():
        home = PROJECT_ROOT / home
    sections = {
        name: _section(cls, body.get(name, {}), f"{profile}.{name}", env)
        for name, cls in _SECTIONS.items()
    }
    return Config(profile=profile, home=home, **sections)


def describe() -> list[tuple[str, str, Any, str]]:
    """(variable, type, default, doc) for every setting, for `redline config --help-env`."""
    rows = [(ENV_HOME, "path", ".redline", "State folder: lake, checkpoints, logs, secrets."),
            (ENV_PROFILE, "str", "local", "Profile of redline.toml to load."),
            (ENV_CONFIG, "path", "redline.toml", "Profile file.")]
    for section, cls in _SECTIONS.items():
        for f in dataclasses.fields(cls):
            rows.append((f"REDLINE_{section.upper()}_{f.name.upper()}", str(f.type),
                         f.default, f.metadata["doc"]))
    return rows
