"""The fair-price band: a rolling conformal calibration of any strategy's interval.

For each block of days the band is widened (or narrowed) by offsets learned from the
strategy's own out-of-sample forecasts whose target day lies before the block and whose
origin lies within the last `calibration_days` days (asymmetric conformalized quantile
regression): with q = 1 - (1 - coverage) / 2,

    c_low  = q-quantile of log(raw_low / target),   fair_low  = min(raw_low  * exp(-c_low),  fair)
    c_high = q-quantile of log(target / raw_high),  fair_high = max(raw_high * exp(c_high), fair)

so that about (1 - coverage) / 2 of recent targets fell below the band and as many above.
A strategy without a band of its own (`last`, `mean3`) uses raw_low = raw_high = fair:
its band is then the empirical quantiles of its recent residuals. Where fewer than
`min_rows` calibration rows exist (the first weeks of the history), the band is the
strategy's raw one, or none (NaN) for a strategy without a band.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, ConfigDict, Field

FloatArray = npt.NDArray[np.float64]


class BandSettings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    coverage: float = Field(default=0.8, gt=0, lt=1)
    calibration_days: int = Field(default=90, ge=1)
    min_rows: int = Field(default=100, ge=1)


@dataclass(frozen=True)
class Band:
    low: FloatArray
    high: FloatArray
    # Per block: first day, calibration rows, offsets (None where not calibrated).
    blocks: list[dict[str, Any]]


def calibrate(
    prices: FloatArray,
    horizon: int,
    fair: FloatArray,
    raw_low: FloatArray | None,
    raw_high: FloatArray | None,
    block_starts: Sequence[int],
    settings: BandSettings,
) -> Band:
    """Calibrated band panels (days x items) for forecasts made block by block.

    `prices` is the observed price panel (NaN: no observation), `block_starts` the day
    positions where blocks start (the first is 0)."""
    has_band = raw_low is not None and raw_high is not None
    lower = fair if raw_low is None else raw_low
    upper = fair if raw_high is None else raw_high
    days = len(prices)
    target = np.full(prices.shape, np.nan)
    target[: max(days - horizon, 0)] = prices[horizon:]
    with np.errstate(divide="ignore", invalid="ignore"):
        below = np.log(lower / target)
        above = np.log(target / upper)
    usable = np.isfinite(below) & np.isfinite(above) & np.isfinite(fair)
    origin_day, origin_item = np.nonzero(usable)
    below_rows, above_rows = below[origin_day, origin_item], above[origin_day, origin_item]
    quantile = 1 - (1 - settings.coverage) / 2

    low = np.full(prices.shape, np.nan)
    high = np.full(prices.shape, np.nan)
    record: list[dict[str, Any]] = []
    ends = [*block_starts[1:], days]
    for start, end in zip(block_starts, ends, strict=True):
        calibration = (origin_day + horizon < start) & (
            origin_day >= start - settings.calibration_days
        )
        count = int(calibration.sum())
        block = slice(start, end)
        if count >= settings.min_rows:
            offset_low = float(np.quantile(below_rows[calibration], quantile))
            offset_high = float(np.quantile(above_rows[calibration], quantile))
            low[block], high[block] = apply_offsets(
                fair[block], lower[block], upper[block], offset_low, offset_high
            )
            record.append(
                {
                    "start": start,
                    "rows": count,
                    "offset_low": offset_low,
                    "offset_high": offset_high,
                }
            )
        else:
            if has_band:
                low[block], high[block] = lower[block], upper[block]
            record.append({"start": start, "rows": count, "offset_low": None, "offset_high": None})
    return Band(low, high, record)


def apply_offsets(
    fair: FloatArray,
    raw_low: FloatArray,
    raw_high: FloatArray,
    offset_low: float,
    offset_high: float,
) -> tuple[FloatArray, FloatArray]:
    """The calibrated band from a raw one and a block's offsets (NaN where `fair` is)."""
    low = np.fmin(raw_low * np.exp(-offset_low), fair)
    high = np.fmax(raw_high * np.exp(offset_high), fair)
    missing = np.isnan(fair)
    low[missing] = np.nan
    high[missing] = np.nan
    return low, high


def coverage(target: FloatArray, low: FloatArray, high: FloatArray) -> tuple[float, float]:
    """Share of rows with a band whose target is inside it, and the share with a band."""
    has_band = np.isfinite(low) & np.isfinite(high)
    if not has_band.any():
        return float("nan"), 0.0
    inside = (target[has_band] >= low[has_band]) & (target[has_band] <= high[has_band])
    return float(inside.mean()), float(has_band.mean())
