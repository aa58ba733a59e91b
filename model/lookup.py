"""Vectorized lookups of market and fair prices by item and date.

Rows are sorted by (item, date); the composite key `item_position * DAY_SPAN + day`
is therefore sorted too, so one `searchsorted` resolves any number of queries to "the
last observation on or before the date".
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from enum import IntEnum

import numpy as np
import numpy.typing as npt
import pandas as pd

from model.artifact import TrainedModel
from model.signals import FloatArray

IntArray = npt.NDArray[np.int64]
DAY_SPAN = 1 << 20  # more days than any price history spans (about 2,800 years)
LATEST_DAY = np.iinfo(np.int64).min  # a query day meaning "the latest observation"
EPOCH = date(1970, 1, 1)


class Resolution(IntEnum):
    FOUND = 0
    UNKNOWN_ITEM = 1
    BEFORE_HISTORY = 2
    AFTER_HISTORY = 3


@dataclass(frozen=True)
class Resolved:
    """Per query: the table row (valid where status is FOUND) and the status."""

    rows: IntArray
    status: npt.NDArray[np.int8]


class PriceTable:
    def __init__(self, trained: TrainedModel) -> None:
        predictions = trained.predictions.sort_values(["item_id", "date"], ignore_index=True)
        items = trained.items.set_index("item_id").loc[predictions["item_id"].unique()]
        self.item_ids: list[str] = items.index.tolist()
        self.names: list[str] = items["name"].tolist()
        self.position = {item_id: index for index, item_id in enumerate(self.item_ids)}
        item_position = predictions["item_id"].map(self.position).to_numpy(np.int64)
        self.days: IntArray = to_day_numbers(predictions["date"])
        self.keys: IntArray = item_position * DAY_SPAN + self.days
        self.market: FloatArray = predictions["market_price"].to_numpy(np.float64)
        self.fair: FloatArray = predictions["fair_price"].to_numpy(np.float64)
        self.low: FloatArray = _optional(predictions, "fair_low")
        self.high: FloatArray = _optional(predictions, "fair_high")
        self.buy: FloatArray = _optional(predictions, "buy_price")
        self.first_row: IntArray = np.searchsorted(
            item_position, np.arange(len(self.item_ids)), side="left"
        ).astype(np.int64)
        self.last_row: IntArray = (
            np.searchsorted(item_position, np.arange(len(self.item_ids)), side="right") - 1
        ).astype(np.int64)
        self.first_day = int(self.days.min())
        self.last_day = int(self.days.max())

    def __len__(self) -> int:
        return len(self.item_ids)

    def first_date(self, position: int) -> date:
        return day_to_date(int(self.days[self.first_row[position]]))

    def start_date(self) -> date:
        return day_to_date(self.first_day)

    def last_date(self) -> date:
        return day_to_date(self.last_day)

    def resolve(self, positions: IntArray, days: IntArray) -> Resolved:
        """Rows for (item position, day) queries; position -1 is an unknown item and day
        `LATEST_DAY` asks for the item's latest observation.

        A query day far outside the history gives a key in a neighbouring item's range;
        the before/after checks below catch exactly those."""
        known = positions >= 0
        safe_positions = np.where(known, positions, 0)
        latest = self.last_row[safe_positions]
        asks_latest = days == LATEST_DAY
        query_days = np.where(asks_latest, 0, days)
        found = np.searchsorted(self.keys, safe_positions * DAY_SPAN + query_days, side="right") - 1
        rows = np.where(asks_latest, latest, found)
        status = np.full(len(positions), Resolution.FOUND, dtype=np.int8)
        status[~asks_latest & (rows < self.first_row[safe_positions])] = Resolution.BEFORE_HISTORY
        status[days > self.last_day] = Resolution.AFTER_HISTORY
        status[~known] = Resolution.UNKNOWN_ITEM
        return Resolved(rows=np.where(status == Resolution.FOUND, rows, -1), status=status)


def _optional(predictions: pd.DataFrame, column: str) -> FloatArray:
    """A float column, all NaN when the artifact has none (format 1: no band; before
    format 4: no buy price)."""
    if column not in predictions:
        return np.full(len(predictions), np.nan)
    return predictions[column].to_numpy(np.float64)


def to_day_numbers(dates: pd.Series) -> IntArray:
    return (dates.to_numpy("datetime64[D]") - np.datetime64(EPOCH, "D")).astype(np.int64)


def date_to_day(value: date) -> int:
    return (value - EPOCH).days


def day_to_date(day: int) -> date:
    return date.fromordinal(EPOCH.toordinal() + day)
