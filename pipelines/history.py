"""The price history the jobs train and score on: the base history and the collected days.

The base is `data.prices` (a file or partition directory), else the sample bundled with
the code (unless `data.bundled` is false); the collected days are every partition of
`collector.raw_dir`. A collected row wins over a base row of the same item and day. Names
of TCGplayer products come from the catalogue when it knows them (a price collected under
a placeholder name is named as soon as its product is known).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from model.data import BUNDLED_PRICES, read_price_file
from model.schema import (
    TCGPLAYER_SOURCE,
    SchemaError,
    ValidatedPrices,
    normalize_known_format,
    validate_prices,
)
from pipelines.catalogue import Catalogue
from pipelines.collector import read_collected
from pipelines.settings import PipelineSettings


def history_sources(settings: PipelineSettings) -> list[Path]:
    """Where the history comes from, for messages and run records."""
    base = settings.data.prices or (BUNDLED_PRICES if settings.data.bundled else None)
    raw_dir = settings.collector.resolve(settings.collector.raw_dir)
    return [path for path in (base, raw_dir) if path is not None and path.exists()]


def gather_history(settings: PipelineSettings, data: Path | None = None) -> pd.DataFrame:
    """History rows in the raw schema, not yet validated; `data` (e.g. `--data`) replaces
    the base and the collected days."""
    base = data or settings.data.prices or (BUNDLED_PRICES if settings.data.bundled else None)
    frames = []
    if base is not None:
        frames.append(normalize_known_format(read_price_file(base), _products_beside(base)))
    if data is None:
        collected = read_collected(settings.collector.resolve(settings.collector.raw_dir))
        if not collected.empty:
            frames.append(collected)
    if not frames:
        raise SchemaError("no price history: data.bundled is false and nothing was collected")
    rows = pd.concat(frames, ignore_index=True)
    # The same item and day in the base and the collected days: the collected row wins.
    day = pd.to_datetime(rows["date"], errors="coerce", format="mixed", utc=True).dt.normalize()
    duplicated = pd.DataFrame({"item": rows["item_id"], "day": day}).duplicated(keep="last")
    # Rows without a readable date are left for validation to reject (and report).
    return rows[~(duplicated & day.notna()).to_numpy()].reset_index(drop=True)


def validate_history(rows: pd.DataFrame, settings: PipelineSettings) -> ValidatedPrices:
    """Validated rows, TCGplayer names from the catalogue."""
    return _named(validate_prices(rows), settings)


def load_history(settings: PipelineSettings, data: Path | None = None) -> ValidatedPrices:
    return validate_history(gather_history(settings, data), settings)


def _products_beside(path: Path) -> pd.DataFrame | None:
    catalog = path.parent / "products.csv"
    return pd.read_csv(catalog) if path.is_file() and catalog.is_file() else None


def _named(checked: ValidatedPrices, settings: PipelineSettings) -> ValidatedPrices:
    """TCGplayer rows take name, number and rarity from the catalogue where it has them."""
    catalogue = Catalogue(settings.collector.resolve(settings.collector.catalogue_file)).read()
    valid = checked.valid
    if catalogue.empty or valid.empty:
        return checked
    tcgplayer = (valid["source"] == TCGPLAYER_SOURCE) & valid["tcgplayer_id"].notna()
    known = valid.loc[tcgplayer, "tcgplayer_id"].map(lambda key: key in catalogue.index)
    rows = valid.index[tcgplayer][known.to_numpy(dtype=bool)]
    if len(rows) == 0:
        return checked
    entries = catalogue.loc[valid.loc[rows, "tcgplayer_id"]]
    named = valid.copy()
    for column in ("name", "number", "rarity"):
        values = entries[column].to_numpy()
        present = pd.notna(values)
        named.loc[rows[present], column] = values[present]
    return ValidatedPrices(named, checked.rejected)
