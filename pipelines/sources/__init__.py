"""Price sources: HTTP clients for PokemonPriceTracker and TCGCSV, and TCGCSV archives.

Every source turns what it fetched into rows of the raw schema (`model.schema`); the
collector validates them, so a source never drops a row it does not like.
"""

from __future__ import annotations

from datetime import date
from typing import Protocol

import pandas as pd


class SourceError(RuntimeError):
    """A source answered something we cannot use, or not at all; the message says which."""


class PriceSource(Protocol):
    name: str

    def fetch(self, day: date) -> pd.DataFrame:
        """Raw-schema rows of the tracked items observed on `day`."""
        ...
