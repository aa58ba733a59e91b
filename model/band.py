"""The fair-price band: a rolling conformal calibration of any strategy's interval.

For each block of days the band is widened (or narrowed) by offsets learned from the
strategy's own out-of-sample forecasts whose target day lies before the block and whose
origin lies within the last `calibration_days` days (asymmetric conformalized quantile
regression): with q = 1 - (1 - coverage) / 2,

    c_low  = q-quantile of log(raw_low / target),   fair_low  = min(raw_low  * exp(-c_low),  fair)
    c_high = q-quantile of log(target / raw_high),  fair_high = max(raw_high * exp(c_high), fair)

so that about (1 - coverage) / 2 of recent targets fell below the band and as many above.
Items with a short history (fewer than `short_history_days` observed days up to the
origin) get offsets of their own, learned from the short-history rows alone when there are
`min_rows` of them: their errors are larger, and a band calibrated on long histories would
cover them less than it says.
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
from pydantic import Field

from model.frozen import FrozenSettings

FloatArray = npt.NDArray[np.float64]


class BandSettings(FrozenSettings):
    coverage: float = Field(default=0.8, gt=0, lt=1)
    calibration_days: int = Field(default=90, ge=1)
    min_rows: int = Field(default=100, ge=1)
    short_history_days: int = Field(default=14, ge=1)


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
    learnable: npt.NDArray[np.bool_] | None = None,
) -> Band:
    """Calibrated band panels (days x items) for forecasts made block by block.

    `prices` is the observed price panel (NaN: no observation), `block_starts` the day
    positions where blocks start (the first is 0); `learnable` marks the items (columns)
    whose residuals may calibrate (None: all)."""
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
    if learnable is not None:
        usable &= learnable[None, :]
    origin_day, origin_item = np.nonzero(usable)
    below_rows, above_rows = below[origin_day, origin_item], above[origin_day, origin_item]
    quantile = 1 - (1 - settings.coverage) / 2
    short = short_history(prices, settings)
    short_rows = short[origin_day, origin_item]

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
            offsets = {
                "offset_low": float(np.quantile(below_rows[calibration], quantile)),
                "offset_high": float(np.quantile(above_rows[calibration], quantile)),
            }
            chosen = calibration & short_rows
            short_offsets = None
            if chosen.sum() >= settings.min_rows:
                short_offsets = {
                    "rows": int(chosen.sum()),
                    "offset_low": float(np.quantile(below_rows[chosen], quantile)),
                    "offset_high": float(np.quantile(above_rows[chosen], quantile)),
                }
            calibrated = {"start": start, "rows": count, **offsets, "short": short_offsets}
            low[block], high[block] = apply_calibration(
                fair[block], lower[block], upper[block], short[block], calibrated
            )
            record.append(calibrated)
        else:
            if has_band:
                low[block], high[block] = lower[block], upper[block]
            record.append({"start": start, "rows": count, "offset_low": None, "offset_high": None})
    return Band(low, high, record)


def short_history(prices: FloatArray, settings: BandSettings) -> npt.NDArray[np.bool_]:
    """Per day and item: fewer than `short_history_days` observations up to that day."""
    return np.cumsum(~np.isnan(prices), axis=0) < settings.short_history_days


def apply_calibration(
    fair: FloatArray,
    raw_low: FloatArray,
    raw_high: FloatArray,
    short: npt.NDArray[np.bool_],
    calibration: dict[str, Any],
) -> tuple[FloatArray, FloatArray]:
    """A block's calibrated band: its offsets, and the short-history offsets (when it has
    them) where `short`."""
    low, high = apply_offsets(
        fair, raw_low, raw_high, calibration["offset_low"], calibration["offset_high"]
    )
    own = calibration.get("short")
    if own is not None:
        short_low, short_high = apply_offsets(
            fair, raw_low, raw_high, own["offset_low"], own["offset_high"]
        )
        low, high = np.where(short, short_low, low), np.where(short, short_high, high)
    return low, high


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
