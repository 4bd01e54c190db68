"""redline's pipeline as an Airflow DAG: ingest catch-up (Kafka -> bronze -> silver), the
gold jobs in the order of their tables, the quality gate, model scoring and the dashboard
refresh.

Every task runs the ``redline`` command, so Airflow's virtualenv never imports redline,
pyspark or the jobs (docs/airflow.md). The job tasks and their dependencies come from
``redline jobs list --json``, run when the DAG file is parsed: the graph is the one the
installed redline declares (``jobs/declare.py``), with one task per gold job, and a job
added to redline appears here without an edit. The silver steps of that list are not
tasks: the ingest task runs each topic's bronze and silver streams to the same offsets,
so a silver drain after it would find nothing left (and cost a Spark start); a gold job
reading silver runs after ``ingest``. Which redline, and which deployment of it:

- the executable: ``REDLINE_BIN`` in the environment of Airflow's processes, else
  ``redline`` on their ``PATH``;
- the topics the ingest task lands: ``REDLINE_AIRFLOW_TOPICS`` (default: the fleet's and
  the plants');
- the state folder and profile: the Airflow Variables ``redline_home`` and
  ``redline_profile`` when set, else ``REDLINE_HOME`` / ``REDLINE_PROFILE`` from the
  environment. Secrets stay where redline keeps them (``<home>/secrets``, 0600): nothing
  here holds one.

Every task retries (``REDLINE_AIRFLOW_RETRIES`` times, ``REDLINE_AIRFLOW_RETRY_DELAY_MINUTES``
apart), except a quality gate that ran and failed: that verdict fails the task at once and
blocks scoring and the refresh (``upstream_failed``). A gate that could not run (exit 2)
retries. A step whose input tables have no data yet (a data set nobody replayed) ends
``skipped``, and so do the steps after it. A run still unfinished
``REDLINE_AIRFLOW_DEADLINE_HOURS`` after it was queued misses its deadline (Airflow 3's
Deadline alert, the successor of 2.x's SLA): ``redline_deadline.deadline_missed`` reports it.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from datetime import datetime, timedelta

from airflow.providers.standard.operators.bash import BashOperator
from airflow.sdk import DAG, TriggerRule, Variable
from airflow.sdk.definitions.callback import AsyncCallback
from airflow.sdk.definitions.deadline import DeadlineAlert, DeadlineReference
from airflow.sdk.exceptions import AirflowException, AirflowFailException

DAG_ID = "redline"
SCHEDULE = os.environ.get("REDLINE_AIRFLOW_SCHEDULE", "0 4 * * *")
"""Cron expression (UTC): by default every night, so dashboards are current in the morning."""
RETRIES = int(os.environ.get("REDLINE_AIRFLOW_RETRIES", "2"))
RETRY_DELAY = timedelta(minutes=float(os.environ.get("REDLINE_AIRFLOW_RETRY_DELAY_MINUTES", "5")))
DEADLINE = timedelta(hours=float(os.environ.get("REDLINE_AIRFLOW_DEADLINE_HOURS", "3")))
"""0: no deadline. `airflow dags test` of Airflow 3.3.2 needs that: on a run's success it
reads the DAG's deadline alerts as database ids and fails (AttributeError: 'dict' object has
no attribute 'hex', in DagRun.update_state), although every task succeeded."""
TOPICS = os.environ.get("REDLINE_AIRFLOW_TOPICS", "").replace(",", " ").split()
"""The topics the ingest task lands. Default: those of the fleet and the plants (the silver
steps ``redline jobs list`` marks ``in_all``). A topic nobody publishes to would become an
empty bronze table, which the quality gate rightly fails: name the public data sets here
(``cmapss_cycles``, ``ai4i_process``) only where they are replayed."""

JOBS_SKIPPED = 3
"""Exit status of ``redline jobs run --alone`` when the step's inputs have no data yet."""
GATE_FAILED = 1
"""Exit status of ``redline quality gate`` when an expectation failed (2: could not run)."""

_SETTINGS = {"REDLINE_HOME": "redline_home", "REDLINE_PROFILE": "redline_profile"}
"""Environment variable -> the Airflow Variable that overrides it."""


def redline_executable() -> str:
    """The redline command this DAG runs: ``REDLINE_BIN``, else ``redline`` on PATH."""
    found = os.environ.get("REDLINE_BIN") or shutil.which("redline")
    if not found or not os.access(found, os.X_OK):
        raise RuntimeError("the redline command was not found: set REDLINE_BIN to its path "
                           "(e.g. <project>/.venv/bin/redline) in the environment of "
                           "Airflow's DAG processor and workers, or put it on their PATH")
    return found


def job_steps() -> list[dict]:
    """The steps of ``redline jobs list --json``: name, description, after (the steps
    writing its inputs). No Spark session starts for it."""
    result = subprocess.run([redline_executable(), "jobs", "list", "--json"],
                            capture_output=True, text=True, timeout=120)
    if result.returncode != 0:
        raise RuntimeError(f"`redline jobs list --json` failed (exit {result.returncode}): "
                           f"{result.stderr.strip()[-1000:]}")
    return json.loads(result.stdout)


class RedlineCommand(BashOperator):
    """``redline <command>`` with the deployment's executable, state folder and profile.

    An exit status in ``final_exit_codes`` is a verdict, not an outage: it fails the task
    without the retries; ``skipped_exit_code`` ends it skipped.
    """

    def __init__(self, *, command: str, final_exit_codes: tuple[int, ...] = (),
                 skipped_exit_code: int | None = None, **kwargs) -> None:
        super().__init__(bash_command=f'exec "$REDLINE_BIN" {command}', append_env=True,
                         skip_on_exit_code=skipped_exit_code, **kwargs)
        self.final_exit_codes = final_exit_codes

    def execute(self, context):
        # Resolved when the task runs, on the worker: Variables are not read at parse time.
        env = {"REDLINE_BIN": redline_executable()}
        for var, key in _SETTINGS.items():
            value = Variable.get(key, default=None) or os.environ.get(var)
            if value:
                env[var] = value
        self.env = env
        try:
            return super().execute(context)
        except AirflowException as exc:
            process = getattr(self.subprocess_hook, "sub_process", None)
            code = process.returncode if process is not None else None
            if code in self.final_exit_codes:
                raise AirflowFailException(
                    f"{self.bash_command} exited {code}: a verdict, not retried") from exc
            raise


with DAG(
    dag_id=DAG_ID,
    description="Kafka -> bronze/silver -> gold -> quality gate -> scores -> dashboards",
    schedule=SCHEDULE,
    start_date=datetime(2024, 1, 1),
    catchup=False,
    max_active_runs=1,
    # Delta on a local file system admits one writer per table, and every job appends to
    # ops.job_runs: the tasks of a run go one at a time.
    max_active_tasks=1,
    default_args={"retries": RETRIES, "retry_delay": RETRY_DELAY, "owner": "redline"},
    deadline=DeadlineAlert(
        reference=DeadlineReference.DAGRUN_QUEUED_AT, interval=DEADLINE,
        callback=AsyncCallback("redline_deadline.deadline_missed",
                               kwargs={"dag_id": DAG_ID, "hours": DEADLINE / timedelta(hours=1)}),
    ) if DEADLINE else None,
    tags=["redline"],
    doc_md=__doc__,
) as dag:
    steps = job_steps()
    topics = TOPICS or [s["name"].removeprefix("silver_") for s in steps
                        if s["name"].startswith("silver_") and s["in_all"]]
    ingest = RedlineCommand(task_id="ingest",
                            command=f"ingest --available-now --topics {' '.join(topics)}",
                            doc_md="Kafka -> bronze -> silver + quarantine for each topic, "
                                   "up to the offsets there now (exactly once).")
    gold = [s for s in steps if not s["name"].startswith("silver_")]
    jobs = {}
    for step in gold:
        jobs[step["name"]] = RedlineCommand(
            task_id=step["name"], command=f"jobs run {step['name']} --alone",
            skipped_exit_code=JOBS_SKIPPED, doc_md=step["description"])
    for step in gold:
        # A silver step upstream is the ingest task's work.
        upstream = {name if name in jobs else "ingest" for name in step["after"]}
        [jobs.get(name, ingest) for name in sorted(upstream or {"ingest"})] \
            >> jobs[step["name"]]
    gate = RedlineCommand(task_id="quality_gate", command="quality gate",
                          final_exit_codes=(GATE_FAILED,),
                          # A job skipped for want of input data does not hold the gate.
                          trigger_rule=TriggerRule.NONE_FAILED,
                          doc_md="Great Expectations over every table: exit 1 fails the "
                                 "run here, without retries.")
    score = RedlineCommand(task_id="score_models", command="ml score",
                           doc_md="Every champion model scores; review queue and drift.")
    refresh = RedlineCommand(task_id="refresh_dashboards", command="dashboards refresh",
                             doc_md="Tables registered in the Thrift Server, Superset's "
                                    "caches cleared.")
    list(jobs.values()) >> gate
    gate >> score >> refresh
