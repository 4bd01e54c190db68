"""What happens when a run of redline's pipeline misses its deadline (the Deadline alert of
``redline_dag.py``, Airflow 3's successor of the 2.x SLA).

Airflow's triggerer imports this module by name (``redline_deadline.deadline_missed``): the
DAG folder is on its ``sys.path``. It is listed in ``.airflowignore``, so the DAG processor
does not parse it as a DAG file. Replace the body, or add a notifier next to it (Slack,
e-mail, a pager), to reach people instead of the triggerer's log.
"""

from __future__ import annotations

import logging

log = logging.getLogger("redline.deadline")


async def deadline_missed(dag_id: str, hours: float, context: dict | None = None,
                          **kwargs) -> str:
    """Report a run that was still unfinished ``hours`` after it was queued."""
    run = (context or {}).get("dag_run") or {}
    run_id = run.get("run_id", "?") if isinstance(run, dict) else getattr(run, "run_id", "?")
    message = (f"redline: DAG {dag_id} run {run_id} missed its deadline: not finished "
               f"{hours:g} h after it was queued; dashboards and scores are stale until it "
               f"completes")
    log.error(message)
    return message
