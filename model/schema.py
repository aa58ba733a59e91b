"""The raw price-row schema, item ids, and validation of incoming rows.

One row is one market-price observation of one item (a card printing or a sealed
product) on one day. Every source is normalized to these columns before anything else
touches it; see docs/data.md for the schema and the item-id scheme.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import pandas as pd

REQUIRED_COLUMNS: tuple[str, ...] = ("item_id", "date", "market_price", "name", "source")
OPTIONAL_TEXT_COLUMNS: tuple[str, ...] = (
    "set_code",
    "set_name",
    "number",
    "rarity",
    "tcgplayer_id",
)
# TCGplayer's listing prices, kept as the source sends them. None of them is a market price:
# `high_price` in particular is often a parked listing (999), never used as a price.
OPTIONAL_PRICE_COLUMNS: tuple[str, ...] = (
    "low_price",
    "mid_price",
    "high_price",
    "direct_low_price",
)
COLUMNS: tuple[str, ...] = REQUIRED_COLUMNS + OPTIONAL_TEXT_COLUMNS + OPTIONAL_PRICE_COLUMNS

ITEM_ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")
TCGPLAYER_SOURCE = "tcgcsv"
# Names are metadata: a price whose product is not in the catalogue is kept under this name
# until the catalogue knows it (see pipelines.history).
PLACEHOLDER_PREFIX = "TCGplayer product "
PPT_SOURCE = "pokemonpricetracker"


class SchemaError(ValueError):
    """The input cannot be read as price rows at all (e.g. a required column is missing)."""


@dataclass(frozen=True)
class ValidatedPrices:
    """Rows that passed validation, and the rejected ones with a `reason` column."""

    valid: pd.DataFrame
    rejected: pd.DataFrame

    def summary(self) -> str:
        total = len(self.valid) + len(self.rejected)
        text = f"{len(self.valid)} of {total} rows valid"
        if self.rejected.empty:
            return text
        reasons = self.rejected["reason"].value_counts()
        details = ", ".join(f"{reason}: {count}" for reason, count in reasons.items())
        return f"{text}; rejected {len(self.rejected)} ({details})"


def tcgplayer_item_id(product_id: int, printing: str = "Normal") -> str:
    """`tcg-<productId>` for the Normal printing, `tcg-<productId>-<printing-slug>` otherwise."""
    if printing == "Normal":
        return f"tcg-{product_id}"
    return f"tcg-{product_id}-{slugify(printing)}"


TCGPLAYER_ITEM_ID = re.compile(r"^tcg-\d+(?:-(?P<printing>[a-z0-9-]+))?$")


def printing_of(item_id: str) -> str | None:
    """The printing a TCGplayer item id names ("Normal" without a suffix, else the slug in
    words: `tcg-1-reverse-holofoil` is "Reverse Holofoil"); None for other sources' ids."""
    match = TCGPLAYER_ITEM_ID.fullmatch(item_id)
    if match is None:
        return None
    slug = match["printing"]
    if slug is None:
        return "Normal"
    return " ".join(word[:1].upper() + word[1:] for word in slug.split("-"))


def placeholder_name(tcgplayer_id: int | str) -> str:
    """The name of a TCGplayer product whose catalogue entry is not known (yet)."""
    return f"{PLACEHOLDER_PREFIX}{tcgplayer_id}"


def slugify(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def validate_prices(frame: pd.DataFrame) -> ValidatedPrices:
    """Split rows into valid and rejected, coercing types; never drops a row silently."""
    missing = [column for column in REQUIRED_COLUMNS if column not in frame.columns]
    if missing:
        raise SchemaError(
            f"price rows lack required column(s) {missing}; "
            f"expected at least {list(REQUIRED_COLUMNS)}"
        )
    rows = frame.reset_index(drop=True)
    item_id = rows["item_id"].astype("string").str.strip()
    # Offsets are converted to UTC, so one calendar (UTC days) holds every source.
    dates = pd.to_datetime(rows["date"], errors="coerce", format="mixed", utc=True).dt.tz_localize(
        None
    )
    price = pd.to_numeric(rows["market_price"], errors="coerce").astype("float64")
    name = rows["name"].astype("string").str.strip()
    source = rows["source"].astype("string").str.strip()

    reason = pd.Series(pd.NA, index=rows.index, dtype="string")

    def reject(mask: pd.Series, why: str) -> None:
        reason[mask & reason.isna()] = why

    reject(item_id.isna() | (item_id == ""), "missing item_id")
    reject(~item_id.fillna("").str.fullmatch(ITEM_ID_PATTERN.pattern), "malformed item_id")
    reject(dates.isna(), "unparseable date")
    reject(rows["market_price"].isna(), "missing market_price")
    reject(price.isna(), "market_price not a number")
    reject(price.isin([np.inf, -np.inf]) | (price <= 0), "market_price not a positive number")
    reject(name.isna() | (name == ""), "missing name")
    reject(source.isna() | (source == ""), "missing source")
    day = dates.dt.normalize()
    duplicate = pd.DataFrame({"item_id": item_id, "date": day})[reason.isna()].duplicated(
        keep="first"
    )
    reject(duplicate.reindex(rows.index, fill_value=False), "duplicate item_id and date")

    clean = pd.DataFrame(
        {"item_id": item_id, "date": day, "market_price": price, "name": name, "source": source}
    )
    for column in OPTIONAL_TEXT_COLUMNS:
        values = rows[column] if column in rows.columns else pd.Series(pd.NA, index=rows.index)
        clean[column] = values.astype("string")
    for column in OPTIONAL_PRICE_COLUMNS:
        values = rows[column] if column in rows.columns else pd.Series(np.nan, index=rows.index)
        numbers = pd.to_numeric(values, errors="coerce").astype("float64")
        clean[column] = numbers.where(numbers > 0)

    ok = reason.isna()
    valid = clean[ok].sort_values(["item_id", "date"], ignore_index=True)
    rejected = rows[~ok].assign(reason=reason[~ok]).reset_index(drop=True)
    return ValidatedPrices(valid=valid, rejected=rejected)


def normalize_tcgplayer_sealed(
    prices: pd.DataFrame, products: pd.DataFrame | None = None
) -> pd.DataFrame:
    """TCGplayer daily sealed prices (`date, product_id, market_price`) to raw rows.

    `products` (`product_id, name, set_code`) supplies names; without it the name is the id.
    """
    rows = pd.DataFrame(
        {
            "item_id": "tcg-" + prices["product_id"].astype("int64").astype("string"),
            "date": prices["date"],
            "market_price": prices["market_price"],
            "source": TCGPLAYER_SOURCE,
            "tcgplayer_id": prices["product_id"].astype("int64").astype("string"),
        }
    )
    if products is not None:
        catalog = products.set_index("product_id")
        rows["name"] = prices["product_id"].map(catalog["name"]).to_numpy()
        rows["set_code"] = prices["product_id"].map(catalog["set_code"]).astype("string").to_numpy()
    rows["name"] = rows.get("name", pd.Series(pd.NA, index=rows.index)).fillna(
        PLACEHOLDER_PREFIX + rows["tcgplayer_id"]
    )
    return rows.reset_index(drop=True)


def normalize_tcgcsv_prices(
    prices: pd.DataFrame, groups: pd.DataFrame | None = None
) -> pd.DataFrame:
    """Rows in TCGCSV's price-file format, one per day, product and printing
    (`date, group_id, product_id, sub_type_name, low_price, mid_price, high_price,
    market_price, direct_low_price`), to raw rows: each printing an item
    (`tcgplayer_item_id`), its group the set code, the listing prices kept.

    Product names are not in price files: a name stays the placeholder until the catalogue
    knows it. `groups` (`group_id, name, abbreviation`) names the sets when given."""
    product = prices["product_id"].astype("int64")
    printing = prices["sub_type_name"].astype("string").fillna("Normal")
    suffixes = {name: "" if name == "Normal" else f"-{slugify(name)}" for name in printing.unique()}
    # tcgplayer_item_id for every row, vectorized over the few printing names.
    item_id = "tcg-" + product.astype("string") + printing.map(suffixes).astype("string")
    rows = pd.DataFrame(
        {
            "item_id": item_id,
            "date": prices["date"],
            "market_price": prices["market_price"],
            "name": PLACEHOLDER_PREFIX + product.astype("string"),
            "source": TCGPLAYER_SOURCE,
            "set_code": prices["group_id"].astype("int64").astype("string"),
            "tcgplayer_id": product.astype("string"),
        }
    )
    if groups is not None:
        names = groups.set_index(groups["group_id"].astype("int64").astype("string"))["name"]
        rows["set_name"] = rows["set_code"].map(names).astype("string")
    for column in OPTIONAL_PRICE_COLUMNS:
        if column in prices.columns:
            rows[column] = prices[column].to_numpy()
    return rows.reset_index(drop=True)


def normalize_ppt_cards(cards: pd.DataFrame) -> pd.DataFrame:
    """PokemonPriceTracker card rows (`card_id, card_name, card_number, ...`) to raw rows."""
    set_code = cards["card_id"].str.split("_", n=1).str[0]
    return pd.DataFrame(
        {
            "item_id": cards["card_id"],
            "date": cards["date"],
            "market_price": cards["market_price"],
            "name": cards["card_name"],
            "source": cards["source"],
            "set_code": set_code,
            "number": cards["card_number"],
            "rarity": cards["rarity"],
            "tcgplayer_id": cards["tcgplayer_id"],
        }
    ).reset_index(drop=True)


def normalize_known_format(
    frame: pd.DataFrame,
    products: pd.DataFrame | None = None,
    groups: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Recognize the formats in use (raw schema, TCGCSV price files, TCGplayer sealed,
    PokemonPriceTracker)."""
    columns = set(frame.columns)
    if set(REQUIRED_COLUMNS) <= columns:
        return frame
    if {"card_id", "card_name", "market_price", "date"} <= columns:
        return normalize_ppt_cards(frame)
    if {"group_id", "product_id", "sub_type_name", "market_price", "date"} <= columns:
        return normalize_tcgcsv_prices(frame, groups)
    if {"product_id", "market_price", "date"} <= columns:
        return normalize_tcgplayer_sealed(frame, products)
    raise SchemaError(
        f"unrecognized price columns {sorted(columns)}; expected the raw schema "
        f"{list(REQUIRED_COLUMNS)} or a known source format"
    )
