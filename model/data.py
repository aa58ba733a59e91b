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
    if path.is_dir():
        return read_partitions(path)
    if path.suffix == ".parquet":
        return pd.read_parquet(path)
    if path.suffix == ".csv":
        return pd.read_csv(path, dtype={"item_id": "string", "tcgplayer_id": "string"})
    raise SchemaError(f"unsupported price file type {path.suffix!r}: use .parquet or .csv")


def read_partitions(directory: Path) -> pd.DataFrame:
    """Every parquet file under `directory`, with hive-style `key=value` path parts as
    columns (`source=tcgcsv/date=2025-11-23/part.parquet`).

    Files are read one by one, so a column added in later files is kept (null in earlier
    ones); hidden files (`.`, `_`: temporary or metadata) are skipped."""
    frames = []
    for path in sorted(directory.rglob("*.parquet")):
        parts = path.relative_to(directory).parts
        if any(part.startswith((".", "_")) for part in parts):
            continue
        frame = pd.read_parquet(path)
        for part in parts[:-1]:
            key, separator, value = part.partition("=")
            if separator and key not in frame.columns:
                frame[key] = value
        frames.append(frame)
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def load_prices(path: Path = BUNDLED_PRICES) -> ValidatedPrices:
    """Load, normalize and validate price rows.

    TCGplayer sealed files take names from a `products.csv` beside them, TCGCSV price files
    set names from a `groups.csv` beside them, when present.
    """
    frame = read_price_file(path)
    products, groups = (
        pd.read_csv(path.parent / name)
        if path.is_file() and (path.parent / name).is_file()
        else None
        for name in ("products.csv", "groups.csv")
    )
    return validate_prices(normalize_known_format(frame, products, groups))
