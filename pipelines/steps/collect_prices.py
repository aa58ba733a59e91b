"""Step: the price history the run trains on (the base history and the collected days, or
the run's `data`), in the raw schema, not yet validated."""

from pathlib import Path
from typing import Annotated

import pandas as pd
from zenml import log_metadata, step

from model.settings import load_settings
from pipelines.history import history_sources
from pipelines.settings import PipelineSettings
from pipelines.training_flow import gather


@step
def collect_prices(data: str | None = None) -> Annotated[pd.DataFrame, "raw_prices"]:
    """Reads only: the daily job collects (`pokewatch daily`), so a run never calls a price
    API."""
    settings = load_settings(PipelineSettings)
    frame = gather(settings, Path(data) if data else None)
    sources = [data] if data else [str(path) for path in history_sources(settings)]
    log_metadata({"sources": sources, "rows": len(frame)})
    return frame
