"""Deviation from the fair price and the BUY / HOLD / SELL signal."""

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


class SignalThresholds(BaseModel):
    """BUY at or below `buy_at`, SELL at or above `sell_at` (fractions: -0.10 is -10 %)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

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
    """Vectorized signal codes; an undefined (NaN) deviation is HOLD."""
    codes = np.full(deviation_pct.shape, HOLD_CODE, dtype=np.int8)
    codes[deviation_pct <= thresholds.buy_at] = BUY_CODE
    codes[deviation_pct >= thresholds.sell_at] = SELL_CODE
    return codes


def signal_for(deviation_pct: float, thresholds: SignalThresholds) -> Signal:
    """The signal for one deviation (NaN, i.e. no usable fair price, is HOLD)."""
    return LABELS[int(signal_codes(np.array([deviation_pct]), thresholds)[0])]
