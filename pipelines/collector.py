"""The daily collector: one parquet partition per source and day, written atomically.

Layout (hive style, so `pandas.read_parquet(raw_dir)` reads it all back with `source` and
`date` from the path):

    <raw_dir>/source=<source>/date=YYYY-MM-DD/part.parquet         valid rows
    <quarantine_dir>/source=<source>/date=YYYY-MM-DD/part.parquet  rejected rows + reason

A partition is written to a hidden temp file in its directory, fsynced, then moved over
the old one with `os.replace`, so a crash leaves either the old or the new partition,
never a torn one. Re-collecting a day replaces that day only; no other day is touched.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import pandas as pd

from model.schema import REQUIRED_COLUMNS, SchemaError, validate_prices
from pipelines.sources import PriceSource

PARTITION_FILE = "part.parquet"
# Carried by the path; pyarrow refuses a column that is both in the file and the path.
PARTITION_COLUMNS = ("source", "date")


@dataclass(frozen=True)
class CollectionReport:
    source: str
    day: date
    valid: int
    rejected: int
    reasons: dict[str, int]
    partition: Path | None

    def summary(self) -> str:
        text = f"{self.source} {self.day}: {self.valid} valid rows"
        if self.rejected:
            details = ", ".join(f"{reason}: {count}" for reason, count in self.reasons.items())
            text += f", {self.rejected} quarantined ({details})"
        return text + (f" -> {self.partition}" if self.partition else "")


def partition_path(root: Path, source: str, day: date) -> Path:
    return root / f"source={source}" / f"date={day.isoformat()}" / PARTITION_FILE


def write_partition_atomically(frame: pd.DataFrame, target: Path) -> None:
    """Write, fsync, rename over `target`, fsync the directory: old or new, never torn."""
    target.parent.mkdir(parents=True, exist_ok=True)
    # A leading dot keeps readers (pyarrow ignores '.' and '_' files) off the temp file.
    handle, temp_name = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
    temp = Path(temp_name)
    try:
        with os.fdopen(handle, "wb") as stream:
            frame.to_parquet(stream, index=False)
            stream.flush()
            os.fsync(stream.fileno())
        temp.replace(target)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    directory = os.open(target.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)


def store_day(
    rows: pd.DataFrame, source: str, day: date, raw_dir: Path, quarantine_dir: Path
) -> CollectionReport:
    """Validate one source's rows for one day and (re)write that day's partitions.

    Nothing valid: the existing partition (if any) is kept, and the report says 0 rows.
    """
    if rows.empty:
        return CollectionReport(source, day, 0, 0, {}, None)
    missing = [column for column in REQUIRED_COLUMNS if column not in rows.columns]
    if missing:
        raise SchemaError(f"{source} rows lack required column(s) {missing}")
    checked = validate_prices(rows)
    quarantine = partition_path(quarantine_dir, source, day)
    if checked.rejected.empty:
        quarantine.unlink(missing_ok=True)
    else:
        write_partition_atomically(_as_text(checked.rejected), quarantine)
    partition = None
    if not checked.valid.empty:
        partition = partition_path(raw_dir, source, day)
        write_partition_atomically(checked.valid.drop(columns=list(PARTITION_COLUMNS)), partition)
    reasons = {str(k): int(v) for k, v in checked.rejected["reason"].value_counts().items()}
    return CollectionReport(
        source, day, len(checked.valid), len(checked.rejected), reasons, partition
    )


def collect(
    sources: list[PriceSource], day: date, raw_dir: Path, quarantine_dir: Path
) -> list[CollectionReport]:
    return [
        store_day(source.fetch(day), source.name, day, raw_dir, quarantine_dir)
        for source in sources
    ]


def read_collected(raw_dir: Path) -> pd.DataFrame:
    """Every collected partition as raw-schema rows (empty when nothing was collected)."""
    if not any(raw_dir.glob(f"source=*/date=*/{PARTITION_FILE}")):
        return pd.DataFrame(columns=list(REQUIRED_COLUMNS))
    frame = pd.read_parquet(raw_dir)
    for column in PARTITION_COLUMNS:
        frame[column] = frame[column].astype("string")
    return frame


def _as_text(rejected: pd.DataFrame) -> pd.DataFrame:
    """Rejected rows keep what the source sent; as text, any mix of types can be stored."""
    return rejected.astype("string")
