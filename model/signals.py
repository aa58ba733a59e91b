"""Deviation from the fair price and the BUY / HOLD / SELL signal.

Two rules (`SignalThresholds.rule`):

- `band` (the default): BUY when the market price is below `fair_low`, SELL when it is
  above `fair_high`, else HOLD (and HOLD where there is no band). The band is the
  calibrated ~80 % interval of the price in h days, so BUY means "the model puts at least
  ~90 % probability on a rise".
- `fixed`: BUY when `deviation_pct = (market - fair) / fair` is at or below `buy_at`, SELL
  at or above `sell_at` (inclusive). With a fair price that forecasts only a week ahead,
  -10 % / +15 % almost never fire on real data (docs/model.md has the numbers).
"""

from __future__ import annotations

from enum import StrEnum

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, ConfigDict, Field, model_validator

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


class SignalThresholds(BaseModel):
    """The signal rule; for `fixed`, BUY at or below `buy_at`, SELL at or above `sell_at`
    (fractions: -0.10 is -10 %)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    rule: SignalRule = SignalRule.BAND

    buy_at: float = Field(default=-0.10, lt=0)
    sell_at: float = Field(default=0.15, gt=0)

    @model_validator(mode="after")
    def _ordered(self) -> SignalThresholds:
        if self.buy_at >= self.sell_at:
            raise ValueError("buy_at must be below sell_at")
        return self


def deviation(market: FloatArray, fair: FloatArray) -> FloatArray:
    """`(market - fair) / fair`; NaN where the fair price is missing or not positive."""
    with np.errstate(divide="ignore", invalid="ignore"):
        result = (market - fair) / fair
    return np.where(fair > 0, result, np.nan)


def signal_codes(deviation_pct: FloatArray, thresholds: SignalThresholds) -> CodeArray:
    """Vectorized codes of the `fixed` rule; an undefined (NaN) deviation is HOLD."""
    codes = np.full(deviation_pct.shape, HOLD_CODE, dtype=np.int8)
    codes[deviation_pct <= thresholds.buy_at] = BUY_CODE
    codes[deviation_pct >= thresholds.sell_at] = SELL_CODE
    return codes


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
    thresholds: SignalThresholds,
) -> CodeArray:
    """Vectorized codes of the configured rule."""
    if thresholds.rule == SignalRule.BAND:
        return band_signal_codes(market, low, high)
    return signal_codes(deviation(market, fair), thresholds)


def signal_edge(
    market: FloatArray,
    fair: FloatArray,
    low: FloatArray,
    high: FloatArray,
    codes: CodeArray,
    thresholds: SignalThresholds,
) -> FloatArray:
    """How far past its threshold each BUY or SELL is, as a fraction (NaN for HOLD): the
    screener's strength. `band` rule: the distance outside the band relative to the band
    edge crossed, `(fair_low - market) / fair_low` or `(market - fair_high) / fair_high`;
    `fixed` rule: the deviation beyond `buy_at` or `sell_at`."""
    edge = np.full(market.shape, np.nan)
    buy = codes == BUY_CODE
    sell = codes == SELL_CODE
    if thresholds.rule == SignalRule.BAND:
        edge[buy] = (low[buy] - market[buy]) / low[buy]
        edge[sell] = (market[sell] - high[sell]) / high[sell]
    else:
        deviation_pct = deviation(market, fair)
        edge[buy] = thresholds.buy_at - deviation_pct[buy]
        edge[sell] = deviation_pct[sell] - thresholds.sell_at
    return edge


def signal_for(deviation_pct: float, thresholds: SignalThresholds) -> Signal:
    """The `fixed` rule's signal for one deviation (NaN, no usable fair price, is HOLD)."""
    return LABELS[int(signal_codes(np.array([deviation_pct]), thresholds)[0])]
