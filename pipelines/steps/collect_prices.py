"""Step: the price rows the run trains on, normalized to the raw schema (not yet validated)."""

from pathlib import Path
from typing import Annotated

import pandas as pd
from zenml import log_metadata, step

from model.data import BUNDLED_PRICES, read_price_file
from model.schema import normalize_known_format
from model.settings import load_settings
from pipelines.settings import PipelineSettings


@step
def collect_prices(data: str | None = None) -> Annotated[pd.DataFrame, "raw_prices"]:
    """`data` (a file, or the collector's partition directory), else `data.prices`, else the
    bundled sample. The collector fills the partitions; this step only reads them, so a
    pipeline run never calls a price API (the schedule runs `pokewatch collect` first)."""
    settings = load_settings(PipelineSettings)
    path = Path(data) if data else settings.data.prices or BUNDLED_PRICES
    catalogue = path.parent / "products.csv"
    products = pd.read_csv(catalogue) if path.is_file() and catalogue.is_file() else None
    frame = normalize_known_format(read_price_file(path), products)
    log_metadata({"source": str(path), "rows": len(frame)})
    return frame
