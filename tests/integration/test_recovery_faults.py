"""Recovery faults: damaged checkpoints, two owners of one checkpoint, services restarted
under running work, and a lake whose disk fills up.

Real broker, real Spark with Delta, real MLflow, Thrift Server and Superset. Every test
compares what it produced (counted by hand) with what bronze and silver hold: nothing
lost, nothing doubled. Every wait follows observed progress (``tests/waiting.py``), and
a failing `redline` command must say `redline: error [CODE] ...`, never a traceback.
"""

from __future__ import annotations

import base64
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import pytest
from waiting import exited, until

from redline import catalog
from redline import lake as lakeio
from redline.cli import main
from redline.config import load
from redline.errors import RedlineError
from redline.streaming import bronze, silver
from redline.streaming.guards import LOCK_FILE
from redline.streaming.producer import produce
from redline.streaming.replay import silver_offline
from redline.streaming.simulator import Event

pytestmark = [pytest.mark.integration, pytest.mark.drill]

TOPIC = "vehicle_telemetry"
REDLINE = str(Path(sys.executable).parent / "redline")
DATASETS = Path(__file__).resolve().parents[2] / "datasets"
CLEAN_ERROR = re.compile(r"^redline: error \[[A-Z_]+\] ", re.MULTILINE)


def _events(n: int, start: int = 0, note_bytes: int = 0) -> list[dict]:
    """``n`` valid telemetry events; ``note_bytes``: an incompressible note of about that
    size in each (a field silver does not keep, so only bronze grows)."""
    return [{"event_id": str(uuid.uuid4()), "event_time": "2026-02-01T10:00:00Z",
             "schema_version": 1, "vin": f"RDLRECOV{i:09d}", "odometer_km": float(i),
             **({"note": base64.b64encode(os.urandom(note_bytes * 3 // 4)).decode()}
                if note_bytes else {})} for i in range(start, start + n)]


def _publish(cfg, events: list[dict]) -> list[str]:
    """Send ``events`` (acknowledged by all replicas); their event ids."""
    report = produce(cfg, [Event(TOPIC, e["vin"], e) for e in events],
                     progress=lambda _: None)
    assert report.acknowledged == {TOPIC: len(events)} and report.failed == 0
    return [e["event_id"] for e in events]


def _count(spark, root: str, table: catalog.Table) -> int:
    return catalog.read(spark, root, table).count() if catalog.exists(spark, root, table) \
        else 0


def assert_exactly_once(spark, root: str, produced: list[str]) -> None:
    """Bronze holds each produced record once, silver each produced event once."""
    bronze_df = catalog.read(spark, root, catalog.bronze(TOPIC))
    assert bronze_df.count() == len(produced)
    assert bronze_df.select("partition", "offset").distinct().count() == len(produced)
    ids = [json.loads(bytes(r.value))["event_id"]
           for r in bronze_df.select("value").collect()]
    assert sorted(ids) == sorted(produced)
    silver_df = catalog.read(spark, root, catalog.silver(TOPIC))
    assert silver_df.count() == silver_df.select("event_id").distinct().count() \
        == len(produced)
    assert sorted(r.event_id for r in silver_df.select("event_id").collect()) \
        == sorted(produced)


def _redline(args: list[str], log: Path, **env: str) -> subprocess.Popen:
    """`redline ARGS` in its own session (so its Spark JVM goes with it), output to ``log``."""
    return subprocess.Popen([REDLINE, *args], stdout=log.open("ab"),
                            stderr=subprocess.STDOUT, start_new_session=True,
                            env={**os.environ, "PYTHONUNBUFFERED": "1", **env})


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(30)


def assert_clean_exit(code: int, output: str) -> None:
    """Success, or a failure a person can act on: one `redline: error [CODE]` line."""
    assert "Traceback" not in output, output[-4000:]
    assert code == 0 or (code == 2 and CLEAN_ERROR.search(output)), output[-4000:]


# -- 1. a damaged commits/N ------------------------------------------------------------------
def _latest_commit(checkpoint: str) -> Path:
    commits = Path(checkpoint) / "commits"
    return commits / str(max(int(p.name) for p in commits.iterdir() if p.name.isdigit()))


def _damage(commit: Path, how: str) -> None:
    if how == "deleted":
        commit.unlink()  # its checksum file .N.crc stays, as after a plain `rm`
    elif how == "empty":
        commit.write_bytes(b"")  # power lost after the rename, before the data hit the disk
    else:
        data = commit.read_bytes()
        commit.write_bytes(data[:len(data) // 2])


def test_damaged_commit_file_reruns_the_batch_once(stream_cfg, spark, capsys):
    """The newest ``commits/N`` of bronze and of silver deleted, emptied or cut in half:
    the next ingest runs batch N again, and writes nothing twice."""
    root = stream_cfg.lake_root
    produced = _publish(stream_cfg, _events(30))
    assert main(["ingest", "--available-now", "--topics", TOPIC]) == 0
    assert_exactly_once(spark, root, produced)

    # Each query's file deleted, then cut short (bronze's emptied, silver's halved).
    for round_, hows in enumerate([("deleted", "deleted"), ("empty", "half")], 1):
        damaged = {}
        for how, query, ckpt in zip(
                hows, (f"bronze_{TOPIC}", silver.query_name(TOPIC)),
                (bronze.checkpoint(root, TOPIC), silver.checkpoint(root, TOPIC))):
            commit = _latest_commit(ckpt)
            damaged[query] = (commit, commit.read_text())
            _damage(commit, how)
        produced += _publish(stream_cfg, _events(10, start=100 * round_))

        capsys.readouterr()
        assert main(["ingest", "--available-now", "--topics", TOPIC]) == 0, \
            capsys.readouterr().err
        out = capsys.readouterr().out
        assert_exactly_once(spark, root, produced)
        for query, (commit, text) in damaged.items():
            # Said once per query; Spark ran the batch again and committed it, whole.
            assert out.count(f"{query}: ") == 1, out
            assert f"so batch {commit.name} runs again" in out, out
            assert commit.read_text() == text


# -- 2. two owners of one checkpoint ---------------------------------------------------------
def test_second_ingest_on_a_running_checkpoint_is_refused(stream_cfg, spark, tmp_path):
    root = stream_cfg.lake_root
    produced = _publish(stream_cfg, _events(30))
    checkpoints = Path(root, "_checkpoints")
    log = tmp_path / "first.log"
    first = _redline(["ingest", "--topics", TOPIC], log)
    try:
        # Both of its queries run: each holds its lock and silver has landed the 30.
        until(lambda: _count(spark, root, catalog.silver(TOPIC)) >= 30,
              "the first ingest lands 30 events in silver", proc=first, log=log,
              watch=[checkpoints], poll=2)
        assert len(list(checkpoints.glob(f"*/{TOPIC}/{LOCK_FILE}"))) == 2

        second_log = tmp_path / "second.log"
        second = _redline(["ingest", "--topics", TOPIC], second_log)
        code = exited(second, "the second ingest", log=second_log)
        text = second_log.read_text()
        assert_clean_exit(code, text)
        assert code == 2
        assert (f"redline: error [CHECKPOINT_IN_USE] streaming query bronze_{TOPIC} is "
                f"already running on checkpoint {bronze.checkpoint(root, TOPIC)} "
                f"(pid {first.pid} on ") in text, text
        # The silver query's checkpoint is refused to another process the same way.
        with pytest.raises(RedlineError, match=rf"CHECKPOINT_IN_USE.* silver_{TOPIC} is "
                                               rf"already running .*\(pid {first.pid} on "):
            silver.drain(spark, root, TOPIC)

        # The first goes on as if nothing happened.
        produced += _publish(stream_cfg, _events(20, start=30))
        until(lambda: _count(spark, root, catalog.silver(TOPIC)) >= 50,
              "the first ingest lands 20 more", proc=first, log=log, watch=[checkpoints],
              poll=2)
        first.send_signal(signal.SIGTERM)
        assert exited(first, "the first ingest stops on SIGTERM", log=log) == 0, \
            log.read_text()[-3000:]
    finally:
        _stop(first)
    assert not list(checkpoints.glob(f"*/*/{LOCK_FILE}"))
    assert_exactly_once(spark, root, produced)


# -- 3. services restarted under jobs and scoring --------------------------------------------
def _clients_of(port: int) -> set[int]:
    """Local ports of the established TCP connections to ``port`` on this host."""
    out = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        _, local, remote, state = line.split()[:4]
        if state == "01" and int(remote.rsplit(":", 1)[1], 16) == port:
            out.add(int(local.rsplit(":", 1)[1], 16))
    return out


class Talking:
    """True once a client has held a connection to ``port`` for ``hold`` seconds: a
    conversation (registering tables), not a health check's single query."""

    def __init__(self, port: int, hold: float = 0.3):
        self.port, self.hold, self.since = port, hold, {}

    def __call__(self) -> bool:
        now = time.monotonic()
        self.since = {p: self.since.get(p, now) for p in _clients_of(self.port)}
        return any(now - t >= self.hold for t in self.since.values())


class Restart(threading.Thread):
    """Stop and start a service in the background (`redline down` and `up` of one
    service), at once or when ``when()`` turns true (at the latest when ``go`` is set);
    with ``stopped``, the service is down already and only starts."""

    def __init__(self, service, when=None, stopped: bool = False):
        super().__init__(daemon=True)
        self.service, self.when, self.stopped, self.error = service, when, stopped, None
        self.go, self.triggered = threading.Event(), when is None

    def run(self) -> None:
        try:
            while self.when is not None and not self.go.is_set():
                if self.when():
                    self.triggered = True
                    break
                time.sleep(0.05)
            if not self.stopped:
                self.service.stop(progress=lambda _: None)
            self.service.start(progress=lambda _: None)
        except BaseException as exc:  # noqa: BLE001 - reported by finish
            self.error = exc

    def finish(self) -> None:
        self.go.set()
        until(lambda: not self.is_alive(), f"{self.service.name} restarts",
              log=self.service.log_file)
        assert self.error is None, self.error
        assert self.service.check(), f"{self.service.name} is not healthy after its restart"


def _thrift_count(cfg, qualified_name: str) -> int:
    from redline.services.thrift import connect

    conn = connect(cfg)
    try:
        cur = conn.cursor()
        cur.execute(f"SELECT count(*) FROM {qualified_name}")
        return cur.fetchall()[0][0]
    finally:
        conn.close()


def _cli(capsys, *args: str) -> tuple[int, str]:
    """`redline ARGS` in this process (its Spark session): exit code and all it printed.
    An exception escaping ``main`` (what a person would see as a traceback) fails here."""
    capsys.readouterr()
    code = main(list(args))
    out = capsys.readouterr()
    return code, out.out + out.err


@pytest.fixture
def restartable(services):
    """The session's services; any this test leaves stopped is started again after it."""
    yield services
    for svc in services.values():
        if not (svc.running() and svc.check()):
            svc.start(progress=lambda _: None)


def test_services_restarted_under_jobs_and_scoring(cfg, spark, lake, restartable,
                                                    monkeypatch, capsys):
    from redline.ml import run

    services = restartable

    monkeypatch.setenv("REDLINE_LAKE_ROOT", lake)
    monkeypatch.setenv("REDLINE_MLFLOW_EXPERIMENT", f"t{uuid.uuid4().hex[:8]}")
    run_cfg = load()
    thrift, superset, mlflow = (services[n] for n in ("spark-thrift", "superset", "mlflow"))
    # The AI4I 2020 data set: 10,000 process runs, one gold feature row each.
    runs = 10_000
    lakeio.overwrite(silver_offline(spark, DATASETS, "ai4i"), lake,
                     catalog.silver("ai4i_process"))

    # A gold job while the Thrift Server and Superset restart: the restart begins while
    # the job registers its tables in the Thrift Server (its last step).
    talking = Talking(run_cfg.thrift.port)
    restarts = [Restart(thrift, when=talking), Restart(superset, when=talking)]
    for r in restarts:
        r.start()
    code, output = _cli(capsys, "jobs", "run", "gold_ai4i_features")
    assert_clean_exit(code, output)
    assert code == 0 or "redline: error [THRIFT_DOWN] " in output, output
    with capsys.disabled():
        print(f"\ngold job under restarts: exit {code}; the restart began during "
              f"its registration: {restarts[0].triggered}")
    assert _count(spark, lake, catalog.AI4I_FEATURES) == runs

    # A champion to score with (few trees: seconds), trained while those two come back.
    quiet = {"progress": lambda _: None}
    trained = run.train(spark, run_cfg, "ai4i", params={"n_estimators": 20}, **quiet)
    assert run.promote(spark, run_cfg, "ai4i", **quiet).promoted

    # MLflow down for a whole scoring, the client not retrying: a clear error, not "no
    # champion yet" and success.
    mlflow.stop(progress=lambda _: None)
    with monkeypatch.context() as m:
        m.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
        code, output = _cli(capsys, "ml", "score", "ai4i")
    assert_clean_exit(code, output)
    assert code == 2 and "redline: error [MLFLOW_UNAVAILABLE] " in output, output
    assert not catalog.exists(spark, lake, catalog.AI4I_FAILURE_SCORES)

    # MLflow starts again while the next scoring runs (still down when it asks for the
    # champion): the client's retries ride the restart out.
    restart = Restart(mlflow, stopped=True)
    restart.start()
    code, output = _cli(capsys, "ml", "score", "ai4i")
    assert_clean_exit(code, output)
    with capsys.disabled():
        print(f"\nml score while MLflow starts: exit {code}")
    restart.finish()
    if code != 0:  # whatever failed, failed clearly; the next run completes
        code, output = _cli(capsys, "ml", "score", "ai4i")
        assert code == 0, output
    scores = catalog.read(spark, lake, catalog.AI4I_FAILURE_SCORES)
    assert scores.count() == scores.select("udi").distinct().count() == runs
    assert [r.model_version for r in scores.select("model_version").distinct().collect()] \
        == [trained.version]
    # 7 days of runs (one a minute) x 9 features and the score.
    assert catalog.read(spark, lake, catalog.MODEL_DRIFT).where("task = 'ai4i'").count() \
        == 7 * 10

    # All back: the next job run completes and registers every table, which reads right
    # through the Thrift Server.
    for r in restarts:
        r.finish()
    code, output = _cli(capsys, "jobs", "run", "gold_ai4i_features")
    assert code == 0 and "registered" in output, output
    assert _count(spark, lake, catalog.AI4I_FEATURES) == runs
    assert _thrift_count(run_cfg, "gold.ai4i_features") == runs
    assert _thrift_count(run_cfg, "gold.ai4i_failure_scores") == runs


# -- 4. the lake's disk fills up -------------------------------------------------------------
@pytest.fixture
def small_lake(lake):
    """The test's lake on a tmpfs of 8 MB (grown by the test with a remount)."""
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs as the lake needs root")
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m,mode=0700", "tmpfs", lake],
                          capture_output=True, text=True)
    if done.returncode != 0:
        pytest.fail(f"running as root, yet `mount -t tmpfs` failed: {done.stderr.strip()}; "
                    f"this test needs CAP_SYS_ADMIN (a container started without it cannot "
                    f"mount): run it on a host or a privileged container")
    yield lake
    if subprocess.run(["umount", lake], capture_output=True).returncode != 0:
        subprocess.run(["umount", "-l", lake], check=True)


def test_full_disk_under_the_lake_fails_clearly_and_keeps_the_tables(
        small_lake, stream_cfg, spark, capsys):
    from delta.tables import DeltaTable

    root = stream_cfg.lake_root
    assert root == small_lake
    produced = _publish(stream_cfg, _events(10))
    assert main(["ingest", "--available-now", "--topics", TOPIC]) == 0
    assert_exactly_once(spark, root, produced)

    def versions() -> dict[str, int]:
        return {t.qualified_name: DeltaTable.forPath(spark, catalog.location(root, t))
                .history(1).first().version
                for t in (catalog.bronze(TOPIC), catalog.silver(TOPIC))}

    before = versions()
    # 50 events of 200 kB of incompressible text: 10 MB, more than the whole lake's disk.
    big = _publish(stream_cfg, _events(50, start=10, note_bytes=200_000))
    filler = Path(root, "filler")
    for attempt in ("bronze fills the disk", "the lock finds it full"):
        capsys.readouterr()
        assert main(["ingest", "--available-now", "--topics", TOPIC]) == 2, attempt
        err = capsys.readouterr().err
        assert CLEAN_ERROR.search(err) and "Traceback" not in err, err
        assert (f"redline: error [LAKE_DISK_FULL] streaming query bronze_{TOPIC} could not "
                f"write under {root}") in err, err
        # Delta committed nothing of the batch: both tables read at their last version.
        assert versions() == before, attempt
        assert_exactly_once(spark, root, produced)
        with filler.open("ab", buffering=0) as fh, \
                pytest.raises(OSError, match="No space left"):
            while True:  # whatever room the failed batch left: not a byte now
                fh.write(b"\0" * 65536)
    assert f"under {bronze.checkpoint(root, TOPIC)}: " in err, err

    # Room again: the batch runs again, and lands whole, once.
    filler.unlink()
    subprocess.run(["mount", "-o", "remount,size=96m", root], check=True)
    assert main(["ingest", "--available-now", "--topics", TOPIC]) == 0
    assert_exactly_once(spark, root, produced + big)
