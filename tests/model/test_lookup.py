from __future__ import annotations

from datetime import date

import numpy as np
import pytest

from model.artifact import TrainedModel
from model.lookup import (
    DAY_SPAN,
    EPOCH,
    LATEST_DAY,
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


@pytest.fixture
def table(trained: TrainedModel) -> PriceTable:
    return PriceTable(trained)


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
    matches = np.nonzero(
        (np.array(table.item_ids)[table.keys // DAY_SPAN] == item)
        & (table.days == date_to_day(date.fromisoformat(on)))
    )[0]
    assert len(matches) == 1
    return int(matches[0])


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
    assert np.all(np.diff(table.keys) > 0)


def test_latest(table: PriceTable) -> None:
    results = resolve(table, ("a", None), ("b", None), ("d", None))
    assert results == [
        (FOUND, row_of(table, "a", "2024-01-05")),
        (FOUND, row_of(table, "b", "2024-01-04")),
        (FOUND, row_of(table, "d", "2024-01-05")),
    ]
    assert table.market[results[1][1]] == 0.5


def test_exact_date(table: PriceTable) -> None:
    ((status, row),) = resolve(table, ("c", "2024-01-04"))
    assert status == FOUND
    assert row == row_of(table, "c", "2024-01-04")
    assert table.market[row] == 18.0
    assert table.fair[row] == pytest.approx(20.0)


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
