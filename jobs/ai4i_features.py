"""silver.ai4i_process -> gold.ai4i_features: the AI4I 2020 failure classifier's inputs.

The features and the label are ``ml/ai4i.py``'s pure transform; this is its gold job.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from redline import catalog
from redline.jobs.declare import Full, GoldJob
from redline.ml.ai4i import features

if TYPE_CHECKING:
    from redline.jobs.declare import Inputs, Outputs


def _features(t: Inputs) -> Outputs:
    return {catalog.AI4I_FEATURES: features(t[catalog.silver("ai4i_process")])}


JOB = GoldJob(
    name="gold_ai4i_features",
    description="silver.ai4i_process -> gold.ai4i_features (failure classifier inputs "
                "and label)",
    inputs=(catalog.silver("ai4i_process"),),
    outputs=(catalog.AI4I_FEATURES,),
    transform=_features,
    incremental=Full("the data set is 10,000 process runs, replayed at once: a full "
                     "recompute takes seconds"),
)
