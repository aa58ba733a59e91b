"""Bootstrap history from TCGCSV daily archives: one partition per archived day.

Archives are given as files, or as a date range to download (kept in the archive
directory, so a second backfill of the same days downloads nothing).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path

from pipelines.collector import CollectionReport, store_day
from pipelines.sources import SourceError
from pipelines.sources.tcgcsv import TcgcsvClient, TcgcsvSource, archive_prices

ARCHIVE_NAME = re.compile(r"prices-(\d{4}-\d{2}-\d{2})\.ppmd\.7z$")


def archive_day(path: Path) -> date:
    match = ARCHIVE_NAME.search(path.name)
    if not match:
        raise SourceError(f"{path.name}: expected an archive named prices-YYYY-MM-DD.ppmd.7z")
    return date.fromisoformat(match.group(1))


def days(start: date, end: date) -> Iterator[date]:
    for offset in range((end - start).days + 1):
        yield start + timedelta(days=offset)


def download_archives(client: TcgcsvClient, start: date, end: date, directory: Path) -> list[Path]:
    return [client.download_archive(day, directory) for day in days(start, end)]


def import_archives(
    archives: list[Path],
    source: TcgcsvSource,
    category_id: int,
    raw_dir: Path,
    quarantine_dir: Path,
) -> list[CollectionReport]:
    """Each archive's tracked items into its day's partition (replacing that day only)."""
    reports = []
    for path in sorted(archives, key=archive_day):
        day = archive_day(path)
        rows = source.rows_for(day, archive_prices(path, category_id))
        reports.append(store_day(rows, source.name, day, raw_dir, quarantine_dir))
    return reports
