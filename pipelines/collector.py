"""The collector: one parquet partition per source and day, appended to, written atomically.

Layout (hive style, so `pandas.read_parquet(raw_dir)` reads it all back with `source` and
`date` from the path):

    <raw_dir>/source=<source>/date=YYYY-MM-DD/part.parquet         valid rows
    <quarantine_dir>/source=<source>/date=YYYY-MM-DD/part.parquet  rejected rows + reason

Snapshots are never lost and never duplicated: collecting a day again merges into its
partition (an item already there takes the newer price; items only in the old partition
stay), so a rerun, a second source run or a repeated backfill adds nothing twice. Each
partition is written through `service.files.atomic_write` (hidden temp file, fsync,
rename), so a crash, even SIGKILL, leaves the old partition or the new one, never a torn
one; no other day is touched.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date
from pathlib import Path

import pandas as pd

from model.data import read_partitions
from model.schema import REQUIRED_COLUMNS, SchemaError, validate_prices
from pipelines.sources import PriceSource, Snapshot
from service.files import atomic_write

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
    note: str = ""
    failures: tuple[str, ...] = ()

    def summary(self) -> str:
        text = f"{self.source} {self.day}: {self.valid} valid rows"
        if self.rejected:
            details = ", ".join(f"{reason}: {count}" for reason, count in self.reasons.items())
            text += f", {self.rejected} quarantined ({details})"
        text += f" -> {self.partition}" if self.partition else ""
        text += f" ({self.note})" if self.note else ""
        return "\n".join([text, *(f"  failed: {failure}" for failure in self.failures)])


def partition_path(root: Path, source: str, day: date) -> Path:
    return root / f"source={source}" / f"date={day.isoformat()}" / PARTITION_FILE


def store_day(
    rows: pd.DataFrame, source: str, day: date, raw_dir: Path, quarantine_dir: Path
) -> CollectionReport:
    """Validate one source's rows for one day and merge them into that day's partition.

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
        atomic_write(quarantine, _as_text(checked.rejected).to_parquet(index=False))
    partition = None
    if not checked.valid.empty:
        partition = partition_path(raw_dir, source, day)
        fresh = checked.valid.drop(columns=list(PARTITION_COLUMNS))
        atomic_write(partition, _merged(partition, fresh).to_parquet(index=False))
    reasons = {str(k): int(v) for k, v in checked.rejected["reason"].value_counts().items()}
    return CollectionReport(
        source, day, len(checked.valid), len(checked.rejected), reasons, partition
    )


def _merged(partition: Path, fresh: pd.DataFrame) -> pd.DataFrame:
    """The day's stored rows with `fresh` added; an item in both keeps the fresh row."""
    if not partition.is_file():
        return fresh
    stored = pd.read_parquet(partition)
    kept = stored[~stored["item_id"].isin(fresh["item_id"])]
    if kept.empty:
        return fresh
    merged = pd.concat([kept.astype(fresh.dtypes.to_dict(), errors="ignore"), fresh])
    return merged.sort_values("item_id", ignore_index=True)


def collect(
    source: PriceSource, day: date | None, raw_dir: Path, quarantine_dir: Path
) -> CollectionReport:
    """Fetch one source's day (None: its newest) and store it; the report carries the
    snapshot's note and the parts that could not be fetched."""
    snapshot: Snapshot = source.fetch(day)
    report = store_day(snapshot.rows, source.name, snapshot.day, raw_dir, quarantine_dir)
    return replace(report, note=snapshot.note, failures=snapshot.failures)


def read_collected(raw_dir: Path) -> pd.DataFrame:
    """Every collected partition as raw-schema rows (empty when nothing was collected)."""
    frame = read_partitions(raw_dir) if raw_dir.is_dir() else pd.DataFrame()
    return frame if not frame.empty else pd.DataFrame(columns=list(REQUIRED_COLUMNS))


def _as_text(rejected: pd.DataFrame) -> pd.DataFrame:
    """Rejected rows keep what the source sent; as text, any mix of types can be stored."""
    return rejected.astype("string")
