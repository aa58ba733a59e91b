"""Pure feature functions on a price panel (no I/O, no look-ahead).

A panel is a wide DataFrame: one row per calendar day (a complete daily index), one
column per item, the observed market price or NaN where the item had no observation.
Every function here computes the value on day t from observations on days <= t only.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt
import pandas as pd

# 2: the listing features of `model.gbm` (a fit of version 1 cannot score version 2 rows).
FEATURE_SCHEMA_VERSION = "2"
# The listing prices the features use. `high_price` is left out: it is often a parked
# listing (999), not a price.
LISTING_COLUMNS = ("low_price", "mid_price", "direct_low_price")


def price_panel(prices: pd.DataFrame, value: str = "market_price") -> pd.DataFrame:
    """Long validated price rows to a daily panel (missing days are NaN, not dropped)."""
    wide = prices.pivot(index="date", columns="item_id", values=value)
    calendar = pd.date_range(wide.index.min(), wide.index.max(), freq="D", name="date")
    return wide.reindex(calendar).sort_index(axis=1)


@dataclass(frozen=True)
class Panels:
    """The market-price panel and, aligned with it, the listing-price panels of the
    sources that send them (TCGCSV's lowest, mid and direct-low listings; NaN where an
    item has none, all NaN for sealed history and PokemonPriceTracker)."""

    market: pd.DataFrame
    listings: Mapping[str, pd.DataFrame] = field(default_factory=dict)
    # Items no fit may learn from: the held-out sets of an evaluation (`held_out_items`).
    held_out: frozenset[str] = frozenset()

    def learnable(self) -> npt.NDArray[np.bool_]:
        """Per market column: may a fit learn from this item?"""
        return ~self.market.columns.isin(list(self.held_out))

    def listing(self, column: str) -> pd.DataFrame:
        """One listing panel (all NaN when the prices had no such column)."""
        found = self.listings.get(column)
        if found is not None:
            return found
        return pd.DataFrame(np.nan, index=self.market.index, columns=self.market.columns)

    def before(self, end: pd.Timestamp) -> Panels:
        """The days before `end`."""
        keep = self.market.index < end
        return Panels(
            self.market[keep],
            {name: panel[keep] for name, panel in self.listings.items()},
            self.held_out,
        )


def price_panels(prices: pd.DataFrame, held_out_sets: float = 0.0) -> Panels:
    """The market panel of `prices`, the listing panels of the listing columns that hold
    any price, and the items of a `held_out_sets` share of the sets held out of fitting."""
    market = price_panel(prices)
    listings = {
        column: price_panel(prices, column).reindex(index=market.index, columns=market.columns)
        for column in LISTING_COLUMNS
        if column in prices.columns and prices[column].notna().any()
    }
    return Panels(market, listings, held_out_items(prices, held_out_sets))


def held_out_items(prices: pd.DataFrame, share: float) -> frozenset[str]:
    """The items of about `share` of the sets, chosen by a hash of the set code (an item
    without one by its own id): the same sets on every run and machine."""
    if share <= 0:
        return frozenset()
    items = prices.drop_duplicates("item_id", keep="last")
    if "set_code" in items.columns:
        keys = items["set_code"].astype("string").fillna(items["item_id"].astype("string"))
    else:
        keys = items["item_id"].astype("string")
    buckets = [
        int.from_bytes(hashlib.sha256(str(key).encode()).digest()[:8], "big") / 2**64
        for key in keys
    ]
    chosen = np.asarray(buckets) < share
    return frozenset(items["item_id"].astype(str)[chosen])


def last_price(panel: pd.DataFrame) -> pd.DataFrame:
    """The last observed price on or before each day."""
    return panel.ffill()


def rolling_mean(panel: pd.DataFrame, observations: int) -> pd.DataFrame:
    """Mean of the last `observations` observations (not days), carried over gaps."""
    named = panel.rename_axis(index="date", columns="item_id")
    observed = named.stack().dropna().rename("price").reset_index()  # type: ignore[call-overload]
    windows = observed.groupby("item_id", sort=False)["price"].rolling(observations, min_periods=1)
    observed["value"] = windows.mean().reset_index(level=0, drop=True)
    wide = observed.pivot(index="date", columns="item_id", values="value")
    return wide.reindex(index=panel.index, columns=panel.columns).ffill()


def days_since_last_observation(panel: pd.DataFrame) -> pd.DataFrame:
    """Calendar days since the item's last observation (0 on an observed day)."""
    day_number = np.arange(len(panel), dtype="float64")[:, None]
    observed_on = pd.DataFrame(
        np.where(panel.notna().to_numpy(), day_number, np.nan),
        index=panel.index,
        columns=panel.columns,
    ).ffill()
    return observed_on.rsub(day_number[:, 0], axis=0)


# Features of the quantile gradient-boosting strategy (model/gbm.py). They work on a panel
# of log prices (NaN where there is no observation); like the functions above, the value
# on day t uses observations on days <= t only.


def log_prices(panel: pd.DataFrame) -> pd.DataFrame:
    """Natural log of the observed prices (NaN where there is no observation)."""
    return panel.apply(np.log)


def first_observed(panel: pd.DataFrame) -> pd.DataFrame:
    """The item's first observed value, from its first observation day on (NaN before)."""
    first_day = panel.notna().cumsum().eq(1) & panel.notna()
    return panel.where(first_day).ffill()


def change_since(panel: pd.DataFrame, days: int) -> pd.DataFrame:
    """Observed value minus the last value observed on or before day t - `days`.

    Where the item has no observation that old, the change since its first observation.
    NaN on days without an observation.
    """
    change = panel - last_price(panel).shift(days)
    return change.fillna(panel - first_observed(panel))


def days_since_previous_observation(panel: pd.DataFrame) -> pd.DataFrame:
    """Calendar days between day t and the item's last observation strictly before t."""
    return days_since_last_observation(panel).shift(1) + 1.0


def rolling_over_days(panel: pd.DataFrame, days: int, how: str) -> pd.DataFrame:
    """`how` (mean, median, max, min, sum) of the observations in the last `days` days."""
    window = panel.rolling(days, min_periods=1)
    return pd.DataFrame(getattr(window, how)(), index=panel.index, columns=panel.columns)


def changed(panel: pd.DataFrame) -> pd.DataFrame:
    """1.0 on an observation that differs from the item's previous observation, else 0.0."""
    previous = last_price(panel).shift(1)
    moved = panel.notna() & previous.notna() & ((panel - previous).abs() > 1e-9)
    return moved.astype("float64")


def days_since_change(panel: pd.DataFrame, cap: float = 365.0) -> pd.DataFrame:
    """Days since the last observed change (since the first observation if none), capped."""
    day_number = np.arange(len(panel), dtype="float64")[:, None]
    moved = changed(panel).to_numpy() > 0
    first = panel.notna().cumsum().eq(1) & panel.notna()
    since = np.where(moved | first.to_numpy(), day_number, np.nan)
    last_event = pd.DataFrame(since, index=panel.index, columns=panel.columns).ffill()
    return last_event.rsub(day_number[:, 0], axis=0).clip(upper=cap)


def days_since_first_observation(panel: pd.DataFrame, cap: float = 730.0) -> pd.DataFrame:
    """The item's age in the data: days since its first observation, capped."""
    day_number = np.arange(len(panel), dtype="float64")[:, None]
    first = panel.notna().cumsum().eq(1) & panel.notna()
    first_day = pd.DataFrame(
        np.where(first.to_numpy(), day_number, np.nan), index=panel.index, columns=panel.columns
    ).ffill()
    return first_day.rsub(day_number[:, 0], axis=0).clip(upper=cap)


def daily_moves(panel: pd.DataFrame) -> pd.DataFrame:
    """Day-over-day change of the last observed value (0 across a gap, NaN before any)."""
    return last_price(panel).diff()


def rolling_volatility(panel: pd.DataFrame, days: int, min_days: int = 5) -> pd.DataFrame:
    """Standard deviation of the daily moves over the last `days` days."""
    return daily_moves(panel).rolling(days, min_periods=min_days).std()


def rolling_mean_abs_move(panel: pd.DataFrame, days: int, min_days: int = 5) -> pd.DataFrame:
    """Mean absolute daily move over the last `days` days."""
    return daily_moves(panel).abs().rolling(days, min_periods=min_days).mean()


def market_move(moves: pd.DataFrame, how: str, clip: float | None = None) -> pd.Series:
    """Cross-sectional median or mean of the items' moves observed on each day.

    `clip` bounds each item's move first (a mean is otherwise led by a few outliers).
    """
    values = moves if clip is None else moves.clip(-clip, clip)
    array = values.to_numpy()
    result = np.full(len(values), np.nan)
    has_value = ~np.isnan(array).all(axis=1)
    reduce = np.nanmedian if how == "median" else np.nanmean
    result[has_value] = reduce(array[has_value], axis=1)
    return pd.Series(result, index=moves.index)
