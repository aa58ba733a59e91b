"""Bootstrap history offline from TCGCSV dumps you have: `.7z` archives and extracted
directories (`YYYY-MM-DD/<category>/<group>/prices`), one partition per day.

Nothing here needs the network: names come from the local catalogue (placeholders where it
does not know a product yet; the next collect names them). Importing a day again merges
into its partition, so a repeat adds nothing twice.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from functools import partial
from pathlib import Path
from typing import Any

from pipelines.collector import CollectionReport, store_day
from pipelines.sources.archive import (
    archive_day,
    dump_days,
    read_category_prices,
    read_dump_prices,
)
from pipelines.sources.tcgcsv import TcgcsvClient, TcgcsvPrice, TcgcsvSource, parse_results


@dataclass(frozen=True)
class DumpDay:
    """One day of a local dump, and how to read its category's prices files."""

    day: date
    origin: Path
    read: Callable[[], dict[int, Any]]


def dump_tasks(archives: list[Path], dumps: list[Path], category_id: int) -> list[DumpDay]:
    """Every day the given archives and dump directories hold, in date order."""
    tasks = [
        DumpDay(archive_day(path), path, partial(read_category_prices, path, category_id))
        for path in archives
    ]
    for directory in dumps:
        tasks += [
            DumpDay(day, folder, partial(read_dump_prices, folder, category_id))
            for day, folder in dump_days(directory).items()
        ]
    return sorted(tasks, key=lambda task: task.day)


def import_day(
    task: DumpDay, source: TcgcsvSource, raw_dir: Path, quarantine_dir: Path
) -> CollectionReport:
    """A dump day's tracked items into that day's partition."""
    prices = {
        group_id: parse_results(payload, TcgcsvPrice, f"{task.origin}:{group_id}")
        for group_id, payload in task.read().items()
    }
    rows = source.rows_from_dump(task.day, prices)
    return store_day(rows, source.name, task.day, raw_dir, quarantine_dir)


def days(start: date, end: date) -> Iterator[date]:
    for offset in range((end - start).days + 1):
        yield start + timedelta(days=offset)


def download_archives(client: TcgcsvClient, start: date, end: date, directory: Path) -> list[Path]:
    """Archives from a server that still has them (TCGCSV's own answers 403 since
    2026-09-16: the error says how to import local files instead)."""
    return [client.download_archive(day, directory) for day in days(start, end)]
