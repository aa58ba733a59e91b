"""Build the bundled sample in data/sample/ from the real price data in ../shared/data.

Run once by a maintainer (the project itself runs without ../shared):
    python scripts/build_sample.py --shared ../shared/data
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd

from model.schema import normalize_ppt_cards, normalize_tcgplayer_sealed, validate_prices

SEED = 151
SEALED_PRODUCTS = 300
MIN_OBSERVATIONS = 60


def build(shared: Path, out: Path) -> pd.DataFrame:
    sealed = pd.read_parquet(shared / "sealed" / "tcgplayer_sealed_daily_prices.parquet")
    products = pd.read_csv(shared / "sealed" / "products.csv")
    observed = sealed.dropna(subset=["market_price"])
    counts = observed.groupby("product_id").size()
    eligible = np.sort(
        counts[counts >= MIN_OBSERVATIONS]
        .index.intersection(pd.Index(products["product_id"]))
        .to_numpy()
    )
    chosen = np.random.default_rng(SEED).choice(eligible, size=SEALED_PRODUCTS, replace=False)
    sealed_rows = normalize_tcgplayer_sealed(
        observed[observed["product_id"].isin(chosen)], products
    )
    cards = pd.concat(
        [pd.read_parquet(path) for path in sorted((shared / "sv2a").glob("*.parquet"))],
        ignore_index=True,
    )
    checked = validate_prices(
        pd.concat([sealed_rows, normalize_ppt_cards(cards)], ignore_index=True)
    )
    if not checked.rejected.empty:
        raise SystemExit(f"the sample would not be clean: {checked.summary()}")
    rows = checked.valid
    out.parent.mkdir(parents=True, exist_ok=True)
    rows.to_parquet(out, index=False, compression="zstd")
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--shared", type=Path, default=Path("../shared/data"))
    parser.add_argument("--out", type=Path, default=Path("data/sample/prices.parquet"))
    args = parser.parse_args()
    rows = build(args.shared, args.out)
    print(f"wrote {len(rows)} rows, {rows['item_id'].nunique()} items to {args.out}")


if __name__ == "__main__":
    main()
