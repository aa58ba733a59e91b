from __future__ import annotations

from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from model.artifact import TrainedModel, price_table
from model.lookup import (
    EPOCH,
    INDEX_FILE,
    LATEST_DAY,
    MAX_CENTS,
    ROWS_FILE,
    PriceColumn,
    PriceTable,
    Resolution,
    date_to_day,
    day_to_date,
)

LATEST = LATEST_DAY
FOUND = Resolution.FOUND
UNKNOWN = Resolution.UNKNOWN_ITEM
BEFORE = Resolution.BEFORE_HISTORY
AFTER = Resolution.AFTER_HISTORY


def mapped(trained: TrainedModel, directory: Path) -> PriceTable:
    price_table(trained).save(directory)
    return PriceTable.load(directory, trained.items, trained.info)


@pytest.fixture(params=["built", "mapped"])
def table(request: pytest.FixtureRequest, trained: TrainedModel, tmp_path: Path) -> PriceTable:
    """The table as the tests build it and as the service maps it from its files."""
    return price_table(trained) if request.param == "built" else mapped(trained, tmp_path)


def resolve(table: PriceTable, *queries: tuple[str, str | None]) -> list[tuple[int, int]]:
    """(status, row) per (item id, ISO date or None for the latest) query."""
    positions = np.array([table.position.get(item, -1) for item, _ in queries], dtype=np.int64)
    days = np.array(
        [LATEST if on is None else date_to_day(date.fromisoformat(on)) for _, on in queries],
        dtype=np.int64,
    )
    resolved = table.resolve(positions, days)
    return list(zip(resolved.status.tolist(), resolved.rows.tolist(), strict=True))


def row_of(table: PriceTable, item: str, on: str) -> int:
    position = table.position[item]
    rows = np.arange(table.first_row[position], table.last_row[position] + 1)
    matches = rows[table.day_numbers(rows) == date_to_day(date.fromisoformat(on))]
    assert len(matches) == 1
    return int(matches[0])


def one(column: PriceColumn, row: int) -> float:
    return float(column.take(np.array([row]))[0])


def test_day_numbers() -> None:
    assert date_to_day(EPOCH) == 0
    assert date_to_day(date(2024, 1, 1)) == 19723
    assert day_to_date(19723) == date(2024, 1, 1)
    assert day_to_date(date_to_day(date(1999, 12, 31))) == date(1999, 12, 31)


def test_table_layout(table: PriceTable) -> None:
    assert len(table) == 4
    assert table.item_ids == ["a", "b", "c", "d"]
    assert table.names == ["Alpha", "Beta", "Gamma", "Delta"]
    assert table.first_date(3) == date(2024, 1, 3)
    assert table.last_date() == date(2024, 1, 5)
    assert np.all(np.diff(table.first_row) > 0)
    for position in range(len(table)):
        rows = np.arange(table.first_row[position], table.last_row[position] + 1)
        assert np.all(np.diff(table.day_numbers(rows)) > 0)


def test_latest(table: PriceTable) -> None:
    results = resolve(table, ("a", None), ("b", None), ("d", None))
    assert results == [
        (FOUND, row_of(table, "a", "2024-01-05")),
        (FOUND, row_of(table, "b", "2024-01-04")),
        (FOUND, row_of(table, "d", "2024-01-05")),
    ]
    assert one(table.market, results[1][1]) == 0.5


def test_exact_date(table: PriceTable) -> None:
    ((status, row),) = resolve(table, ("c", "2024-01-04"))
    assert status == FOUND
    assert row == row_of(table, "c", "2024-01-04")
    assert one(table.market, row) == 18.0
    assert one(table.fair, row) == pytest.approx(20.0)


def test_date_in_a_gap_is_the_last_observation_before(table: PriceTable) -> None:
    assert resolve(table, ("c", "2024-01-02"), ("d", "2024-01-04")) == [
        (FOUND, row_of(table, "c", "2024-01-01")),
        (FOUND, row_of(table, "d", "2024-01-03")),
    ]


def test_after_the_items_last_observation_but_inside_the_window(table: PriceTable) -> None:
    # b's last price is on 2024-01-04; the data window ends on 2024-01-05.
    assert resolve(table, ("b", "2024-01-05")) == [(FOUND, row_of(table, "b", "2024-01-04"))]


def test_before_first_observation(table: PriceTable) -> None:
    # d starts on 2024-01-03: the row before d's first is c's last, which must not leak.
    assert resolve(table, ("d", "2024-01-02"), ("a", "2023-12-31")) == [(BEFORE, -1), (BEFORE, -1)]


def test_after_the_data_window(table: PriceTable) -> None:
    assert resolve(table, ("a", "2024-01-06"), ("d", "2030-01-01")) == [(AFTER, -1), (AFTER, -1)]


def test_unknown_item(table: PriceTable) -> None:
    assert resolve(table, ("zzz", None), ("zzz", "2024-01-02")) == [(UNKNOWN, -1), (UNKNOWN, -1)]


def test_mixed_batch_in_order(table: PriceTable) -> None:
    results = resolve(
        table,
        ("a", "2024-01-02"),
        ("nope", None),
        ("d", "2024-01-01"),
        ("c", None),
        ("b", "2025-01-01"),
    )
    assert [status for status, _ in results] == [FOUND, UNKNOWN, BEFORE, FOUND, AFTER]
    assert results[0][1] == row_of(table, "a", "2024-01-02")
    assert results[3][1] == row_of(table, "c", "2024-01-05")


def test_date_before_1970_is_before_history(table: PriceTable) -> None:
    assert resolve(table, ("a", "1969-12-31"), ("a", "1950-06-01")) == [(BEFORE, -1), (BEFORE, -1)]


def test_every_query_matches_a_scan_of_the_predictions(
    table: PriceTable, trained: TrainedModel
) -> None:
    predictions = trained.predictions
    days = range(date_to_day(date(2023, 12, 30)), date_to_day(date(2024, 1, 8)))
    queries = [(item, day) for item in [*table.item_ids, "nope"] for day in [LATEST, *days]]
    resolved = table.resolve(
        np.array([table.position.get(item, -1) for item, _ in queries], dtype=np.int64),
        np.array([day for _, day in queries], dtype=np.int64),
    )
    last_day = date_to_day(predictions["date"].max().date())
    for (item, day), status, row in zip(queries, resolved.status, resolved.rows, strict=True):
        history = predictions[predictions["item_id"] == item].sort_values("date")
        known = (
            history[history["date"] <= pd.Timestamp(day_to_date(day))] if day != LATEST else history
        )
        if history.empty:
            assert status == UNKNOWN
        elif day != LATEST and day > last_day:
            assert status == AFTER
        elif known.empty:
            assert status == BEFORE
        else:
            assert status == FOUND
            expected = known.iloc[-1]
            assert table.day_numbers(np.array([row]))[0] == date_to_day(expected["date"].date())
            assert one(table.market, row) == expected["market_price"]
            assert one(table.fair, row) == round(expected["fair_price"], 2)


def test_saved_table_is_mapped_compact_and_read_only(trained: TrainedModel, tmp_path: Path) -> None:
    table = mapped(trained, tmp_path)
    rows = len(trained.predictions)
    # A day offset and five prices in cents: 22 bytes a row, plus Arrow's padding (64 bytes
    # a column), schema and footer.
    assert table.days.dtype == np.uint16
    assert all(column.values.dtype == np.int32 for column in table.prices.values())
    assert 22 * rows <= (tmp_path / ROWS_FILE).stat().st_size <= 22 * rows + 4096
    assert (tmp_path / INDEX_FILE).is_file()
    assert not table.days.flags.writeable
    assert not table.days.flags.owndata
    with pytest.raises(ValueError, match="read-only"):
        table.market.values[0] = 1


def test_cents_are_exact_and_kept_only_where_lossless() -> None:
    cents = PriceColumn.encode(np.array([0.01, 1234.56, np.nan, 0.07]))
    assert cents.values.dtype == np.int32
    assert cents.take(np.arange(4)).tolist()[:2] == [0.01, 1234.56]
    assert np.isnan(cents.take(np.array([2])))[0]
    # Not whole cents, or too large for int32 cents: kept as float64, unchanged.
    for prices in ([1.005, 2.0], [MAX_CENTS / 100 + 1, 2.0], [np.inf, 1.0]):
        column = PriceColumn.encode(np.array(prices))
        assert column.values.dtype == np.float64
        assert column.take(np.arange(2)).tolist() == prices


def test_a_table_file_of_several_batches_is_refused(trained: TrainedModel, tmp_path: Path) -> None:
    import pyarrow as pa

    price_table(trained).save(tmp_path)
    index = pa.ipc.open_file(pa.memory_map(str(tmp_path / INDEX_FILE))).read_all()
    with (
        pa.OSFile(str(tmp_path / INDEX_FILE), "wb") as sink,
        pa.ipc.new_file(sink, index.schema) as writer,
    ):
        for batch in index.to_batches(max_chunksize=1):
            writer.write_batch(batch)
    with pytest.raises(ValueError, match="record batches, not 1"):
        PriceTable.load(tmp_path, trained.items, trained.info)


def test_a_history_longer_than_uint16_days_keeps_int32_days(
    trained: TrainedModel, tmp_path: Path
) -> None:
    predictions = trained.predictions.copy()
    first = predictions["date"] == predictions["date"].min()
    predictions.loc[first, "date"] = pd.Timestamp("1800-01-01")  # 80,000 days before 2019
    long = PriceTable.build(predictions, trained.items, trained.info)
    assert long.days.dtype == np.int32
    long.save(tmp_path)
    loaded = PriceTable.load(tmp_path, trained.items, trained.info)
    assert loaded.start_date() == date(1800, 1, 1)
    rows = np.arange(loaded.rows)
    assert np.array_equal(loaded.day_numbers(rows), long.day_numbers(rows))
    position = loaded.position["a"]
    assert loaded.first_date(position) == date(1800, 1, 1)
    assert resolve(loaded, ("a", "1900-01-01"), ("a", "1799-12-31"))[0][0] == FOUND
    assert resolve(loaded, ("a", "1799-12-31")) == [(BEFORE, -1)]
