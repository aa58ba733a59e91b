"""Cut the TCGCSV test fixtures in tests/fixtures/tcgcsv/ from the real singles in ../shared.

Run once by a maintainer (the tests never read ../shared):
    python scripts/build_tcgcsv_fixtures.py --shared ../shared/data

Writes, for two real groups (Dragon Vault, Celebrations: Classic Collection) and six real
days (2025-09-21 .. 2025-09-26):
- `singles.parquet`: the rows, in the shared file's columns (the fake TCGCSV server of the
  tests serves them as the live `/prices` files);
- `groups.csv`: the two groups;
- `dump/2025-09-21/`, `dump/2025-09-22/`: an extracted dump (`<day>/3/<group>/prices`, plus
  one file of another category that importers must skip);
- `prices-2025-09-23.ppmd.7z`: the same layout as a PPMd 7-Zip archive, like TCGCSV's own.
Product names are not in the price files (TCGCSV serves them from `/products`): the tests
name products themselves.

And in tests/fixtures/singles/, for the singles model's tests: every day (36) of four real
groups of different kinds (Fossil, Double Crisis, Shining Fates: Shiny Vault, Crown Zenith:
Galarian Gallery) as `prices.parquet`, with their `groups.csv`.
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path
from typing import Any

import pandas as pd
import py7zr

GROUPS = (1426, 2931)
MODEL_GROUPS = (630, 1525, 2781, 17689)
DAYS = pd.date_range("2025-09-21", "2025-09-26", freq="D").date
DUMP_DAYS = DAYS[:2]
ARCHIVE_DAY = DAYS[2]
WIRE_FIELDS = {
    "product_id": "productId",
    "low_price": "lowPrice",
    "mid_price": "midPrice",
    "high_price": "highPrice",
    "market_price": "marketPrice",
    "direct_low_price": "directLowPrice",
    "sub_type_name": "subTypeName",
}


def envelope(results: list[dict[str, Any]]) -> dict[str, Any]:
    """Every TCGCSV answer: `{"success": true, "errors": [], "results": [...]}`."""
    return {"success": True, "errors": [], "results": results}


def price_results(rows: pd.DataFrame) -> list[dict[str, Any]]:
    """Price rows in TCGCSV's wire format (null where the source had no price)."""
    records = [
        {
            wire: (None if pd.isna(row[column]) else row[column])
            for column, wire in WIRE_FIELDS.items()
        }
        for _, row in rows.iterrows()
    ]
    for record, product_id in zip(records, rows["product_id"], strict=True):
        record["productId"] = int(product_id)
    return records


def day_files(rows: pd.DataFrame, day: Any) -> dict[str, bytes]:
    files = {
        f"{day.isoformat()}/3/{group}/prices": json.dumps(
            envelope(price_results(rows[(rows["date"] == day) & (rows["group_id"] == group)]))
        ).encode()
        for group in GROUPS
    }
    decoy = {
        "success": True,
        "errors": [],
        "results": [{"productId": 1, "subTypeName": "Normal", "marketPrice": 5.0}],
    }
    files[f"{day.isoformat()}/1/99/prices"] = json.dumps(decoy).encode()
    return files


def build(shared: Path, out: Path) -> None:
    singles = pd.read_parquet(shared / "singles" / "tcgcsv_pokemon_singles_daily_prices.parquet")
    chosen = singles[singles["group_id"].isin(GROUPS) & singles["date"].isin(DAYS)]
    chosen = chosen.sort_values(
        ["date", "group_id", "product_id", "sub_type_name"], ignore_index=True
    )
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    chosen.to_parquet(out / "singles.parquet", index=False)
    groups = pd.read_csv(shared / "singles" / "groups.csv")
    groups[groups["group_id"].isin(GROUPS)].to_csv(out / "groups.csv", index=False)
    for day in DUMP_DAYS:
        for name, content in day_files(chosen, day).items():
            path = out / "dump" / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(content)
    archive = out / f"prices-{ARCHIVE_DAY.isoformat()}.ppmd.7z"
    with py7zr.SevenZipFile(archive, "w", filters=[{"id": py7zr.FILTER_PPMD}]) as target:
        for name, content in day_files(chosen, ARCHIVE_DAY).items():
            target.writestr(content, name)
    print(f"{out}: {len(chosen)} rows, {chosen['product_id'].nunique()} products")


def build_singles(shared: Path, out: Path) -> None:
    singles = pd.read_parquet(shared / "singles" / "tcgcsv_pokemon_singles_daily_prices.parquet")
    chosen = singles[singles["group_id"].isin(MODEL_GROUPS)].sort_values(
        ["date", "group_id", "product_id", "sub_type_name"], ignore_index=True
    )
    out.mkdir(parents=True, exist_ok=True)
    chosen.to_parquet(out / "prices.parquet", index=False)
    groups = pd.read_csv(shared / "singles" / "groups.csv")
    groups[groups["group_id"].isin(MODEL_GROUPS)].to_csv(out / "groups.csv", index=False)
    print(f"{out}: {len(chosen)} rows, {chosen['product_id'].nunique()} products")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--shared", type=Path, default=Path("../shared/data"))
    parser.add_argument("--out", type=Path, default=Path("tests/fixtures/tcgcsv"))
    parser.add_argument("--singles-out", type=Path, default=Path("tests/fixtures/singles"))
    arguments = parser.parse_args()
    build(arguments.shared, arguments.out)
    build_singles(arguments.shared, arguments.singles_out)


if __name__ == "__main__":
    main()
