"""What every task's batch scoring writes besides its scores: drift and the review queue.

- ``gold.model_drift``: per day, the population stability index of every feature and of
  the score against the champion's training window (the reference logged with its run,
  ``ml/tasks.py``), a task's rows replaced at each scoring.
- ``gold.review_queue``: rebuilt from every score table present, the entities ranked for
  a person to look at (``ml/review.py``).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

import pandas as pd

from redline import catalog, lake
from redline.ml import drift, review, tasks
from redline.ml.cmapss import RUL_CAP


def entropy_udf():
    """A Spark column function: the binary predictive entropy (bits) of a probability."""
    from pyspark.sql import functions as F

    @F.pandas_udf("double")
    def entropy(p: pd.Series) -> pd.Series:
        return pd.Series(review.entropy(p.to_numpy(dtype=float)))

    return entropy


def write_drift(spark, lake_root: str, task: str, model_name: str, version: str,
                run_id: str, frame: pd.DataFrame, day_column: str,
                progress: Callable[[str], None] = print) -> pd.DataFrame:
    """PSI per day of ``frame``'s reference columns (features and ``tasks.SCORE``) into
    gold.model_drift, replacing the task's rows; the rows written."""
    references = tasks.drift_reference(run_id)
    rows = drift.drift_by_day(frame, day_column, references)
    now = datetime.now(UTC).replace(tzinfo=None)
    rows = rows.assign(task=task, model_name=model_name, model_version=version,
                       warn_threshold=drift.WARN_PSI, computed_at=now)
    rows["day"] = pd.to_datetime(rows["day"]).dt.date
    df = spark.createDataFrame(rows[[f.name for f in catalog.MODEL_DRIFT.schema().fields]],
                               schema=catalog.MODEL_DRIFT.schema())
    table = catalog.MODEL_DRIFT
    if catalog.exists(spark, lake_root, table):
        lake.replace_where(df, lake_root, table, f"task = {lake.sql_literal(task)}")
    else:
        lake.overwrite(df, lake_root, table)
    flagged = rows[rows["drifted"]]
    progress(f"{table.qualified_name}: {len(rows)} rows for {task} "
             f"({rows['day'].nunique()} days x {rows['feature'].nunique()} columns), "
             f"{len(flagged)} at PSI >= {drift.WARN_PSI}"
             + (": " + ", ".join(sorted(set(flagged['feature'])))[:300] if len(flagged) else ""))
    return rows


def _latest_vehicles(spark, lake_root: str) -> pd.DataFrame:
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    scores = catalog.read(spark, lake_root, catalog.VEHICLE_RISK_SCORES)
    latest = Window.partitionBy("vin").orderBy(F.col("as_of_date").desc())
    rows = (scores.withColumn("_n", F.row_number().over(latest)).where("_n = 1")
            .toPandas())
    rows = review.classifier_rows(rows)
    return rows.assign(task=tasks.VEHICLE.name, entity=rows["vin"], detail=[
        f"P(failure within 30 days) {p:.2f} as of {d}"
        for p, d in zip(rows["failure_probability"], rows["as_of_date"])])


def _engines(spark, lake_root: str) -> pd.DataFrame:
    from pyspark.sql import functions as F

    # Training engines ran to failure: only the test engines' remaining life is open.
    rows = (catalog.read(spark, lake_root, catalog.CMAPSS_RUL_SCORES)
            .where(F.col("split") == "test").toPandas())
    rows = review.rul_rows(rows, cap=RUL_CAP)
    return rows.assign(task=tasks.CMAPSS.name, entity=rows["engine_id"], detail=[
        f"RUL {p:.0f} +/- {s:.0f} cycles at cycle {c}"
        for p, s, c in zip(rows["rul_pred"], rows["rul_spread"], rows["cycle"])])


def _process_runs(spark, lake_root: str) -> pd.DataFrame:
    rows = review.classifier_rows(
        catalog.read(spark, lake_root, catalog.AI4I_FAILURE_SCORES).toPandas())
    return rows.assign(task=tasks.AI4I.name, entity=rows["udi"].astype(str), detail=[
        f"P(machine failure) {p:.2f}, product {pid}"
        for p, pid in zip(rows["failure_probability"], rows["product_id"])])


_SOURCES = ((catalog.VEHICLE_RISK_SCORES, _latest_vehicles),
            (catalog.CMAPSS_RUL_SCORES, _engines),
            (catalog.AI4I_FAILURE_SCORES, _process_runs))


def build_review_queue(spark, lake_root: str,
                       progress: Callable[[str], None] = print) -> int:
    """Rebuild gold.review_queue from the score tables present; its row count."""
    parts = [read(spark, lake_root) for table, read in _SOURCES
             if catalog.exists(spark, lake_root, table)]
    table = catalog.REVIEW_QUEUE
    columns = [f.name for f in table.schema().fields]
    if not parts:
        progress(f"{table.qualified_name}: no score tables yet, nothing to rank")
        return 0
    keep = ["task", "entity", "risk", "uncertainty", "detail", "model_name",
            "model_version", "scored_at"]
    queue = review.rank(pd.concat([p[keep] for p in parts], ignore_index=True))
    lake.overwrite(spark.createDataFrame(queue[columns], schema=table.schema()),
                   lake_root, table)
    progress(f"{table.qualified_name}: {len(queue)} entities ranked")
    return len(queue)
