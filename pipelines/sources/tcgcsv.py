"""TCGCSV (free, no key): TCGplayer groups, products and prices, live or from daily archives.

Live endpoints serve the current prices only; a past day is read from that day's archive
(`/archive/tcgplayer/prices-YYYY-MM-DD.ppmd.7z`, see `pipelines.sources.archive`). Product
names, numbers and rarities come from the live products endpoint (they do not change).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, TypeVar

import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from model.schema import TCGPLAYER_SOURCE, tcgplayer_item_id
from pipelines.settings import RetrySettings, TcgcsvSelection, TcgcsvSettings
from pipelines.sources import SourceError
from pipelines.sources.archive import archive_file_name, read_category_prices
from pipelines.sources.http import JsonClient


class _Wire(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)


class TcgcsvGroup(_Wire):
    group_id: int = Field(alias="groupId")
    name: str
    abbreviation: str | None = None


class ExtendedDatum(_Wire):
    name: str
    value: str | None = None


class TcgcsvProduct(_Wire):
    product_id: int = Field(alias="productId")
    name: str
    group_id: int | None = Field(default=None, alias="groupId")
    extended_data: list[ExtendedDatum] = Field(default=[], alias="extendedData")

    def extended(self, key: str) -> str | None:
        return next((datum.value for datum in self.extended_data if datum.name == key), None)


class TcgcsvPrice(_Wire):
    product_id: int = Field(alias="productId")
    sub_type_name: str = Field(alias="subTypeName")
    market_price: float | None = Field(default=None, alias="marketPrice")
    low_price: float | None = Field(default=None, alias="lowPrice")
    mid_price: float | None = Field(default=None, alias="midPrice")
    high_price: float | None = Field(default=None, alias="highPrice")

    @property
    def item_id(self) -> str:
        return tcgplayer_item_id(self.product_id, self.sub_type_name)


WireT = TypeVar("WireT", bound=_Wire)


def parse_results(payload: Any, row_type: type[WireT], where: str) -> list[WireT]:
    """`{"success": true, "errors": [], "results": [...]}` to typed rows, or a clear error."""
    if not isinstance(payload, dict):
        raise SourceError(f"{where}: expected a JSON object, got {type(payload).__name__}")
    if payload.get("success") is False:
        raise SourceError(f"{where}: the source reported errors {payload.get('errors')}")
    results = payload.get("results")
    if not isinstance(results, list):
        raise SourceError(f"{where}: expected `results` to be a list, got {type(results).__name__}")
    try:
        return TypeAdapter(list[row_type]).validate_python(results)  # type: ignore[valid-type]
    except ValidationError as error:
        raise SourceError(f"{where}: unexpected {row_type.__name__} rows: {error}") from None


class TcgcsvClient:
    def __init__(
        self,
        settings: TcgcsvSettings,
        retry: RetrySettings,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._category = settings.category_id
        self._http = JsonClient(settings.base_url, retry, settings.timeout_seconds, sleep=sleep)

    def close(self) -> None:
        self._http.close()

    def groups(self) -> list[TcgcsvGroup]:
        path = f"/tcgplayer/{self._category}/groups"
        return parse_results(self._http.get_json(path), TcgcsvGroup, path)

    def products(self, group_id: int) -> list[TcgcsvProduct]:
        path = f"/tcgplayer/{self._category}/{group_id}/products"
        return parse_results(self._http.get_json(path), TcgcsvProduct, path)

    def prices(self, group_id: int) -> list[TcgcsvPrice]:
        path = f"/tcgplayer/{self._category}/{group_id}/prices"
        return parse_results(self._http.get_json(path), TcgcsvPrice, path)

    def download_archive(self, day: date, directory: Path) -> Path:
        """The day's price archive in `directory` (downloaded once, then reused)."""
        target = directory / archive_file_name(day)
        if not target.is_file():
            content = self._http.get(f"/archive/tcgplayer/{target.name}").content
            directory.mkdir(parents=True, exist_ok=True)
            partial = target.with_name(f".{target.name}.partial")
            partial.write_bytes(content)
            partial.replace(target)
        return target


def archive_prices(path: Path, category_id: int) -> dict[int, list[TcgcsvPrice]]:
    """Typed price rows per group of one category from a daily archive."""
    return {
        group_id: parse_results(payload, TcgcsvPrice, f"{path.name}:{group_id}")
        for group_id, payload in read_category_prices(path, category_id).items()
    }


def select_prices(prices: Iterable[TcgcsvPrice], selection: TcgcsvSelection) -> list[TcgcsvPrice]:
    """The selection's explicit items, or its top N printings by market price that day."""
    if selection.top is None:
        wanted = set(selection.items)
        return [price for price in prices if price.item_id in wanted]
    priced = [price for price in prices if price.market_price is not None]
    priced.sort(key=lambda price: price.market_price or 0.0, reverse=True)
    return priced[: selection.top]


def price_rows(
    prices: Iterable[TcgcsvPrice], products: Mapping[int, TcgcsvProduct], group_id: int, day: date
) -> pd.DataFrame:
    """Raw-schema rows; a product missing from the catalogue keeps a null name (quarantined)."""
    records = []
    for price in prices:
        product = products.get(price.product_id)
        records.append(
            {
                "item_id": price.item_id,
                "date": pd.Timestamp(day),
                "market_price": price.market_price,
                "name": product.name if product else None,
                "source": TCGPLAYER_SOURCE,
                "set_code": str(group_id),
                "number": product.extended("Number") if product else None,
                "rarity": product.extended("Rarity") if product else None,
                "tcgplayer_id": str(price.product_id),
                "low_price": price.low_price,
                "mid_price": price.mid_price,
                "high_price": price.high_price,
            }
        )
    return pd.DataFrame.from_records(records)


class TcgcsvSource:
    """Tracked TCGplayer items on one day: live for today, from the day's archive before."""

    name = TCGPLAYER_SOURCE

    def __init__(
        self,
        client: TcgcsvClient,
        selections: list[TcgcsvSelection],
        category_id: int,
        archive_dir: Path,
        today: Callable[[], date] = lambda: datetime.now(UTC).date(),
    ) -> None:
        self.client = client
        self._selections = selections
        self._category = category_id
        self._archive_dir = archive_dir
        self._today = today
        # Catalogues do not change within a run; a backfill of many days asks once per group.
        self._catalogues: dict[int, dict[int, TcgcsvProduct]] = {}

    def fetch(self, day: date) -> pd.DataFrame:
        archived = (
            None
            if day >= self._today()
            else archive_prices(
                self.client.download_archive(day, self._archive_dir), self._category
            )
        )
        return self.rows_for(day, archived)

    def rows_for(self, day: date, archived: Mapping[int, list[TcgcsvPrice]] | None) -> pd.DataFrame:
        """Rows from an archive's prices, or (`archived` None) from the live endpoint."""
        frames = []
        for selection in self._selections:
            group = selection.group
            prices = self.client.prices(group) if archived is None else archived.get(group, [])
            chosen = select_prices(prices, selection)
            if not chosen:
                continue
            frames.append(price_rows(chosen, self._catalogue(group), group, day))
        return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()

    def _catalogue(self, group: int) -> dict[int, TcgcsvProduct]:
        if group not in self._catalogues:
            products = self.client.products(group)
            self._catalogues[group] = {product.product_id: product for product in products}
        return self._catalogues[group]
