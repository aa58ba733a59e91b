"""Deviation from the fair price and the BUY / HOLD / SELL signal.

Two rules (`SignalSettings.rule`):

- `band` (the default): BUY when the market price is below `fair_low`, SELL when it is
  above `fair_high`, else HOLD (and HOLD where there is no band). The band is the
  calibrated ~80 % interval of the price in h days, so BUY means "the model puts at least
  ~90 % probability on a rise".
- `fixed`: BUY when `deviation_pct = (market - fair) / fair` is at or below `buy_at`, SELL
  at or above `sell_at` (inclusive). With a fair price that forecasts only a week ahead,
  -10 % / +15 % almost never fire on real data (docs/model.md has the numbers).
- `expected`: the same thresholds on the deviation from the *expected* price in h days,
  the geometric mean of `fair_low`, `fair_price` and `fair_high` (the fair price where
  there is no band). On singles most weekly moves are exactly 0, so the median (the fair
  price) rarely leaves today's price; the band's skew says which way the rest goes
  (docs/model.md: the rule for singles, with -3 % / +1.2 %).
"""

from __future__ import annotations

from enum import StrEnum

import numpy as np
import numpy.typing as npt
from pydantic import Field, model_validator

from model.frozen import FrozenSettings

FloatArray = npt.NDArray[np.float64]
CodeArray = npt.NDArray[np.int8]


class Signal(StrEnum):
    HOLD = "HOLD"
    BUY = "BUY"
    SELL = "SELL"


# Vectorized code k stands for LABELS[k].
LABELS: tuple[Signal, ...] = tuple(Signal)
HOLD_CODE, BUY_CODE, SELL_CODE = (LABELS.index(signal) for signal in Signal)


class SignalRule(StrEnum):
    BAND = "band"
    FIXED = "fixed"
    EXPECTED = "expected"


class BuyPrice(StrEnum):
    MARKET = "market"  # BUY on the market price (recent sales)
    LISTING = "listing"  # BUY on the lowest listing where the source has one


class SignalSettings(FrozenSettings):
    """The signal rule; for `fixed` and `expected`, BUY at or below `buy_at`, SELL at or
    above `sell_at` (fractions: -0.10 is -10 %). `buy_on: listing` tests BUY on the price
    a buyer pays, the lowest listing (`buy_price`), where the row has one."""

    rule: SignalRule = SignalRule.BAND
    buy_on: BuyPrice = BuyPrice.MARKET

    buy_at: float = Field(default=-0.10, lt=0)
    sell_at: float = Field(default=0.15, gt=0)

    @model_validator(mode="after")
    def _ordered(self) -> SignalSettings:
        if self.buy_at >= self.sell_at:
            raise ValueError("buy_at must be below sell_at")
        return self


def deviation(market: FloatArray, fair: FloatArray) -> FloatArray:
    """`(market - fair) / fair`; NaN where the fair price is missing or not positive."""
    with np.errstate(divide="ignore", invalid="ignore"):
        result = (market - fair) / fair
    return np.where(fair > 0, result, np.nan)


def signal_codes(deviation_pct: FloatArray, thresholds: SignalSettings) -> CodeArray:
    """Vectorized codes of the `fixed` rule; an undefined (NaN) deviation is HOLD."""
    codes = np.full(deviation_pct.shape, HOLD_CODE, dtype=np.int8)
    codes[deviation_pct <= thresholds.buy_at] = BUY_CODE
    codes[deviation_pct >= thresholds.sell_at] = SELL_CODE
    return codes


def expected_price(fair: FloatArray, low: FloatArray, high: FloatArray) -> FloatArray:
    """The geometric mean of the band's edges and the fair price (the fair price where
    there is no band)."""
    with np.errstate(invalid="ignore"):
        mean = np.cbrt(low * fair * high)
    return np.where(np.isfinite(low) & np.isfinite(high), mean, fair)


def band_signal_codes(market: FloatArray, low: FloatArray, high: FloatArray) -> CodeArray:
    """Vectorized codes of the `band` rule: BUY below `low`, SELL above `high`.

    A missing (NaN) band is HOLD."""
    codes = np.full(market.shape, HOLD_CODE, dtype=np.int8)
    codes[market < low] = BUY_CODE
    codes[market > high] = SELL_CODE
    return codes


def rule_codes(
    market: FloatArray,
    fair: FloatArray,
    low: FloatArray,
    high: FloatArray,
    thresholds: SignalSettings,
    buy: FloatArray | None = None,
) -> CodeArray:
    """Vectorized codes of the configured rule. With `buy_on: listing`, BUY is decided on
    `buy` (the lowest listing) where it is known, SELL on the market price."""
    codes = _codes_at(market, fair, low, high, thresholds)
    if thresholds.buy_on == BuyPrice.LISTING and buy is not None:
        codes[codes == BUY_CODE] = HOLD_CODE
        codes[_codes_at(paid_price(market, buy), fair, low, high, thresholds) == BUY_CODE] = (
            BUY_CODE
        )
    return codes


def paid_price(market: FloatArray, buy: FloatArray) -> FloatArray:
    """What a buyer pays: the lowest listing where known, else the market price."""
    return np.where(np.isfinite(buy), buy, market)


def _codes_at(
    price: FloatArray,
    fair: FloatArray,
    low: FloatArray,
    high: FloatArray,
    thresholds: SignalSettings,
) -> CodeArray:
    if thresholds.rule == SignalRule.BAND:
        return band_signal_codes(price, low, high)
    return signal_codes(deviation(price, reference_price(fair, low, high, thresholds)), thresholds)


def reference_price(
    fair: FloatArray, low: FloatArray, high: FloatArray, thresholds: SignalSettings
) -> FloatArray:
    """The price the `fixed` and `expected` rules measure the deviation from."""
    if thresholds.rule == SignalRule.EXPECTED:
        return expected_price(fair, low, high)
    return fair


def signal_edge(
    market: FloatArray,
    fair: FloatArray,
    low: FloatArray,
    high: FloatArray,
    codes: CodeArray,
    thresholds: SignalSettings,
    buy_price: FloatArray | None = None,
) -> FloatArray:
    """How far past its threshold each BUY or SELL is, as a fraction (NaN for HOLD): the
    screener's strength. `band` rule: the distance outside the band relative to the band
    edge crossed, `(fair_low - price) / fair_low` or `(market - fair_high) / fair_high`;
    `fixed` and `expected` rules: the deviation beyond `buy_at` or `sell_at`. A BUY's
    price is the one the rule bought on (`buy_on`)."""
    edge = np.full(market.shape, np.nan)
    buy = codes == BUY_CODE
    sell = codes == SELL_CODE
    paid = market
    if thresholds.buy_on == BuyPrice.LISTING and buy_price is not None:
        paid = paid_price(market, buy_price)
    if thresholds.rule == SignalRule.BAND:
        edge[buy] = (low[buy] - paid[buy]) / low[buy]
        edge[sell] = (market[sell] - high[sell]) / high[sell]
    else:
        reference = reference_price(fair, low, high, thresholds)
        edge[buy] = thresholds.buy_at - deviation(paid, reference)[buy]
        edge[sell] = deviation(market, reference)[sell] - thresholds.sell_at
    return edge
