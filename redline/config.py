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
from datetime import date
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
    security_protocol: str = _doc(
        "PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL. The managed broker always asks for a "
        "password: SASL_SSL opens its TLS listener on `ssl_port` (certificates made at start "
        "in the secrets folder) and redline's clients use it; PLAINTEXT or SASL_PLAINTEXT "
        "mean its SASL_PLAINTEXT listener on `port`.", "PLAINTEXT")
    sasl_mechanism: str = _doc("SASL mechanism (PLAIN, SCRAM-SHA-512) when SASL is used.", "")
    sasl_username: str = _doc("SASL user name when SASL is used.", "")
    sasl_password_env: str = _doc(
        "Name of the environment variable holding the SASL password (never the password).", "")
    heap_mb: int = _doc("Heap of the managed local broker, MiB.", 512)
    ssl_port: int = _doc("SASL_SSL client port of the managed local broker, open when "
                         "security_protocol is SASL_SSL.", 9094)
    ssl_ca_file: str = _doc(
        "PEM file of the CA that signed an external cluster's broker certificates (SSL, "
        "SASL_SSL); Spark's executors read it at the same path. Empty: the system's trusted "
        "CAs. The managed broker's own CA is used without it.", "")

    def __post_init__(self):
        protocols = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
        if self.security_protocol not in protocols:
            raise RedlineError("CONFIG_INVALID", f"kafka.security_protocol must be one of "
                                                 f"{', '.join(protocols)}, got "
                                                 f"{self.security_protocol!r}")
        if self.managed and self.security_protocol == "SSL":
            raise RedlineError("CONFIG_INVALID", "kafka.security_protocol SSL: the managed "
                                                 "broker asks every client for a password; "
                                                 "use SASL_SSL (TLS and a password)")

    @property
    def managed(self) -> bool:
        """True when redline starts the broker itself (no external cluster configured)."""
        return not self.bootstrap_servers

    @property
    def managed_tls(self) -> bool:
        """True when the managed broker opens its SASL_SSL listener for redline's clients."""
        return self.managed and self.security_protocol == "SASL_SSL"

    @property
    def servers(self) -> str:
        if self.bootstrap_servers:
            return self.bootstrap_servers
        return f"{self.host}:{self.ssl_port if self.managed_tls else self.port}"


@dataclass(frozen=True)
class SparkConfig:
    conf_file: str = _doc("File in spark-conf/ with this profile's Spark settings.", "local.conf")
    master: str = _doc(
        "Master URL of redline's own Spark driver (spark://host:port, yarn, k8s://...). "
        "Empty: the one spark-submit was given, else local[*]. The standalone cluster that "
        "`redline up spark-cluster` starts is spark://<spark_cluster.host>:"
        "<spark_cluster.master_port>.", "")
    driver_memory: str = _doc(
        "Driver memory of redline's own Spark driver. A silver micro-batch catching up on a "
        "backlog (up to 256 MB of bronze, about 2M records) is cached parsed: in 2g it "
        "spilled to disk and took 40.6 s instead of 35.0 s.", "4g")


@dataclass(frozen=True)
class SparkClusterConfig:
    host: str = _doc("Address the managed Spark standalone master and workers bind to.",
                     "127.0.0.1")
    master_port: int = _doc("Port of the managed standalone master.", 7077)
    master_ui_port: int = _doc("Web UI port of the managed standalone master.", 8180)
    worker_port: int = _doc("Port of the first managed worker; worker n uses this + n - 1.",
                            7078)
    worker_ui_port: int = _doc("Web UI port of the first managed worker (+ n - 1 for "
                               "worker n).", 8181)
    workers: int = _doc("Workers `redline up spark-cluster` starts.", 2)
    worker_cores: int = _doc("Cores each managed worker offers to executors.", 1)
    worker_memory: str = _doc("Memory each managed worker offers to executors.", "2g")

    def __post_init__(self):
        for name in ("workers", "worker_cores"):
            if getattr(self, name) < 1:
                raise RedlineError("CONFIG_INVALID", f"spark_cluster.{name} must be at least "
                                                     f"1, got {getattr(self, name)}")

    @property
    def master_url(self) -> str:
        return f"spark://{self.host}:{self.master_port}"


@dataclass(frozen=True)
class LakeConfig:
    root: str = _doc("Lake root: a local folder, or s3a://, abfss://, gs:// URI. "
                     "Empty means <home>/lake.", "")
    s3_endpoint: str = _doc(
        "S3 endpoint of an s3a:// lake (e.g. http://127.0.0.1:8333 for the managed object "
        "store, or an S3-compatible server's URL). Empty means AWS S3 itself.", "")
    s3_path_style: bool = _doc(
        "Address buckets as <endpoint>/<bucket> instead of <bucket>.<endpoint> (what most "
        "S3-compatible servers, and the managed object store, need).", False)
    s3_region: str = _doc(
        "Region of an s3a:// lake's bucket. Empty: the AWS SDK's region chain on AWS, "
        "us-east-1 with a custom s3_endpoint.", "")

    def __post_init__(self):
        endpoint = self.s3_endpoint
        if endpoint and not endpoint.startswith(("http://", "https://")):
            raise RedlineError("CONFIG_INVALID", f"lake.s3_endpoint={endpoint!r} must be a URL "
                                                 f"(http://host:port or https://host)")


@dataclass(frozen=True)
class ObjectStoreConfig:
    """The S3-compatible object store redline can manage (SeaweedFS, `make objectstore`).

    Every port is its own setting so that each binds 127.0.0.1 on a known number; a lake on
    it has root ``s3a://<bucket>/...`` and ``lake.s3_endpoint`` = ``endpoint``."""

    host: str = _doc("Address every port of the managed object store binds to.", "127.0.0.1")
    s3_port: int = _doc("S3 API port of the managed object store.", 8333)
    master_port: int = _doc("SeaweedFS master (HTTP) port.", 9333)
    master_grpc_port: int = _doc("SeaweedFS master gRPC port.", 19333)
    volume_port: int = _doc("SeaweedFS volume server (HTTP) port.", 8380)
    volume_grpc_port: int = _doc("SeaweedFS volume server gRPC port.", 18380)
    filer_port: int = _doc("SeaweedFS filer (HTTP) port.", 8888)
    filer_grpc_port: int = _doc("SeaweedFS filer gRPC port.", 18888)
    s3_grpc_port: int = _doc("SeaweedFS S3 gateway gRPC port.", 18333)
    bucket: str = _doc("Bucket created at start for the lake (s3a://<bucket>/...).",
                       "redline-lake")
    volume_size_limit_mb: int = _doc(
        "Size at which SeaweedFS starts a new volume file, MiB (small keeps a local "
        "store's disk use close to its data).", 256)

    def __post_init__(self):
        import re

        if not re.fullmatch(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]", self.bucket):
            raise RedlineError("CONFIG_INVALID", f"objectstore.bucket={self.bucket!r} is not an "
                                                 f"S3 bucket name (3-63 lower-case letters, "
                                                 f"digits, '.', '-')")

    @property
    def endpoint(self) -> str:
        """The S3 endpoint of the managed store (the value for ``lake.s3_endpoint``)."""
        return f"http://{self.host}:{self.s3_port}"


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
    late_after_minutes: float = _doc(
        "A record whose event time is more than this many minutes before its micro-batch's "
        "first Kafka arrival is late: silver writes it apart from the on-time records, in "
        "files by event day, so the check for re-sent records reads few files.", 15.0)


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
class PipelineConfig:
    """The continuous pipeline (`redline up pipeline`, redline/continuous.py)."""

    gold_interval_seconds: float = _doc(
        "Seconds between two looks at silver's Delta versions: when a silver table a gold "
        "job reads has a new commit, the gold jobs run (incrementally), the Thrift Server "
        "sees the gold tables that changed and new SPC episodes go to the webhook.", 5.0)

    def __post_init__(self):
        if not self.gold_interval_seconds > 0:
            raise RedlineError("CONFIG_INVALID", f"pipeline.gold_interval_seconds must be "
                                                 f"above 0, not {self.gold_interval_seconds}")


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
    viewer_user: str = _doc("Read-only Superset user for quality engineers: opens the "
                            "dashboards, cannot edit them or use SQL Lab (its password is "
                            "generated).", "quality")
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
class AlertsConfig:
    """Out-of-control alerts (`redline alerts`). The webhook URL carries a token, so it is
    never a setting: it is read from the environment variable ``webhook_url_env`` names,
    else from ``<home>/secrets/alerts_webhook_url`` (mode 0600)."""

    webhook_url_env: str = _doc(
        "Name of the environment variable holding the webhook URL (never the URL). Empty: "
        "the URL is read from <home>/secrets/alerts_webhook_url (mode 0600).", "")
    timeout_seconds: float = _doc(
        "Seconds the webhook has to answer one message before the run stops with an error.",
        10.0)
    dashboard_url: str = _doc(
        "Superset address people open the messages' links at (e.g. "
        "https://superset.example.internal). Empty: superset.url.", "")
    first_run_hours: float = _doc(
        "First run (nothing in ops.spc_alerts yet) without --since: only the episodes that "
        "end within this many hours of the newest episode's end are posted; older ones "
        "are recorded as skipped, never posted.", 24.0)
    link_format: str = _doc(
        "How a message's text carries the dashboard link: `slack` (<url|label>: Slack, "
        "Mattermost), `markdown` ([label](url): Teams, Discord) or `plain` (the bare URL, "
        "about 2,000 characters).", "slack")

    def __post_init__(self):
        if self.link_format not in ("slack", "markdown", "plain"):
            raise RedlineError("CONFIG_INVALID", f"alerts.link_format must be slack, markdown "
                                                 f"or plain, got {self.link_format!r}")
        if self.timeout_seconds <= 0:
            raise RedlineError("CONFIG_INVALID", f"alerts.timeout_seconds must be above 0, "
                                                 f"got {self.timeout_seconds!r}")
        if self.first_run_hours < 0:
            raise RedlineError("CONFIG_INVALID", f"alerts.first_run_hours must be 0 or more, "
                                                 f"got {self.first_run_hours!r}")
        name = self.webhook_url_env
        if name and not (name.isascii() and name.isidentifier()):
            # Not echoed: a URL put here by mistake carries the webhook's token.
            raise RedlineError("CONFIG_INVALID", "alerts.webhook_url_env must be the NAME of an "
                                                 "environment variable (letters, digits, _); "
                                                 "put the URL in that variable")


#: Nelson rules redline evaluates (jobs/spc.py RULES) and the capability period kinds.
NELSON_RULES = tuple(range(1, 9))
CAPABILITY_PERIODS = ("day", "week", "month", "baseline")
#: Subgroup sizes with published X-bar/R constants (jobs/spc.py SUBGROUP_CONSTANTS).
SUBGROUP_SIZES = range(2, 11)
#: Settings an override in ``[<profile>.analysis.characteristic."..."]`` may set.
PER_CHARACTERISTIC = ("spc_baseline_points", "spc_baseline_subgroups", "spc_baseline_dates",
                      "spc_subgroup_size", "spc_rules", "capability_periods",
                      "capability_min_n")

DateRange = tuple[date, date]


def parse_date_range(text: str, key: str) -> DateRange | None:
    """``YYYY-MM-DD..YYYY-MM-DD`` (both days included) -> (start, end); empty -> None."""
    if text.strip() == "":
        return None
    start, sep, end = text.strip().partition("..")
    try:
        if not sep:
            raise ValueError
        first, last = date.fromisoformat(start.strip()), date.fromisoformat(end.strip())
    except ValueError:
        raise RedlineError("CONFIG_INVALID", f"{key}={text!r} is not a date range: write "
                                             f"YYYY-MM-DD..YYYY-MM-DD (both days included), "
                                             f"or leave it empty") from None
    if last < first:
        raise RedlineError("CONFIG_INVALID", f"{key}={text!r} ends before it starts: write "
                                             f"{last}..{first}")
    return first, last


def parse_rules(text: str, key: str) -> tuple[int, ...]:
    """``1,2,5`` -> (1, 2, 5); ``none`` -> ()."""
    if text.strip().lower() == "none":
        return ()
    parts = [p.strip() for p in text.split(",")]
    bad = [p for p in parts if not (p.isdigit() and int(p) in NELSON_RULES)]
    if bad:
        raise RedlineError("CONFIG_INVALID", f"{key}={text!r}: {', '.join(map(repr, bad))} "
                                             f"{'is' if len(bad) == 1 else 'are'} not a Nelson rule; list rule numbers 1 to 8 "
                                             f"separated by commas (e.g. '1,2,5'), or 'none'")
    return tuple(sorted({int(p) for p in parts}))


def parse_periods(text: str, key: str) -> tuple[str, ...]:
    """``day,week`` -> ('day', 'week'), in the order of ``CAPABILITY_PERIODS``."""
    parts = [p.strip().lower() for p in text.split(",")]
    bad = [p for p in parts if p not in CAPABILITY_PERIODS]
    if bad:
        raise RedlineError("CONFIG_INVALID", f"{key}={text!r}: {', '.join(map(repr, bad))} "
                                             f"{'is' if len(bad) == 1 else 'are'} not a capability period; list one or more of "
                                             f"{', '.join(CAPABILITY_PERIODS)} separated by "
                                             f"commas")
    return tuple(p for p in CAPABILITY_PERIODS if p in parts)


def _check_analysis_value(name: str, value: Any, key: str) -> None:
    if name == "spc_baseline_points" and value < 2:
        raise RedlineError("CONFIG_INVALID", f"{key}={value!r}: the I-MR baseline needs at "
                                             f"least 2 points (one moving range); set 2 or more")
    if name == "spc_baseline_subgroups" and value < 1:
        raise RedlineError("CONFIG_INVALID", f"{key}={value!r}: the X-bar/R baseline needs at "
                                             f"least 1 subgroup; set 1 or more")
    if name == "spc_subgroup_size" and value not in SUBGROUP_SIZES:
        raise RedlineError("CONFIG_INVALID", f"{key}={value!r}: subgroup sizes go from 2 to 10 "
                                             f"(the sizes with published A2, D3, D4 constants)")
    if name in ("spc_baseline_dates", "attribution_baseline", "attribution_current"):
        parse_date_range(value, key)
    if name == "spc_rules":
        parse_rules(value, key)
    if name == "capability_periods":
        parse_periods(value, key)
    if name == "capability_min_n" and value < 2:
        raise RedlineError("CONFIG_INVALID", f"{key}={value!r}: a capability index needs at "
                                             f"least 2 points (one spread); set 2 or more "
                                             f"(30 or more for an index worth reading)")


def _series_pattern(pattern: str, key: str) -> tuple[str, ...]:
    parts = tuple(pattern.split("/"))
    if len(parts) not in (1, 4) or any(not p.strip() for p in parts):
        raise RedlineError("CONFIG_INVALID", f"{key}: {pattern!r} names neither a "
                                             f"characteristic ('bolt_torque_nm') nor one series "
                                             f"('PLANT/LINE/STATION/characteristic')")
    return parts


Override = tuple[str, tuple[tuple[str, Any], ...]]
"""(characteristic or ``plant/line/station/characteristic``, ((setting, value), ...))."""


@dataclass(frozen=True)
class AnalysisConfig:
    """How quality engineers set up SPC, capability and KPI attribution (their control
    plan). The SPC and capability settings can be overridden per characteristic or per
    series (``characteristic``); every value is validated when the configuration loads."""

    spc_baseline_points: int = _doc(
        "I-MR baseline: the first N first-pass points of each series give its centre line "
        "and limits (N >= 2), held fixed for every later point. Unused while "
        "spc_baseline_dates is set.", 25)
    spc_baseline_subgroups: int = _doc(
        "X-bar/R baseline: the first K complete subgroups of each series give its limits "
        "(K >= 1). Unused while spc_baseline_dates is set.", 5)
    spc_baseline_dates: str = _doc(
        "A fixed SPC baseline for both charts, `YYYY-MM-DD..YYYY-MM-DD` (event dates in UTC, "
        "both days included): the points in it give the I-MR limits, the subgroups wholly in "
        "it the X-bar/R limits. Empty: the first points/subgroups above.", "")
    spc_subgroup_size: int = _doc(
        "Consecutive measurements per X-bar/R subgroup, 2 to 10 (the sizes with published "
        "A2, D3, D4 constants).", 5)
    spc_rules: str = _doc(
        "Nelson rules that produce gold.spc_violations rows: rule numbers 1-8 separated by "
        "commas, or `none`.", "1,2,3,4,5,6,7,8")
    capability_periods: str = _doc(
        "Periods of gold.capability rows, separated by commas: day, week (ISO, from Monday), "
        "month, baseline (the points of the SPC I-MR baseline).", "day,week,month,baseline")
    capability_min_n: int = _doc(
        "Fewest points a gold.capability row computes its indices from (>= 2): a row with "
        "fewer keeps its n and mean, and its indices and their intervals are null with the "
        "status `too few points`.", 30)
    attribution_baseline: str = _doc(
        "KPI attribution's baseline period `YYYY-MM-DD..YYYY-MM-DD` (both days included); "
        "set together with attribution_current. Empty: the 7 days before the current "
        "period.", "")
    attribution_current: str = _doc(
        "KPI attribution's current period `YYYY-MM-DD..YYYY-MM-DD`; set together with "
        "attribution_baseline. Empty: the last 7 days with station results.", "")
    characteristic: tuple[Override, ...] = field(default=(), metadata={
        "env": False, "doc":
        "Overrides of the spc_* and capability_* settings for one characteristic, "
        "[<profile>.analysis.characteristic.\"bolt_torque_nm\"], or one series, "
        "[<profile>.analysis.characteristic.\"PLT-A/L1/S010/bolt_torque_nm\"]; for each "
        "setting the series' override wins over the characteristic's, which wins over the "
        "section's value. Set in the profile file only."})

    def __post_init__(self) -> None:
        _check_analysis({f.name: getattr(self, f.name) for f in dataclasses.fields(self)}, {})

    @property
    def baseline_dates(self) -> DateRange | None:
        return parse_date_range(self.spc_baseline_dates, "analysis.spc_baseline_dates")

    @property
    def rules(self) -> tuple[int, ...]:
        return parse_rules(self.spc_rules, "analysis.spc_rules")

    @property
    def periods(self) -> tuple[str, ...]:
        return parse_periods(self.capability_periods, "analysis.capability_periods")

    @property
    def attribution_periods(self) -> tuple[DateRange, DateRange] | None:
        """(baseline, current) when configured, else None (the job's default periods)."""
        baseline = parse_date_range(self.attribution_baseline, "analysis.attribution_baseline")
        current = parse_date_range(self.attribution_current, "analysis.attribution_current")
        return None if baseline is None or current is None else (baseline, current)

    def for_series(self, plant: str, line: str, station: str, characteristic: str
                   ) -> AnalysisConfig:
        """The settings of one series: the overrides of its characteristic, then of the
        series itself, applied to this section's values (without overrides)."""
        values: dict[str, Any] = {}
        for target in (characteristic, f"{plant}/{line}/{station}/{characteristic}"):
            for pattern, settings in self.characteristic:
                if pattern == target:
                    values.update(settings)
        return dataclasses.replace(self, characteristic=(), **values)

    def branches(self) -> list[tuple[tuple[str, ...], AnalysisConfig]]:
        """(pattern parts, settings) per override, most specific first, ending with
        ((), the settings of every other series): what a series matching the parts of a
        branch (a 1-part pattern names a characteristic, 4 parts a series) and of no branch
        before it gets."""
        series = sorted(p for p, _ in self.characteristic if "/" in p)
        names = sorted(p for p, _ in self.characteristic if "/" not in p)
        out = [(tuple(p.split("/")), self.for_series(*p.split("/"))) for p in series]
        out += [((p,), self.for_series("", "", "", p)) for p in names]
        return [*out, ((), dataclasses.replace(self, characteristic=()))]

    def fingerprint(self, names: tuple[str, ...]) -> str:
        """A short digest of settings ``names`` with their overrides: a job records the one
        of the settings it reads, and a changed one tells it to recompute."""
        import hashlib
        import json

        state = {"values": {n: getattr(self, n) for n in names},
                 "overrides": sorted([p, sorted([k, v] for k, v in s if k in names)]
                                     for p, s in self.characteristic
                                     if any(k in names for k, _ in s))}
        return hashlib.sha256(json.dumps(state, sort_keys=True).encode()).hexdigest()[:16]

    def in_force(self) -> list[str]:
        """One line per setting with its value, then one per override (its pattern and the
        settings it sets): what `redline config` prints."""
        lines = [f"{f.name:<24} {getattr(self, f.name)!r}" for f in dataclasses.fields(self)
                 if f.name != "characteristic"]
        lines += [f'characteristic."{p}": ' + ", ".join(f"{k}={v!r}" for k, v in s)
                  for p, s in self.characteristic] or ["no overrides per characteristic"]
        return lines


def _check_analysis(values: Mapping[str, Any], names: Mapping[str, str],
                    prefix: str = "analysis") -> None:
    """Validate every setting of ``values`` (a whole section, overrides included); errors
    name the key (``names``: setting -> the TOML key or environment variable it came from,
    else ``<prefix>.<setting>``)."""
    def key(name: str) -> str:
        return names.get(name, f"{prefix}.{name}")

    for name, value in values.items():
        if name != "characteristic":
            _check_analysis_value(name, value, key(name))
    pair = ("attribution_baseline", "attribution_current")
    given = [n for n in pair if values[n].strip()]
    if len(given) == 1:
        other = pair[1 - pair.index(given[0])]
        raise RedlineError("CONFIG_INVALID", f"{key(given[0])} is set but {key(other)} is "
                                             f"not: set both attribution periods, or neither")
    if given:
        (b0, b1), (c0, c1) = (parse_date_range(values[n], key(n)) for n in pair)
        if b1 >= c0 and c1 >= b0:
            raise RedlineError("CONFIG_INVALID", f"{key(pair[0])}={values[pair[0]]!r} and "
                                                 f"{key(pair[1])}={values[pair[1]]!r} overlap: "
                                                 f"choose periods without common days")
    for pattern, settings in values["characteristic"]:
        where = f'{prefix}.characteristic."{pattern}"'
        _series_pattern(pattern, where)
        for name, value in settings:
            if name not in PER_CHARACTERISTIC:
                raise RedlineError("CONFIG_UNKNOWN_KEY",
                                   f"unknown key {name!r} in {where}; an override sets "
                                   f"{', '.join(PER_CHARACTERISTIC)}")
            _check_analysis_value(name, value, f"{where}.{name}")


def _analysis_section(values: Mapping[str, Any], where: str, env: Mapping[str, str]
                      ) -> AnalysisConfig:
    """``[<profile>.analysis]`` with its per-characteristic tables, validated with the name
    of each key (or of the environment variable that set it) in the error."""
    values = dict(values)
    raw = values.pop("characteristic", {})
    fields = {f.name: f for f in dataclasses.fields(AnalysisConfig)
              if f.name != "characteristic"}
    unknown = sorted(set(values) - set(fields))
    if unknown:
        raise RedlineError("CONFIG_UNKNOWN_KEY", f"unknown key(s) {unknown} in {where}; "
                                                 f"known: {sorted([*fields, 'characteristic'])}")
    if not isinstance(raw, Mapping):
        raise RedlineError("CONFIG_INVALID", f"{where}.characteristic must be a table of "
                                             f"tables, e.g. [{where}.characteristic."
                                             f"\"bolt_torque_nm\"]")
    if "REDLINE_ANALYSIS_CHARACTERISTIC" in env:
        raise RedlineError("CONFIG_INVALID", f"REDLINE_ANALYSIS_CHARACTERISTIC: overrides per "
                                             f"characteristic are set in the profile file only "
                                             f"([{where}.characteristic.\"NAME\"]); unset it")
    names = {n: f"{where}.{n}" for n in values}
    kwargs = {n: _check_type(v, fields[n].type, names[n]) for n, v in values.items()}
    for n, f in fields.items():
        var = f"REDLINE_ANALYSIS_{n.upper()}"
        if var in env:
            names[n] = var
            kwargs[n] = _parse(env[var], f.type, var)
    overrides = []
    for pattern, settings in raw.items():
        key = f'{where}.characteristic."{pattern}"'
        _series_pattern(pattern, key)
        if not isinstance(settings, Mapping):
            raise RedlineError("CONFIG_INVALID", f"{key} must be a table of settings "
                                                 f"({', '.join(PER_CHARACTERISTIC)})")
        unknown = sorted(set(settings) - set(PER_CHARACTERISTIC))
        if unknown:
            raise RedlineError("CONFIG_UNKNOWN_KEY",
                               f"unknown key(s) {unknown} in {key}; an override sets "
                               f"{', '.join(PER_CHARACTERISTIC)}")
        overrides.append((pattern, tuple(sorted(
            (n, _check_type(v, fields[n].type, f"{key}.{n}")) for n, v in settings.items()))))
    full = {**{n: f.default for n, f in fields.items()}, **kwargs,
            "characteristic": tuple(overrides)}
    _check_analysis(full, names, where)
    return AnalysisConfig(**full)


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
    analysis: AnalysisConfig = field(default_factory=AnalysisConfig)
    alerts: AlertsConfig = field(default_factory=AlertsConfig)
    pipeline: PipelineConfig = field(default_factory=PipelineConfig)
    spark_cluster: SparkClusterConfig = field(default_factory=SparkClusterConfig)
    objectstore: ObjectStoreConfig = field(default_factory=ObjectStoreConfig)

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
    "analysis": AnalysisConfig,
    "alerts": AlertsConfig,
    "pipeline": PipelineConfig,
    "spark_cluster": SparkClusterConfig,
    "objectstore": ObjectStoreConfig,
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


#: Settings that an earlier release had, with what to do instead (a clearer error than
#: "unknown key" for a configuration file written then).
RETIRED = {
    "ingest.dedupe_window_minutes": "it is gone: a re-sent record is a duplicate however "
    "late it comes (docs/exactly-once.md); remove it, or set ingest.late_after_minutes",
}


def _section(cls: type, values: Mapping[str, Any], where: str, env: Mapping[str, str]) -> Any:
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = set(values) - set(fields)
    section = where.rsplit(".", 1)[-1]
    for name in sorted(unknown):
        if f"{section}.{name}" in RETIRED:
            raise RedlineError("CONFIG_UNKNOWN_KEY", f"{where}.{name}: "
                                                     f"{RETIRED[f'{section}.{name}']}")
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
        name: _analysis_section(body.get(name, {}), f"{profile}.{name}", env)
        if cls is AnalysisConfig else _section(cls, body.get(name, {}), f"{profile}.{name}", env)
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
            if f.metadata.get("env", True):
                rows.append((f"REDLINE_{section.upper()}_{f.name.upper()}", str(f.type),
                             f.default, f.metadata["doc"]))
            else:  # a table of the profile file only
                rows.append((f'[<profile>.{section}.{f.name}."NAME"]', "table", {},
                             f.metadata["doc"]))
    return rows
