"""The TCGplayer product catalogue: name, number, rarity and group per product id, kept locally.

Names are metadata: prices never wait for them. A price whose product is not known (the
products request failed, or an archive imported offline) is collected under a placeholder
name (`model.schema.placeholder_name`), and the history (`pipelines.history`) takes the name
from here as soon as the catalogue knows the product: the next time its group's products
are fetched.
"""

from __future__ import annotations

import fcntl
from pathlib import Path

import pandas as pd

from service.files import atomic_write

COLUMNS = ("tcgplayer_id", "name", "number", "rarity", "set_code")


class Catalogue:
    def __init__(self, path: Path) -> None:
        self.path = path

    def read(self) -> pd.DataFrame:
        """Entries indexed by product id (text), empty when nothing is known yet."""
        if not self.path.is_file():
            return pd.DataFrame(columns=list(COLUMNS[1:]), index=pd.Index([], name=COLUMNS[0]))
        return pd.read_parquet(self.path).astype("string").set_index(COLUMNS[0])

    def update(self, entries: pd.DataFrame) -> int:
        """Add or replace entries (columns `COLUMNS`); returns how many products it now knows."""
        if entries.empty:
            return len(self.read())
        fresh = entries[list(COLUMNS)].astype("string").drop_duplicates(COLUMNS[0], keep="last")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with (self.path.parent / f".{self.path.name}.lock").open("a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            known = self.read().reset_index()
            merged = pd.concat([known, fresh], ignore_index=True).drop_duplicates(
                COLUMNS[0], keep="last"
            )
            atomic_write(self.path, merged.sort_values(COLUMNS[0]).to_parquet(index=False))
        return len(merged)
