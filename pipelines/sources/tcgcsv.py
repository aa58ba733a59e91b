"""TCGCSV (free, no key): TCGplayer groups, products and prices of the newest day.

TCGCSV publishes one day at a time: `/last-updated.txt` says when (an ISO timestamp), and
that timestamp's UTC date is the day the prices are stored under. Its maintainer asks
clients to fetch categories, groups and prices with separate requests and never the same
price file twice in 24 hours, so every answer is kept in a day cache
(`<cache_dir>/tcgcsv/category=<id>/<day>/`): a file is fetched at most once per data day,
and a rerun of a day (after a crash, or a second `pokewatch daily`) reads the cache instead
of asking again. A past day can be collected again only from that cache: the live files
hold the newest day, and TCGCSV's archive of past days is gone (403 since 2026-09-16);
local archives and dumps are imported by `pokewatch backfill` (`pipelines.backfill`).

Names are metadata: a price whose product is not known (the products request failed) is
kept under a placeholder name and named later from the catalogue (`pipelines.catalogue`).
`highPrice` is stored as the source sends it but is never a price (it is often a parked
listing at 999): prices are `marketPrice`, selections rank by it.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from model.schema import TCGPLAYER_SOURCE, placeholder_name, tcgplayer_item_id
from pipelines.catalogue import Catalogue
from pipelines.settings import RetrySettings, TcgcsvSettings, TrackedTcgcsvSettings
from pipelines.sources import Snapshot, SourceError
from pipelines.sources.archive import archive_file_name
from pipelines.sources.http import JsonClient
from service.files import atomic_write

LAST_UPDATED = "/last-updated.txt"
ARCHIVE_GONE = (
    "TCGCSV's archive of past days answers 403: it was removed (2026-09-16) and past days "
    "can no longer be downloaded. Import archives or extracted dumps you have with "
    "`pokewatch backfill --archive prices-YYYY-MM-DD.ppmd.7z` or `--dump DIR`"
)


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
    direct_low_price: float | None = Field(default=None, alias="directLowPrice")

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


def parse_last_updated(text: str) -> datetime:
    """`2025-09-02T20:10:03+0000` (what TCGCSV serves) as an aware datetime."""
    value = text.strip()
    for parse in (datetime.fromisoformat, lambda v: datetime.strptime(v, "%Y-%m-%dT%H:%M:%S%z")):
        try:
            parsed = parse(value)
        except ValueError:
            continue
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    raise SourceError(f"{LAST_UPDATED}: {value[:80]!r} is not a timestamp")


class TcgcsvClient:
    """TCGCSV's endpoints; answers are returned as the raw JSON (the day cache keeps it)."""

    def __init__(
        self,
        settings: TcgcsvSettings,
        retry: RetrySettings,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.category = settings.category_id
        self._http = JsonClient(settings.base_url, retry, settings.timeout_seconds, sleep=sleep)

    def close(self) -> None:
        self._http.close()

    def last_updated(self) -> datetime:
        return parse_last_updated(self._http.get_text(LAST_UPDATED))

    def groups(self) -> Any:
        return self._http.get_json(f"/tcgplayer/{self.category}/groups")

    def products(self, group_id: int) -> Any:
        return self._http.get_json(f"/tcgplayer/{self.category}/{group_id}/products")

    def prices(self, group_id: int) -> Any:
        return self._http.get_json(f"/tcgplayer/{self.category}/{group_id}/prices")

    def download_archive(self, day: date, directory: Path) -> Path:
        """The day's price archive in `directory` (downloaded once, then reused)."""
        target = directory / archive_file_name(day)
        if not target.is_file():
            try:
                content = self._http.get(f"/archive/tcgplayer/{target.name}").content
            except SourceError as error:
                if error.status == 403:
                    raise SourceError(ARCHIVE_GONE, status=403) from None
                raise
            atomic_write(target, content)
        return target


ParsedT = TypeVar("ParsedT")


class DayCache:
    """TCGCSV's answers of one data day on disk; only answers that parse are kept."""

    def __init__(self, directory: Path, live: bool) -> None:
        self.directory = directory
        # False: the source has moved past this day, so a missing file cannot be fetched.
        self.live = live

    def exists(self) -> bool:
        return (self.directory / "last-updated.txt").is_file()

    def mark(self, updated: datetime) -> None:
        atomic_write(self.directory / "last-updated.txt", updated.isoformat().encode())

    def get(
        self, name: str, fetch: Callable[[], Any], parse: Callable[[Any, str], ParsedT]
    ) -> ParsedT:
        path = self.directory / f"{name}.json"
        if path.is_file():
            return parse(json.loads(path.read_bytes()), str(path))
        if not self.live:
            raise SourceError(f"{name} of {self.directory.name} is not in the day cache")
        payload = fetch()
        parsed = parse(payload, name)
        atomic_write(path, json.dumps(payload).encode())
        return parsed


@dataclass(frozen=True)
class ProductInfo:
    name: str
    number: str | None
    rarity: str | None


def products_info(products: Iterable[TcgcsvProduct]) -> dict[int, ProductInfo]:
    return {
        product.product_id: ProductInfo(
            product.name, product.extended("Number"), product.extended("Rarity")
        )
        for product in products
    }


def select_prices(
    prices: Iterable[TcgcsvPrice], selection: TrackedTcgcsvSettings
) -> list[TcgcsvPrice]:
    """The selection's explicit items, its top N printings by market price that day, or
    (neither given) every printing of the group."""
    if selection.items:
        wanted = set(selection.items)
        return [price for price in prices if price.item_id in wanted]
    if selection.top is None:
        return list(prices)
    priced = [price for price in prices if price.market_price is not None]
    priced.sort(key=lambda price: price.market_price or 0.0, reverse=True)
    return priced[: selection.top]


def price_rows(
    prices: Iterable[TcgcsvPrice], products: Mapping[int, ProductInfo], group_id: int, day: date
) -> pd.DataFrame:
    """Raw-schema rows; a product missing from `products` gets a placeholder name."""
    records = []
    for price in prices:
        product = products.get(price.product_id)
        records.append(
            {
                "item_id": price.item_id,
                "date": pd.Timestamp(day),
                "market_price": price.market_price,
                "name": product.name if product else placeholder_name(price.product_id),
                "source": TCGPLAYER_SOURCE,
                "set_code": str(group_id),
                "number": product.number if product else None,
                "rarity": product.rarity if product else None,
                "tcgplayer_id": str(price.product_id),
                "low_price": price.low_price,
                "mid_price": price.mid_price,
                "high_price": price.high_price,
                "direct_low_price": price.direct_low_price,
            }
        )
    return pd.DataFrame.from_records(records)


def catalogue_entries(products: Mapping[int, ProductInfo], group_id: int) -> pd.DataFrame:
    return pd.DataFrame.from_records(
        [
            {
                "tcgplayer_id": str(product_id),
                "name": info.name,
                "number": info.number,
                "rarity": info.rarity,
                "set_code": str(group_id),
            }
            for product_id, info in products.items()
        ],
        columns=["tcgplayer_id", "name", "number", "rarity", "set_code"],
    )


def _prices(payload: Any, where: str) -> list[TcgcsvPrice]:
    return parse_results(payload, TcgcsvPrice, where)


def _products(payload: Any, where: str) -> dict[int, ProductInfo]:
    return products_info(parse_results(payload, TcgcsvProduct, where))


def _group_ids(payload: Any, where: str) -> list[int]:
    return [group.group_id for group in parse_results(payload, TcgcsvGroup, where)]


class TcgcsvSource:
    """The tracked TCGplayer items: the newest day live (through the day cache), a cached
    day again, or a day from a local archive or dump (`rows_from_dump`)."""

    name = TCGPLAYER_SOURCE

    def __init__(
        self,
        client: TcgcsvClient,
        selections: list[TrackedTcgcsvSettings],
        cache_dir: Path,
        catalogue: Catalogue,
    ) -> None:
        self.client = client
        self._selections = selections
        self._cache_root = cache_dir / "tcgcsv" / f"category={client.category}"
        self.catalogue = catalogue

    def fetch(self, day: date | None) -> Snapshot:
        updated = self.client.last_updated()
        newest = updated.astimezone(UTC).date()
        wanted = day or newest
        cache = DayCache(self._cache_root / wanted.isoformat(), live=wanted == newest)
        if not cache.live and not cache.exists():
            raise SourceError(
                f"TCGCSV's prices are as of {newest} ({LAST_UPDATED}: {updated.isoformat()}), "
                f"not {wanted}, and that day is not in the day cache: past days can only be "
                f"imported from local files (pokewatch backfill --archive/--dump)"
            )
        reused = cache.exists()
        if cache.live:
            cache.mark(updated)
        groups = self._groups(lambda: cache.get("groups", self.client.groups, _group_ids))
        frames: list[pd.DataFrame] = []
        failures: list[str] = []
        unnamed: list[str] = []
        known: dict[int, ProductInfo] | None = None
        for selection, group in groups:
            try:
                prices = cache.get(f"{group}/prices", partial(self.client.prices, group), _prices)
            except SourceError as error:
                failures.append(f"group {group}: {error}")
                continue
            chosen = select_prices(prices, selection)
            if not chosen:
                continue
            try:
                products = cache.get(
                    f"{group}/products", partial(self.client.products, group), _products
                )
                self.catalogue.update(catalogue_entries(products, group))
            except SourceError as error:
                known = self._known_products() if known is None else known
                products = known
                unnamed.append(f"group {group} ({error})")
            frames.append(price_rows(chosen, products, group, wanted))
        note = (
            f"from the day cache of {wanted}" if reused else f"TCGCSV updated {updated.isoformat()}"
        )
        if unnamed:
            note += "; names not fetched, from the catalogue or placeholders: " + ", ".join(unnamed)
        rows = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
        return Snapshot(wanted, rows, note, tuple(failures))

    def rows_from_dump(
        self, day: date, prices_by_group: Mapping[int, list[TcgcsvPrice]]
    ) -> pd.DataFrame:
        """Rows of a day read from a local archive or dump; names from the catalogue."""
        known = self._known_products()
        frames = []
        for selection, group in self._groups(lambda: sorted(prices_by_group)):
            chosen = select_prices(prices_by_group.get(group, []), selection)
            if chosen:
                frames.append(price_rows(chosen, known, group, day))
        return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()

    def _groups(
        self, every_group: Callable[[], list[int]]
    ) -> list[tuple[TrackedTcgcsvSettings, int]]:
        """(selection, group) pairs; `group: all` expands to every group (asked once)."""
        pairs: list[tuple[TrackedTcgcsvSettings, int]] = []
        all_groups: list[int] | None = None
        for selection in self._selections:
            if selection.group == "all":
                all_groups = every_group() if all_groups is None else all_groups
                pairs.extend((selection, group) for group in all_groups)
            else:
                pairs.append((selection, selection.group))
        return pairs

    def _known_products(self) -> dict[int, ProductInfo]:
        known = self.catalogue.read()
        return {
            int(str(product_id)): ProductInfo(
                str(row["name"]),
                None if pd.isna(row["number"]) else str(row["number"]),
                None if pd.isna(row["rarity"]) else str(row["rarity"]),
            )
            for product_id, row in known.iterrows()
            if str(product_id).isdigit()
        }
