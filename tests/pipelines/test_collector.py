"""The collector's partitions: atomic under SIGKILL, idempotent per day, quarantine."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
from datetime import date
from pathlib import Path

import pandas as pd
import pytest

from pipelines.collector import partition_path, read_collected, store_day
from service.files import atomic_write

DAY = date(2025, 11, 23)


def rows(day: date, prices: dict[str, float | None]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "item_id": list(prices),
            "date": pd.Timestamp(day),
            "market_price": list(prices.values()),
            "name": [f"Item {item}" for item in prices],
            "source": "tcgcsv",
        }
    )


def test_sigkill_mid_write_leaves_the_previous_partition_intact(tmp_path: Path) -> None:
    target = tmp_path / "source=tcgcsv" / "date=2025-11-23" / "part.parquet"
    old = pd.DataFrame({"item_id": ["old"], "market_price": [1.0]})
    atomic_write(target, old.to_parquet(index=False))
    # The child writes a large new partition and freezes at fsync (data written, not yet
    # renamed) and tells us so; we kill it there.
    child = textwrap.dedent(
        f"""
        import os, sys, time
        import pandas as pd
        from pathlib import Path
        from service.files import atomic_write

        def freeze(fd):
            print("writing", flush=True)
            time.sleep(60)

        os.fsync = freeze
        new = pd.DataFrame({{"item_id": ["new"] * 2_000_000, "market_price": 2.0}})
        atomic_write(Path({str(target)!r}), new.to_parquet(index=False))
        """
    )
    process = subprocess.Popen(
        [sys.executable, "-c", child], stdout=subprocess.PIPE, text=True, cwd=Path.cwd()
    )
    assert process.stdout is not None
    assert process.stdout.readline().strip() == "writing"
    leftovers = list(target.parent.glob(".part.parquet.*"))
    assert leftovers
    assert leftovers[0].stat().st_size > 0
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=10)

    pd.testing.assert_frame_equal(pd.read_parquet(target), old)
    # The hidden temp file is ignored by readers of the partition directory.
    assert pd.read_parquet(tmp_path)["item_id"].tolist() == ["old"]


def test_rerunning_a_day_replaces_it_and_keeps_other_days(tmp_path: Path) -> None:
    raw, quarantine = tmp_path / "raw", tmp_path / "quarantine"
    store_day(rows(DAY, {"a": 1.0, "b": 2.0}), "tcgcsv", DAY, raw, quarantine)
    next_day = date(2025, 11, 24)
    store_day(rows(next_day, {"a": 1.5}), "tcgcsv", next_day, raw, quarantine)
    store_day(rows(DAY, {"a": 1.1, "b": 2.1}), "tcgcsv", DAY, raw, quarantine)

    collected = read_collected(raw).sort_values(["date", "item_id"], ignore_index=True)
    assert collected["item_id"].tolist() == ["a", "b", "a"]
    assert collected["market_price"].tolist() == [1.1, 2.1, 1.5]
    assert set(collected["source"]) == {"tcgcsv"}
    assert pd.to_datetime(collected["date"]).dt.date.tolist() == [DAY, DAY, next_day]


def test_bad_rows_are_quarantined_with_reasons(tmp_path: Path) -> None:
    raw, quarantine = tmp_path / "raw", tmp_path / "quarantine"
    batch = pd.concat(
        [rows(DAY, {"a": 1.0, "b": None, "c": -3.0}), rows(DAY, {"a": 9.0})], ignore_index=True
    )
    report = store_day(batch, "tcgcsv", DAY, raw, quarantine)
    assert (report.valid, report.rejected) == (1, 3)
    assert report.reasons == {
        "missing market_price": 1,
        "market_price not a positive number": 1,
        "duplicate item_id and date": 1,
    }
    held = pd.read_parquet(partition_path(quarantine, "tcgcsv", DAY))
    assert sorted(held["reason"]) == sorted(report.reasons)


def test_a_day_with_nothing_valid_keeps_what_was_collected(tmp_path: Path) -> None:
    raw, quarantine = tmp_path / "raw", tmp_path / "quarantine"
    store_day(rows(DAY, {"a": 1.0}), "tcgcsv", DAY, raw, quarantine)
    report = store_day(rows(DAY, {"a": None}), "tcgcsv", DAY, raw, quarantine)
    assert report.valid == 0
    assert report.partition is None
    assert read_collected(raw)["market_price"].tolist() == [1.0]


def test_collected_partitions_train_through_the_model_loader(tmp_path: Path) -> None:
    from model.data import load_prices

    raw, quarantine = tmp_path / "raw", tmp_path / "quarantine"
    store_day(rows(DAY, {"a": 1.0}), "tcgcsv", DAY, raw, quarantine)
    checked = load_prices(raw)
    assert checked.rejected.empty
    assert checked.valid[["item_id", "source"]].values.tolist() == [["a", "tcgcsv"]]


@pytest.mark.parametrize("missing", ["name", "market_price"])
def test_rows_without_a_required_column_are_refused(tmp_path: Path, missing: str) -> None:
    from model.schema import SchemaError

    with pytest.raises(SchemaError, match=missing):
        store_day(rows(DAY, {"a": 1.0}).drop(columns=[missing]), "tcgcsv", DAY, tmp_path, tmp_path)
