"""Price sources: HTTP clients for PokemonPriceTracker and TCGCSV, and TCGCSV archives.

Every source turns what it fetched into rows of the raw schema (`model.schema`); the
collector validates them, so a source never drops a row it does not like.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Protocol

import pandas as pd


class SourceError(RuntimeError):
    """A source answered something we cannot use, or not at all; the message says which.

    `status` is the HTTP status when the source answered one."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class Snapshot:
    """The tracked items' raw-schema rows of one day, how they were obtained, and what
    could not be fetched (the rest is still stored)."""

    day: date
    rows: pd.DataFrame
    note: str = ""
    failures: tuple[str, ...] = ()


class PriceSource(Protocol):
    name: str

    def fetch(self, day: date | None) -> Snapshot:
        """The tracked items observed on `day` (None: the newest day the source has)."""
        ...
