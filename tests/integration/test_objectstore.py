"""A lake on the managed object store: real SeaweedFS (installed by `make objectstore`), real
Spark with Delta over Hadoop's S3A connector, the real Kafka broker.

Spark runs in subprocesses here: a driver's S3A jars and S3 keys are fixed when its JVM
starts, and this test process's own session (the ``spark`` fixture) is a local-lake one.
A long-lived probe process reads the tables (one JVM start for many counts); what is in
the bucket is also read through the SeaweedFS filer's own HTTP listing, independent of
Spark. Expected values are counted by hand from what each test produced.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
import requests
from lake_listing import filer_list, lake_key
from waiting import exited, until

from redline.config import PROJECT_ROOT, load
from redline.credentials import OBJECTSTORE_ACCESS_KEY, OBJECTSTORE_SECRET_KEY
from redline.errors import RedlineError
from redline.services.base import session_processes
from redline.streaming.producer import ensure_topics, produce
from redline.streaming.simulator import Event

pytestmark = [pytest.mark.integration, pytest.mark.cluster]

TOPIC = "vehicle_telemetry"
REDLINE = str(Path(sys.executable).parent / "redline")
CLEAN_ERROR = re.compile(r"^redline: error \[[A-Z_]+\] ", re.MULTILINE)


# -- fixtures --------------------------------------------------------------------------------
@pytest.fixture
def s3_cfg(cfg, objectstore, kafka_broker, monkeypatch):
    """This test's own topics and its own lake folder in the managed store's bucket."""
    for var in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(var, raising=False)
    tag = uuid.uuid4().hex[:8]
    monkeypatch.setenv("REDLINE_KAFKA_TOPIC_PREFIX", f"s3-{tag}.")
    monkeypatch.setenv("REDLINE_LAKE_ROOT", f"s3a://{cfg.objectstore.bucket}/t-{tag}")
    monkeypatch.setenv("REDLINE_LAKE_S3_ENDPOINT", cfg.objectstore.endpoint)
    monkeypatch.setenv("REDLINE_LAKE_S3_PATH_STYLE", "true")
    # Two or three Spark drivers at once on a 2-core machine: small heaps.
    monkeypatch.setenv("REDLINE_SPARK_DRIVER_MEMORY", "1g")
    test_cfg = load()
    ensure_topics(test_cfg)
    return test_cfg


_PROBE = r"""
import json, sys, traceback
from pyspark.sql import functions as F
from redline import catalog
from redline.config import PROJECT_ROOT, load
from redline.spark import build_session
cfg = load()
spark = build_session(cfg, app_name="redline-s3a-probe")
print(json.dumps({"ready": True}), flush=True)
for line in sys.stdin:
    scope = {"spark": spark, "catalog": catalog, "cfg": cfg, "F": F, "json": json}
    try:
        exec(json.loads(line)["code"], scope)
        print(json.dumps({"result": scope.get("result")}), flush=True)
    except BaseException as exc:
        print(json.dumps({"error": "".join(traceback.format_exception(exc))[-3000:]}),
              flush=True)
"""


class Probe:
    """A Spark driver on the s3a lake in its own process: ``run(code)`` executes ``code``
    there (``spark``, ``catalog``, ``cfg``, ``F`` in scope) and returns its ``result``."""

    def __init__(self, log: Path):
        self.log = log
        self.proc = subprocess.Popen(
            [sys.executable, "-c", _PROBE], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=log.open("ab"), text=True, start_new_session=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"})
        self._read()

    def _read(self) -> dict:
        line = self.proc.stdout.readline()
        if not line:
            raise AssertionError(f"the probe exited:\n{self.log.read_text()[-4000:]}")
        return json.loads(line)

    def run(self, code: str):
        self.proc.stdin.write(json.dumps({"code": code}) + "\n")
        self.proc.stdin.flush()
        answer = self._read()
        if "error" in answer:
            raise AssertionError(f"the probe failed:\n{answer['error']}")
        return answer["result"]

    def close(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(30)


@pytest.fixture
def probe(s3_cfg, tmp_path):
    p = Probe(tmp_path / "probe.log")
    yield p
    p.close()


_LAYERS = """
def ids(table, field):
    if not catalog.exists(spark, cfg.lake_root, table):
        return [], 0
    df = catalog.read(spark, cfg.lake_root, table)
    if field == "value":
        rows = df.select("value", "partition", "offset").collect()
        return ([json.loads(bytes(r.value))["event_id"] for r in rows],
                len({(r.partition, r.offset) for r in rows}))
    return [r.event_id for r in df.select("event_id").collect()], df.count()
bronze_ids, bronze_coords = ids(catalog.bronze(TOPIC), "value")
silver_ids, silver_rows = ids(catalog.silver(TOPIC), "event_id")
result = {"bronze": bronze_ids, "bronze_coords": bronze_coords, "silver": silver_ids,
          "silver_rows": silver_rows}
"""


def layers(probe: Probe) -> dict:
    """Event ids in bronze and silver of ``TOPIC`` (read by the probe's Spark)."""
    return probe.run(f"TOPIC = {TOPIC!r}\n{_LAYERS}")


def assert_exactly_once(found: dict, produced: list[str]) -> None:
    assert len(found["bronze"]) == found["bronze_coords"] == len(produced)
    assert sorted(found["bronze"]) == sorted(produced)
    assert found["silver_rows"] == len(found["silver"]) == len(produced)
    assert sorted(found["silver"]) == sorted(produced)


def _events(n: int, start: int = 0) -> list[dict]:
    return [{"event_id": str(uuid.uuid4()), "event_time": "2026-02-01T10:00:00Z",
             "schema_version": 1, "vin": f"RDLS3LAKE{i:08d}", "odometer_km": float(i)}
            for i in range(start, start + n)]


def _publish(cfg, events: list[dict]) -> list[str]:
    report = produce(cfg, [Event(TOPIC, e["vin"], e) for e in events],
                     progress=lambda _: None)
    assert report.acknowledged == {TOPIC: len(events)} and report.failed == 0
    return [e["event_id"] for e in events]


def _redline(args: list[str], log: Path, **env: str) -> subprocess.Popen:
    return subprocess.Popen([REDLINE, *args], stdout=log.open("ab"),
                            stderr=subprocess.STDOUT, start_new_session=True,
                            env={**os.environ, "PYTHONUNBUFFERED": "1", **env})


def _kill(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(30)


# -- the store itself -------------------------------------------------------------------------
def _listening(pids: set[int]) -> set[tuple[str, int]]:
    """(address, port) of every TCP socket in LISTEN state owned by ``pids``."""
    inodes = set()
    for pid in pids:
        try:
            for fd in Path(f"/proc/{pid}/fd").iterdir():
                target = os.readlink(fd)
                if target.startswith("socket:["):
                    inodes.add(target[len("socket:["):-1])
        except (FileNotFoundError, PermissionError):
            continue
    out = set()
    for table, width in (("/proc/net/tcp", 8), ("/proc/net/tcp6", 32)):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] != "0A" or fields[9] not in inodes:
                continue
            hex_addr, hex_port = fields[1].split(":")
            if width == 8:
                address = ".".join(str(int(hex_addr[i:i + 2], 16)) for i in (6, 4, 2, 0))
            else:
                address = "ipv6:" + hex_addr
            out.add((address, int(hex_port, 16)))
    return out


def test_store_listens_on_loopback_only_and_keeps_its_keys_private(cfg, objectstore):
    from process_watch import SEEN

    pid = objectstore.pid()
    assert pid is not None and objectstore.check()
    pids = {int(f[2]) for f in session_processes(pid)} | {pid}
    listening = _listening(pids)
    # Every port it opens is a configured one, on 127.0.0.1; every configured one is open.
    assert listening == {("127.0.0.1", p) for p in objectstore.ports()}, listening

    secrets_dir = cfg.home / "secrets"
    names = [OBJECTSTORE_ACCESS_KEY, OBJECTSTORE_SECRET_KEY, "objectstore_s3.json"]
    for name in names:
        assert (secrets_dir / name).stat().st_mode & 0o777 == 0o600, name
    access = (secrets_dir / OBJECTSTORE_ACCESS_KEY).read_text().strip()
    secret = (secrets_dir / OBJECTSTORE_SECRET_KEY).read_text().strip()
    assert len(access) >= 16 and len(secret) >= 32
    now = {Path(p, "cmdline").read_bytes().decode(errors="replace")
           for p in Path("/proc").iterdir() if p.name.isdigit() and Path(p, "cmdline").exists()}
    for line in SEEN | now:
        assert access not in line and secret not in line, line[:200]
    log = objectstore.log_file.read_text(errors="replace")
    assert access not in log and secret not in log
    # The bucket exists, and an anonymous S3 request is refused.
    assert cfg.objectstore.bucket in objectstore.buckets()
    anonymous = requests.get(f"{cfg.objectstore.endpoint}/{cfg.objectstore.bucket}/",
                             timeout=10)
    assert anonymous.status_code == 403, anonymous.text[:500]


# -- Spark and Delta on s3a -------------------------------------------------------------------
def test_delta_table_written_and_read_back_on_s3a(s3_cfg, probe):
    path = f"{s3_cfg.lake_root}/scratch/numbers"
    result = probe.run(f"""
df = spark.range(0, 1000).withColumn("squared", F.col("id") * F.col("id"))
df.write.format("delta").save({path!r})
spark.range(1000, 1500).withColumn("squared", F.col("id") * F.col("id")) \\
    .write.format("delta").mode("append").save({path!r})
back = spark.read.format("delta").load({path!r})
row = back.agg(F.count("*").alias("n"), F.sum("id").alias("ids"),
               F.sum("squared").alias("squares")).first()
result = {{"n": row.n, "ids": row.ids, "squares": row.squares,
          "versions": [r.version for r in spark.sql(
              "DESCRIBE HISTORY delta.`{path}`").select("version").collect()]}}
""")
    assert result["n"] == 1500
    assert result["ids"] == 1499 * 1500 // 2
    assert result["squares"] == sum(i * i for i in range(1500))
    assert sorted(result["versions"]) == [0, 1]
    # The Delta log is in the bucket, as SeaweedFS itself lists it.
    log = filer_list(s3_cfg, f"{lake_key(s3_cfg, path)}/_delta_log")
    assert "00000000000000000000.json" in log and "00000000000000000001.json" in log, log


# -- credentials --------------------------------------------------------------------------------
def test_wrong_keys_fail_with_a_clear_error(s3_cfg, tmp_path):
    _publish(s3_cfg, _events(5))
    wrong_access, wrong_secret = "WRONGKEY" + uuid.uuid4().hex[:12].upper(), uuid.uuid4().hex
    log = tmp_path / "wrong.log"
    proc = _redline(["ingest", "--available-now", "--topics", TOPIC], log,
                    AWS_ACCESS_KEY_ID=wrong_access, AWS_SECRET_ACCESS_KEY=wrong_secret)
    code = exited(proc, "ingest with wrong keys", log=log)
    text = log.read_text()
    assert code == 2, text[-4000:]
    assert "redline: error [LAKE_ACCESS_DENIED] the object store refused access to " \
           f"{s3_cfg.lake_root} (at {s3_cfg.objectstore.endpoint}) with the keys in " \
           "AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY" in text, text[-4000:]
    assert "Traceback" not in text and "\tat org.apache" not in text, text[-4000:]
    assert wrong_secret not in text


def test_ingest_beside_a_running_thrift_server_says_it_registered_nothing(
        s3_cfg, thrift_server, probe, tmp_path):
    """The Thrift Server reads local lakes only (it never gets the store's keys): an ingest
    into s3a:// says it left the tables unregistered, and succeeds. It used to end in a
    traceback (ClassNotFoundException: S3AFileSystem) after writing the data."""
    produced = _publish(s3_cfg, _events(5))
    log = tmp_path / "ingest.log"
    proc = _redline(["ingest", "--available-now", "--topics", TOPIC], log)
    code = exited(proc, "ingest into s3a:// with the Thrift Server up", log=log)
    text = log.read_text()
    assert code == 0, text[-4000:]
    assert "the Spark Thrift Server does not read a lake on an object store " \
           f"({s3_cfg.lake_root}): its tables were not registered there" in text, text[-3000:]
    assert "Traceback" not in text
    assert_exactly_once(layers(probe), produced)


def test_half_set_keys_are_refused_before_spark_starts(s3_cfg, monkeypatch):
    from redline.spark import build_session

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "ONLYTHEACCESSKEY")
    with pytest.raises(RedlineError, match=r"\[S3_CREDENTIALS\] AWS_ACCESS_KEY_ID is set but "
                                           r"AWS_SECRET_ACCESS_KEY is not"):
        build_session(s3_cfg)


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


#: S3A's retries, cut down for the unreachable endpoint: with the defaults (7 retries
#: with backoff, each through the SDK's own attempts) the error comes after about two
#: minutes, which is what a user waits, but the error is the same.
FEW_RETRIES = """
spark.hadoop.fs.s3a.retry.limit        1
spark.hadoop.fs.s3a.retry.interval     100ms
spark.hadoop.fs.s3a.attempts.maximum   1
"""


@pytest.mark.parametrize("keys, code", [
    (True, "LAKE_UNREACHABLE"),
    (False, "LAKE_NO_CREDENTIALS"),
])
def test_unreachable_store_or_missing_keys_fail_with_a_clear_error(s3_cfg, tmp_path, keys,
                                                                   code):
    """An endpoint nobody answers on (not the managed store's: its keys are not used)."""
    log = tmp_path / "ingest.log"
    env = {"REDLINE_LAKE_S3_ENDPOINT": f"http://127.0.0.1:{_closed_port()}"}
    if keys:
        env.update(AWS_ACCESS_KEY_ID="SOMEACCESSKEY", AWS_SECRET_ACCESS_KEY=uuid.uuid4().hex)
        # The profile's Spark settings file with fewer retries (an absolute conf_file).
        conf = tmp_path / "few-retries.conf"
        conf.write_text((PROJECT_ROOT / "spark-conf" / s3_cfg.spark.conf_file).read_text()
                        + FEW_RETRIES)
        env["REDLINE_SPARK_CONF_FILE"] = str(conf)
    proc = _redline(["ingest", "--available-now", "--topics", TOPIC], log, **env)
    exit_code = exited(proc, f"ingest failing with {code}", log=log)
    text = log.read_text()
    assert exit_code == 2, text[-4000:]
    assert f"redline: error [{code}] " in text and s3_cfg.lake_root in text, text[-4000:]
    assert "Traceback" not in text and "\tat org.apache" not in text, text[-4000:]


# -- the outage drill ----------------------------------------------------------------------------
def _silver_while_recovering(probe: Probe) -> int:
    """Silver's event count, or 0 while the just-restarted store still answers a read with
    S3's 500 "internal error" (the probe's own read, not ingest's; the final count below
    reads with no such allowance)."""
    try:
        return len(layers(probe)["silver"])
    except AssertionError as exc:
        if "Status Code: 500" in str(exc):
            return 0
        raise


def test_store_outage_under_running_ingest_loses_and_doubles_nothing(
        s3_cfg, objectstore, probe, tmp_path):
    """The store stops for 30 s under a continuous ingest, then comes back. The stream
    rides it out or stops with a clear error; either way, once ingest ran again after the
    restart, bronze and silver hold each produced event exactly once."""
    produced = _publish(s3_cfg, _events(200))
    log = tmp_path / "ingest.log"
    ingest = _redline(["ingest", "--topics", TOPIC], log)
    try:
        until(lambda: len(layers(probe)["silver"]) >= 200, "ingest lands the first 200",
              proc=ingest, log=log, poll=3)

        objectstore.stop()
        outage_began = time.monotonic()
        produced += _publish(s3_cfg, _events(150, start=200))  # Kafka keeps taking events
        while time.monotonic() - outage_began < 30:
            time.sleep(1)
        objectstore.start()

        stopped = ingest.poll() is not None
        if not stopped:
            # Still running: it catches up by itself (S3A retried through the outage), or
            # gives up a little later with an error, which must then be a clear one.
            until(lambda: ingest.poll() is not None or _silver_while_recovering(probe) >= 350,
                  "ingest catches up after the outage, or stops", proc=None, log=log,
                  session=ingest.pid, poll=3)
            stopped = ingest.poll() is not None
        if stopped:
            text = log.read_text()
            assert ingest.returncode == 2 and CLEAN_ERROR.search(text), text[-4000:]
            assert "Traceback" not in text, text[-4000:]
            assert re.search(r"redline: error \[LAKE_UNREACHABLE\]", text), text[-4000:]
            rerun_log = tmp_path / "rerun.log"
            rerun = _redline(["ingest", "--available-now", "--topics", TOPIC], rerun_log)
            assert exited(rerun, "ingest after the restart", log=rerun_log) == 0, \
                rerun_log.read_text()[-4000:]
        else:
            ingest.send_signal(signal.SIGTERM)
            assert exited(ingest, "ingest stops on SIGTERM", log=log) == 0, \
                log.read_text()[-4000:]
    finally:
        _kill(ingest)
        if not objectstore.running():
            objectstore.start()
    assert_exactly_once(layers(probe), produced)
