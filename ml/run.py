"""The `redline ml` actions over every task: train, promote, score, review queue.

A task's own module (``ml/<task>_task.py``) knows its data and model; this module runs
the same action over any of them and keeps what all tasks share: a challenger per
training, promotion by the primary metric on held-out data, scoring with the champion,
and the review queue rebuilt after scoring.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Sequence
from types import ModuleType

from redline import catalog
from redline.config import Config
from redline.ml import registry, scoring
from redline.ml.tasks import TASKS, Task, TrainResult, get

Progress = Callable[[str], None]


def module(task: Task) -> ModuleType:
    return importlib.import_module(f"redline.ml.{task.name}_task")


def train(spark, cfg: Config, task: str, subset: str | None = None,
          progress: Progress = print, **options) -> TrainResult:
    """Train ``task`` (``options``: the task module's training settings, e.g. ``params``)."""
    t = get(task)
    return module(t).train(spark, cfg, t.subset(subset), progress=progress, **options)


def promote(spark, cfg: Config, task: str, subset: str | None = None,
            progress: Progress = print) -> registry.Decision:
    """Challenger against champion on the task's held-out data, by its primary metric."""
    t = get(task)
    subset = t.subset(subset)
    mod = module(t)
    registry.require(cfg, t.model_name(cfg, subset), registry.CHALLENGER)
    data = mod.held_out(spark, cfg, subset)
    return registry.promote(cfg, t.model_name(cfg, subset), t.metric, t.higher_is_better,
                            lambda uri: mod.evaluate(uri, data), progress)


def score(spark, cfg: Config, names: Sequence[str] = (), progress: Progress = print
          ) -> dict[str, object]:
    """Score with the champion of each task (all tasks with one when ``names`` is empty),
    then rebuild gold.review_queue; per task the rows written or why it was skipped."""
    out: dict[str, object] = {}
    for t in [get(n) for n in names] or list(TASKS.values()):
        subsets = t.subsets or (None,)
        champions = [s for s in subsets
                     if registry.version_by_alias(cfg, t.model_name(cfg, s),
                                                  registry.CHAMPION)]
        if not champions:
            out[t.name] = {"skipped": f"no @{registry.CHAMPION} model yet "
                                      f"(`redline ml train {t.name}`, then `ml promote`)"}
            progress(f"{t.name}: skipped, {out[t.name]['skipped']}")
            continue
        mod = module(t)
        out[t.name] = (mod.score(spark, cfg, champions, progress=progress) if t.subsets
                       else mod.score(spark, cfg, progress=progress))
    out["review_queue"] = scoring.build_review_queue(spark, cfg.lake_root, progress)
    return out


def review_queue(spark, cfg: Config, top: int) -> list[dict]:
    """The first ``top`` rows of gold.review_queue, as built by the last scoring."""
    from pyspark.sql import functions as F

    rows = (catalog.read(spark, cfg.lake_root, catalog.REVIEW_QUEUE)
            .orderBy(F.col("rank")).limit(top).collect())
    return [r.asDict() for r in rows]
