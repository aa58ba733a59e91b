"""Reading price rows from files into the validated raw schema."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from model.schema import SchemaError, ValidatedPrices, normalize_known_format, validate_prices

BUNDLED_PRICES = Path(__file__).resolve().parent.parent / "data" / "sample" / "prices.parquet"


def read_price_file(path: Path) -> pd.DataFrame:
    """Parquet (a file or a directory of partitions) or CSV, as a DataFrame."""
    if not path.exists():
        raise FileNotFoundError(f"price data not found: {path}")
    if path.is_dir() or path.suffix == ".parquet":
        return pd.read_parquet(path)
    if path.suffix == ".csv":
        return pd.read_csv(path, dtype={"item_id": "string", "tcgplayer_id": "string"})
    raise SchemaError(f"unsupported price file type {path.suffix!r}: use .parquet or .csv")


def load_prices(path: Path = BUNDLED_PRICES) -> ValidatedPrices:
    """Load, normalize and validate price rows.

    TCGplayer sealed files take names from a `products.csv` beside them when present.
    """
    frame = read_price_file(path)
    catalog = path.parent / "products.csv"
    products = pd.read_csv(catalog) if catalog.is_file() and path.is_file() else None
    return validate_prices(normalize_known_format(frame, products))
