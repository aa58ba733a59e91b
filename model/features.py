"""Pure feature functions on a price panel (no I/O, no look-ahead).

A panel is a wide DataFrame: one row per calendar day (a complete daily index), one
column per item, the observed market price or NaN where the item had no observation.
Every function here computes the value on day t from observations on days <= t only.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

FEATURE_SCHEMA_VERSION = "1"


def price_panel(prices: pd.DataFrame, value: str = "market_price") -> pd.DataFrame:
    """Long validated price rows to a daily panel (missing days are NaN, not dropped)."""
    wide = prices.pivot(index="date", columns="item_id", values=value)
    calendar = pd.date_range(wide.index.min(), wide.index.max(), freq="D", name="date")
    return wide.reindex(calendar).sort_index(axis=1)


def last_price(panel: pd.DataFrame) -> pd.DataFrame:
    """The last observed price on or before each day."""
    return panel.ffill()


def lag(panel: pd.DataFrame, days: int) -> pd.DataFrame:
    """The last observed price on or before day t - `days`."""
    return last_price(panel).shift(days)


def returns(panel: pd.DataFrame, days: int) -> pd.DataFrame:
    """Simple return of the last price over `days` calendar days."""
    return last_price(panel) / lag(panel, days) - 1.0


def log_returns(panel: pd.DataFrame, days: int) -> pd.DataFrame:
    """Log return of the last price over `days` calendar days."""
    logged = last_price(panel).apply(np.log)
    return logged - logged.shift(days)


def rolling_mean(panel: pd.DataFrame, observations: int) -> pd.DataFrame:
    """Mean of the last `observations` observations (not days), carried over gaps."""
    return _over_observations(panel, observations, "mean")


def rolling_median(panel: pd.DataFrame, observations: int) -> pd.DataFrame:
    """Median of the last `observations` observations (not days), carried over gaps."""
    return _over_observations(panel, observations, "median")


def rolling_median_days(panel: pd.DataFrame, days: int) -> pd.DataFrame:
    """Median of the observations within the last `days` calendar days (NaN if none)."""
    return panel.rolling(days, min_periods=1).median()


def days_since_last_observation(panel: pd.DataFrame) -> pd.DataFrame:
    """Calendar days since the item's last observation (0 on an observed day)."""
    day_number = np.arange(len(panel), dtype="float64")[:, None]
    observed_on = pd.DataFrame(
        np.where(panel.notna().to_numpy(), day_number, np.nan),
        index=panel.index,
        columns=panel.columns,
    ).ffill()
    return observed_on.rsub(day_number[:, 0], axis=0)


def _over_observations(panel: pd.DataFrame, observations: int, how: str) -> pd.DataFrame:
    named = panel.rename_axis(index="date", columns="item_id")
    observed = named.stack().dropna().rename("price").reset_index()  # type: ignore[call-overload]
    windows = observed.groupby("item_id", sort=False)["price"].rolling(observations, min_periods=1)
    aggregated = windows.mean() if how == "mean" else windows.median()
    observed["value"] = aggregated.reset_index(level=0, drop=True)
    wide = observed.pivot(index="date", columns="item_id", values="value")
    return wide.reindex(index=panel.index, columns=panel.columns).ffill()
