"""The served price table: every priced row, in a compact columnar layout that maps from disk.

Rows are sorted by (item, date): an item's rows are one contiguous slice, found through
the per-item `first_row` and `last_row`, and a query resolves to "the item's last
observation on or before the date" by a binary search of that slice's days.

A row is 22 bytes: the day (uint16 days after the table's first day, int32 for a history
of more than 179 years) and five prices as int32 cents, one column each. Cents are exact:
the fair price and its band are served to the cent anyway, and a market or buy price
column that is not whole cents (or does not fit) stays float64. Saved
(`PriceTable.save`, with every artifact), the columns are an Arrow IPC file that
`PriceTable.load` memory-maps: nothing is parsed at start-up, a worker's memory holds the
pages it has read (its catalog reads each item's latest row, queries the rest), and every
worker on a machine shares one copy of them in the page cache. Two years of every
Pokémon printing (31 M rows) is therefore about 0.7 GB per machine, not a copy per worker.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from enum import IntEnum
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
import pyarrow as pa

from model.signals import FloatArray

IntArray = npt.NDArray[np.int64]
LATEST_DAY = np.iinfo(np.int64).min  # a query day meaning "the latest observation"
EPOCH = date(1970, 1, 1)
ROWS_FILE = "table.arrow"  # day and prices per row
INDEX_FILE = "table_items.arrow"  # item ids and their row slices
PRICE_COLUMNS = ("market_price", "buy_price", "fair_price", "fair_low", "fair_high")
CENTS_COLUMNS = ("fair_price", "fair_low", "fair_high")  # served to the cent
DAY_BASE = b"pokewatch.day_base"  # ROWS_FILE metadata: the day number of day offset 0
MISSING_CENTS = -(2**31)  # no price (NaN) in a cents column: int32's least value
MAX_CENTS = 2**31 - 1


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


class PriceColumn:
    """One price per row: int32 cents where that is lossless, else float64 (NaN: none)."""

    def __init__(self, values: npt.NDArray[Any]) -> None:
        self.values = values

    @classmethod
    def encode(cls, prices: FloatArray) -> PriceColumn:
        present = ~np.isnan(prices)
        cents = np.rint(prices[present] * 100)
        fits = np.isfinite(cents).all() and np.abs(cents).max(initial=0) <= MAX_CENTS
        if not fits or not np.array_equal(cents / 100, prices[present]):
            return cls(prices.astype(np.float64))
        encoded = np.full(len(prices), MISSING_CENTS, dtype=np.int32)
        encoded[present] = cents
        return cls(encoded)

    def take(self, rows: IntArray) -> FloatArray:
        values = self.values[rows]
        if values.dtype == np.int32:
            return np.where(values == MISSING_CENTS, np.nan, values / 100)
        return values.astype(np.float64, copy=False)


class PriceTable:
    """Items (`item_ids`, `names`, their metadata `items` in table order) and their rows.

    Built from a trained model's predictions (`build`) or mapped from its saved files
    (`load`); `info` is the model's record (`model.artifact`)."""

    def __init__(
        self,
        item_ids: list[str],
        items: pd.DataFrame,
        info: dict[str, Any],
        day_base: int,
        days: npt.NDArray[np.uint16 | np.int32],
        first_row: IntArray,
        prices: dict[str, PriceColumn],
    ) -> None:
        self.item_ids = item_ids
        self.items = items.loc[item_ids]
        self.names: list[str] = self.items["name"].tolist()
        self.info = info
        self.position = {item_id: index for index, item_id in enumerate(item_ids)}
        self.day_base = day_base  # `days` are day numbers minus this
        self.days = days
        self.first_row = first_row
        self.last_row: IntArray = np.append(first_row[1:], len(days)) - 1
        self.prices = prices
        self.market, self.buy, self.fair, self.low, self.high = (
            prices[column] for column in PRICE_COLUMNS
        )
        # Lists: the per-query search reads them as Python ints.
        self._first = first_row.tolist()
        self._last = self.last_row.tolist()
        # Each item's rows are in day order: its first and last rows bound its days (and
        # reading only those keeps the mapped days out of memory until queries need them).
        self.first_day = day_base + int(days[first_row].min())
        self.last_day = day_base + int(days[self.last_row].max())

    @classmethod
    def build(
        cls, predictions: pd.DataFrame, items: pd.DataFrame, info: dict[str, Any]
    ) -> PriceTable:
        """The table of priced rows (`model.artifact.PREDICTION_COLUMNS`; `buy_price`,
        `fair_low` and `fair_high` may be missing: older artifacts) and item metadata."""
        rows = predictions.sort_values(["item_id", "date"], ignore_index=True)
        codes, uniques = pd.factorize(rows["item_id"], sort=False)
        first_row = np.searchsorted(codes, np.arange(len(uniques)), side="left").astype(np.int64)
        prices = {}
        for column in PRICE_COLUMNS:
            values = rows[column].to_numpy(np.float64) if column in rows else np.nan
            values = np.broadcast_to(values, len(rows)).astype(np.float64)
            prices[column] = PriceColumn.encode(
                np.round(values, 2) if column in CENTS_COLUMNS else values
            )
        day_numbers = to_day_numbers(rows["date"])
        day_base = int(day_numbers.min())
        offsets = day_numbers - day_base
        fits = offsets.max(initial=0) <= np.iinfo(np.uint16).max
        return cls(
            [str(item_id) for item_id in uniques],
            items.set_index("item_id"),
            info,
            day_base,
            offsets.astype(np.uint16 if fits else np.int32),
            first_row,
            prices,
        )

    def save(self, directory: Path) -> None:
        """Write `ROWS_FILE` and `INDEX_FILE` (items and info are the artifact's own files)."""
        _write_arrow(
            directory / ROWS_FILE,
            {"day": self.days, **{name: column.values for name, column in self.prices.items()}},
            {DAY_BASE: str(self.day_base).encode()},
        )
        _write_arrow(
            directory / INDEX_FILE,
            {"item_id": pa.array(self.item_ids, pa.string()), "first_row": self.first_row},
        )

    @classmethod
    def load(cls, directory: Path, items: pd.DataFrame, info: dict[str, Any]) -> PriceTable:
        """The table `save` wrote to `directory`, memory-mapped (never copied)."""
        rows = _mapped(directory / ROWS_FILE)
        index = _mapped(directory / INDEX_FILE)
        metadata = rows.schema.metadata or {}
        if DAY_BASE not in metadata:
            raise ValueError(f"{directory / ROWS_FILE} does not say its first day")
        return cls(
            index.column("item_id").to_pylist(),
            items.set_index("item_id"),
            info,
            int(metadata[DAY_BASE]),
            _array(rows, "day"),
            _array(index, "first_row"),
            {name: PriceColumn(_array(rows, name)) for name in PRICE_COLUMNS},
        )

    def __len__(self) -> int:
        return len(self.item_ids)

    @property
    def rows(self) -> int:
        return len(self.days)

    @property
    def data_as_of(self) -> date:
        """The newest day the table holds prices for (a published table says so itself)."""
        recorded = self.info.get("data_as_of")
        return date.fromisoformat(str(recorded)) if recorded else self.last_date()

    def day_numbers(self, rows: IntArray) -> IntArray:
        return self.days[rows].astype(np.int64) + self.day_base

    def first_date(self, position: int) -> date:
        return day_to_date(self.day_base + int(self.days[self._first[position]]))

    def start_date(self) -> date:
        return day_to_date(self.first_day)

    def last_date(self) -> date:
        return day_to_date(self.last_day)

    def resolve(self, positions: IntArray, days: IntArray) -> Resolved:
        """Rows for (item position, day) queries; position -1 is an unknown item and day
        `LATEST_DAY` asks for the item's latest observation."""
        count = len(positions)
        rows = np.full(count, -1, dtype=np.int64)
        status = np.full(count, Resolution.FOUND, dtype=np.int8)
        for index, (position, day) in enumerate(
            zip(positions.tolist(), days.tolist(), strict=True)
        ):
            if position < 0:
                status[index] = Resolution.UNKNOWN_ITEM
            elif day == LATEST_DAY:
                rows[index] = self._last[position]
            elif day > self.last_day:
                status[index] = Resolution.AFTER_HISTORY
            elif day < self.first_day:
                status[index] = Resolution.BEFORE_HISTORY
            else:
                first, offset = self._first[position], day - self.day_base
                found = int(
                    self.days[first : self._last[position] + 1].searchsorted(offset, "right")
                )
                if found == 0:
                    status[index] = Resolution.BEFORE_HISTORY
                else:
                    rows[index] = first + found - 1
        return Resolved(rows=rows, status=status)


def _write_arrow(
    path: Path, columns: dict[str, Any], metadata: dict[bytes, bytes] | None = None
) -> None:
    batch = pa.record_batch(list(columns.values()), names=list(columns), metadata=metadata)
    with pa.OSFile(str(path), "wb") as sink, pa.ipc.new_file(sink, batch.schema) as writer:
        writer.write_batch(batch)


def _mapped(path: Path) -> pa.RecordBatch:
    """The one record batch of an Arrow IPC file, its buffers pointing into the mapping."""
    reader = pa.ipc.open_file(pa.memory_map(str(path), "r"))
    if reader.num_record_batches != 1:
        raise ValueError(f"{path} holds {reader.num_record_batches} record batches, not 1")
    return reader.get_batch(0)


def _array(batch: pa.RecordBatch, name: str) -> npt.NDArray[Any]:
    try:
        column = batch.column(name)
    except KeyError:
        raise ValueError(f"the table has no {name!r} column") from None
    values: npt.NDArray[Any] = column.to_numpy(zero_copy_only=True)
    return values


def to_day_numbers(dates: pd.Series) -> IntArray:
    return (dates.to_numpy("datetime64[D]") - np.datetime64(EPOCH, "D")).astype(np.int64)


def date_to_day(value: date) -> int:
    return (value - EPOCH).days


def day_to_date(day: int) -> date:
    return date.fromordinal(EPOCH.toordinal() + day)
