"""Step: validate raw rows into the model's input; rejected rows become their own artifact.

The features proper (the daily item x day panel and the strategies' trailing statistics)
are computed inside `model.training`, the same code the artifact is built with, so
training and scoring cannot disagree about them.
"""

from typing import Annotated

import pandas as pd
from zenml import log_metadata, step

from model.settings import load_settings
from pipelines.settings import PipelineSettings
from pipelines.training_flow import validate


@step
def build_features(
    raw_prices: pd.DataFrame,
) -> tuple[Annotated[pd.DataFrame, "prices"], Annotated[pd.DataFrame, "rejected_prices"]]:
    checked = validate(raw_prices, load_settings(PipelineSettings))
    reasons = checked.rejected.get("reason", pd.Series(dtype="string")).value_counts()
    log_metadata(
        {
            "summary": checked.summary(),
            "valid_rows": len(checked.valid),
            "rejected_rows": len(checked.rejected),
            "rejected_by_reason": {str(k): int(v) for k, v in reasons.items()},
        }
    )
    return checked.valid, checked.rejected
