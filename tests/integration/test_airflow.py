"""The shipped Airflow DAG (orchestration/redline_dag.py) runs redline end to end.

`make airflow` builds Airflow's own virtualenv (once per machine, outside the clone);
`airflow dags test` runs the whole DAG in one process (SQLite metadata DB under the test
state folder, no web server) against the real local services of tests/conftest.py: Kafka,
MLflow, the Spark Thrift Server and Superset. A champion failure model is trained first, in
this process, on a lake of its own whose silver tables come straight from the simulator
(scoring needs a champion; ingest is what the DAG run proves). The DAG then runs once end
to end from an empty lake: ingest, the gold jobs, the quality gate, scoring and the
dashboard refresh, each task a `redline` command. The gate's failure path runs only the
tasks that matter: a second `dags test` with a freshness limit that cannot hold
(REDLINE_QUALITY_FRESHNESS_HOURS, configuration only) marks ingest and the gold jobs done
without running them, so the gate is the one task that runs; it fails, is not retried, and
scoring and the refresh never run (``upstream_failed``).
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import uuid
from pathlib import Path

import pytest

from redline.config import PROJECT_ROOT
from redline.streaming.simulator import SimulationSpec, Simulator

pytestmark = [pytest.mark.integration, pytest.mark.cluster]

# The size the end-to-end test uses: enough warranty claims for the failure model's time
# split and defects for every gold table's volume check.
VEHICLES, DAYS, SEED = 120, 50, 7
REDLINE = PROJECT_ROOT / ".venv" / "bin" / "redline"
#: `make airflow` links its virtualenv (built under ~/.cache/redline) here.
AIRFLOW = PROJECT_ROOT / ".venv-airflow" / "bin" / "airflow"
DAG_ID = "redline"
# The data sets nobody replays here: their steps end skipped (no input data), and the
# gold jobs after them too.
WAITING = {"gold_cmapss_features", "gold_ai4i_features"}
AFTER_GATE = {"score_models", "refresh_dashboards"}


@pytest.fixture(scope="module")
def airflow_venv():
    subprocess.run(["make", "airflow"], cwd=PROJECT_ROOT, check=True, timeout=1200)
    assert AIRFLOW.exists()
    return AIRFLOW


@pytest.fixture(scope="module")
def env(cfg, tmp_path_factory, kafka_broker, mlflow_server, thrift_server, superset_server):
    """The environment of redline and Airflow for this module: its own topics, model names
    and Airflow home; ``REDLINE_LAKE_ROOT`` is set per step."""
    tag = uuid.uuid4().hex[:8]
    out = dict(os.environ)
    airflow_home = cfg.home / "services" / "airflow"
    airflow_home.mkdir(parents=True, exist_ok=True)
    out.update({
        "REDLINE_KAFKA_TOPIC_PREFIX": f"af-{tag}.",
        "REDLINE_MLFLOW_EXPERIMENT": f"af-{tag}",
        "REDLINE_BIN": str(REDLINE),
        "AIRFLOW_HOME": str(airflow_home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(PROJECT_ROOT / "orchestration"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        # The DAG file runs `redline jobs list --json` when parsed: room on a busy machine.
        "AIRFLOW__CORE__DAGBAG_IMPORT_TIMEOUT": "300",
        "AIRFLOW__CORE__DAG_FILE_PROCESSOR_TIMEOUT": "300",
        # `airflow dags test` of 3.3.2 fails a run whose tasks all succeeded when the DAG
        # has a deadline (DagRun.update_state reads the alerts as ids); the deadline itself
        # is checked by test_dag_shape_retries_and_deadline and the callback below.
        "REDLINE_AIRFLOW_DEADLINE_HOURS": "0",
        # Gold's job-by-job audit off: the DAG's quality_gate task runs the same checks
        # (and more) once, over every table, and must pass; each audit would cost its own
        # Great Expectations run in a cold JVM (write-audit-publish itself:
        # tests/unit/test_write_audit_publish.py and the end-to-end demo).
        "REDLINE_QUALITY_AUDIT_GOLD": "false",
    })
    out.pop("REDLINE_QUALITY_FRESHNESS_HOURS", None)
    return out


def _run(cmd: list[str], env: dict, log: Path, timeout: float) -> int:
    with log.open("a") as f:
        f.write(f"\n$ {' '.join(cmd)}\n")
        f.flush()
        return subprocess.run(cmd, env=env, stdout=f, stderr=subprocess.STDOUT,
                              timeout=timeout, cwd=PROJECT_ROOT).returncode


def _redline(env: dict, log: Path, *args: str, timeout: float = 1200) -> None:
    code = _run([str(REDLINE), *args], env, log, timeout)
    assert code == 0, f"redline {' '.join(args)} exited {code}; see {log}"


def _task_states(airflow_home: Path) -> dict[str, tuple[str, int]]:
    """task_id -> (state, try_number) of the latest run of the DAG, from Airflow's DB."""
    with sqlite3.connect(airflow_home / "airflow.db") as db:
        run_id, state = db.execute(
            "SELECT run_id, state FROM dag_run WHERE dag_id = ? ORDER BY id DESC LIMIT 1",
            (DAG_ID,)).fetchone()
        rows = db.execute("SELECT task_id, state, try_number FROM task_instance "
                          "WHERE dag_id = ? AND run_id = ?", (DAG_ID, run_id)).fetchall()
    return {"_run": (state, 0), **{t: (s, n) for t, s, n in rows}}


def _sql(env: dict, query: str) -> list[dict]:
    out = subprocess.run([str(REDLINE), "sql", query, "--json"], env=env, capture_output=True,
                         text=True, timeout=600, cwd=PROJECT_ROOT)
    assert out.returncode == 0, out.stderr[-2000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def champion(spark, env, tmp_path_factory) -> str:
    """A champion failure model in the DAG's MLflow experiment, trained in this process on
    a lake of its own: silver written from the simulator (the events the DAG ingests),
    then the feature job and training. The model's version."""
    from simulated import write_silver

    from redline import pipeline
    from redline.config import load
    from redline.ml import run

    root = str(tmp_path_factory.mktemp("airflow-prep") / "lake")
    write_silver(spark, root, SimulationSpec(vehicles=VEHICLES, days=DAYS, seed=SEED))
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("REDLINE_LAKE_ROOT", root)
        mp.setenv("REDLINE_MLFLOW_EXPERIMENT", env["REDLINE_MLFLOW_EXPERIMENT"])
        prep = load()
        quiet = {"progress": lambda _: None}
        pipeline.run_jobs(spark, root, ["gold_vehicle_features"], alone=True, record=False,
                          **quiet)
        trained = run.train(spark, prep, "vehicle", **quiet)
        assert run.promote(spark, prep, "vehicle", **quiet).promoted
    return trained.version


@pytest.fixture(scope="module")
def runs(env, airflow_venv, champion, tmp_path_factory):
    """Both DAG runs: the task states of each, and the environment of the DAG's lake."""
    work = tmp_path_factory.mktemp("airflow")
    log = work / "commands.log"
    dag_env = {**env, "REDLINE_LAKE_ROOT": str(work / "lake")}
    _redline(dag_env, log, "simulate", "--vehicles", str(VEHICLES), "--days", str(DAYS),
             "--seed", str(SEED))
    airflow_home = Path(env["AIRFLOW_HOME"])
    assert _run([str(AIRFLOW), "db", "migrate"], dag_env, log, 600) == 0, log
    first = _run([str(AIRFLOW), "dags", "test", DAG_ID], dag_env, log, 3600)
    passed = _task_states(airflow_home)
    # Ingest and the jobs did their work in the first run (marked done, not run again):
    # the second run shows what the gate does, with a limit no table can meet.
    failing = {**dag_env, "REDLINE_QUALITY_FRESHNESS_HOURS": "silver.vehicle_telemetry=0.0001"}
    second = _run([str(AIRFLOW), "dags", "test", DAG_ID, "--mark-success-pattern",
                   "^(ingest|gold_.*)$"], failing, log, 1800)
    gated = _task_states(airflow_home)
    return {"first": (first, passed), "second": (second, gated), "env": dag_env, "log": log}


@pytest.mark.platform
def test_dag_run_succeeds_task_by_task(runs):
    code, states = runs["first"]
    assert code == 0, f"airflow dags test exited {code}; see {runs['log']}"
    assert states.pop("_run")[0] == "success"
    expected_tasks = {"ingest", "quality_gate", *AFTER_GATE, *WAITING,
                      "gold_kpi_attribution", "gold_capability", "gold_defect_pareto",
                      "gold_dimensions", "gold_first_pass_yield", "gold_manufacturing_kpis",
                      "gold_mtbf", "gold_reliability", "gold_spc", "gold_vehicle_features"}
    assert set(states) == expected_tasks
    wrong = {t: s for t, (s, _) in states.items()
             if s != ("skipped" if t in WAITING else "success")}
    assert not wrong, f"task states {wrong}; see {runs['log']}"


@pytest.mark.platform
def test_dag_run_wrote_every_layer_and_the_scores(runs, champion):
    env = runs["env"]
    expected = {}
    for e in Simulator(SimulationSpec(vehicles=VEHICLES, days=DAYS, seed=SEED)).events():
        expected[e.topic] = expected.get(e.topic, 0) + 1
    for topic, n in expected.items():
        assert _sql(env, f"SELECT count(*) AS n FROM bronze.{topic}")[0]["n"] == n, topic
        assert _sql(env, f"SELECT count(*) AS n FROM silver.{topic}")[0]["n"] == n, topic
    fpy = _sql(env, "SELECT sum(units) AS units FROM gold.first_pass_yield")[0]
    assert fpy["units"] == VEHICLES * 4  # every vehicle visits four stations once first
    for table in ("gold.spc_points", "gold.capability", "gold.defect_pareto",
                  "gold.station_kpis", "gold.dim_vehicle", "gold.vehicle_features"):
        assert _sql(env, f"SELECT count(*) AS n FROM {table}")[0]["n"] > 0, table
    scores = _sql(env, "SELECT count(DISTINCT vin) AS vins, min(failure_probability) AS lo, "
                       "max(failure_probability) AS hi FROM gold.vehicle_risk_scores")[0]
    assert 0 < scores["vins"] <= VEHICLES
    assert 0.0 <= scores["lo"] <= scores["hi"] <= 1.0
    versions = _sql(env, "SELECT DISTINCT model_version FROM gold.vehicle_risk_scores")
    assert [r["model_version"] for r in versions] == [champion]


@pytest.mark.platform
def test_failed_gate_stops_the_run_before_scoring(runs):
    code, states = runs["second"]
    assert code != 0, "the DAG run passed although the gate cannot"
    assert states.pop("_run")[0] == "failed"
    gate_state, tries = states["quality_gate"]
    assert gate_state == "failed"
    assert tries == 1, "a gate that ran and failed is a verdict: no retry"
    for task in AFTER_GATE:
        assert states[task][0] == "upstream_failed", (task, states[task])


def test_deadline_callback_imports_and_reports(airflow_venv):
    """The Deadline alert's callback is importable by name, as the triggerer imports it."""
    code = ("import asyncio, redline_deadline; print(asyncio.run(redline_deadline."
            "deadline_missed(dag_id='redline', hours=3, context={'dag_run': "
            "{'run_id': 'r1'}})))")
    out = subprocess.run([str(airflow_venv.parent / "python"), "-c", code], text=True,
                         capture_output=True, timeout=120,
                         env={**os.environ, "PYTHONPATH": str(PROJECT_ROOT / "orchestration")})
    assert out.returncode == 0, out.stderr[-2000:]
    assert "DAG redline run r1 missed its deadline: not finished 3 h after it was " \
           "queued" in out.stdout


_SHAPE = """
import json, os
from airflow.dag_processing.dagbag import DagBag
bag = DagBag(os.environ["AIRFLOW__CORE__DAGS_FOLDER"])
dag = bag.dags["redline"]
print(json.dumps({
    "errors": {k: str(v) for k, v in bag.import_errors.items()},
    "catchup": dag.catchup, "max_active_runs": dag.max_active_runs,
    "deadline": [{"reference": type(d.reference).__name__,
                  "seconds": d.interval.total_seconds(),
                  "callback": d.callback.path} for d in dag.deadline or []],
    "tasks": {t.task_id: {"upstream": sorted(t.upstream_task_ids), "retries": t.retries,
                          "retry_delay": t.retry_delay.total_seconds(),
                          "trigger_rule": str(t.trigger_rule.value),
                          "command": t.bash_command} for t in dag.tasks}}))
"""


def test_dag_shape_retries_and_deadline(airflow_venv, tmp_path):
    """The DAG as Airflow parses it: the order of the job declarations, retries on every
    task, the deadline, one run at a time and no catch-up."""
    env = {**os.environ, "AIRFLOW_HOME": str(tmp_path), "REDLINE_BIN": str(REDLINE),
           "AIRFLOW__CORE__DAGS_FOLDER": str(PROJECT_ROOT / "orchestration"),
           "AIRFLOW__CORE__LOAD_EXAMPLES": "False"}
    for var in ("REDLINE_AIRFLOW_TOPICS", "REDLINE_AIRFLOW_RETRIES",
                "REDLINE_AIRFLOW_RETRY_DELAY_MINUTES", "REDLINE_AIRFLOW_DEADLINE_HOURS"):
        env.pop(var, None)
    out = subprocess.run([str(airflow_venv.parent / "python"), "-c", _SHAPE], env=env,
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    dag = json.loads(out.stdout.strip().splitlines()[-1])
    assert dag["errors"] == {}
    assert dag["catchup"] is False and dag["max_active_runs"] == 1
    assert dag["deadline"] == [{"reference": "DagRunQueuedAtDeadline", "seconds": 3 * 3600,
                                "callback": "redline_deadline.deadline_missed"}]
    tasks = dag["tasks"]
    for task_id, t in tasks.items():
        assert (t["retries"], t["retry_delay"]) == (2, 300.0), task_id
    assert tasks["ingest"]["upstream"] == []
    assert tasks["ingest"]["command"].endswith(
        "ingest --available-now --topics vehicle_telemetry vehicle_dtc vehicle_builds "
        "station_results warranty_claims")
    # Ingest lands silver too: no silver task; the gold jobs reading silver follow ingest.
    assert not [t for t in tasks if t.startswith("silver_")]
    for job in ("gold_spc", "gold_vehicle_features", "gold_cmapss_features"):
        assert tasks[job]["upstream"] == ["ingest"], job
    assert tasks["gold_spc"]["command"].endswith("jobs run gold_spc --alone")
    jobs = {t for t in tasks if t.startswith("gold_")}
    assert set(tasks["quality_gate"]["upstream"]) == jobs
    assert tasks["quality_gate"]["trigger_rule"] == "none_failed"
    assert tasks["score_models"]["upstream"] == ["quality_gate"]
    assert tasks["refresh_dashboards"]["upstream"] == ["score_models"]
