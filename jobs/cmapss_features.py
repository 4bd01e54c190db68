"""silver.cmapss_cycles -> gold.cmapss_sensor_stats and gold.cmapss_features.

The protocol (operating conditions, per-condition normalisation on training engines,
near-zero-variance sensors, the capped RUL target) is ``ml/cmapss.py``; this is its job.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from redline import catalog
from redline.errors import RedlineError
from redline.jobs.declare import Full, GoldJob
from redline.ml.cmapss import features, finished, sensor_stats, unnormalised

if TYPE_CHECKING:
    from redline.jobs.declare import Inputs, Outputs


def _features(t: Inputs) -> Outputs:
    cycles = t.cache(t[catalog.silver("cmapss_cycles")])
    stats = t.cache(sensor_stats(cycles))
    rows = t.cache(features(cycles, stats))
    missing = unnormalised(rows).groupBy("dataset", "condition").count().collect()
    if missing:
        shown = ", ".join(f"{r['dataset']} condition {r['condition']} ({r['count']} cycles)"
                          for r in missing)
        raise RedlineError(
            "CMAPSS_NO_TRAINING_STATS",
            f"silver.cmapss_cycles has cycles with no training engines to normalise them "
            f"by: {shown}; replay the matching train_FD00x file (`redline replay cmapss`)")
    t.note(datasets=sorted(r[0] for r in stats.select("dataset").distinct().collect()))
    return {catalog.CMAPSS_SENSOR_STATS: stats, catalog.CMAPSS_FEATURES: finished(rows)}


JOB = GoldJob(
    name="gold_cmapss_features",
    description="silver.cmapss_cycles -> gold.cmapss_sensor_stats, gold.cmapss_features "
                "(RUL model inputs)",
    inputs=(catalog.silver("cmapss_cycles"),),
    outputs=(catalog.CMAPSS_SENSOR_STATS, catalog.CMAPSS_FEATURES),
    transform=_features,
    incremental=Full("the normalisation statistics are over every training engine of a "
                     "data set"),
)
