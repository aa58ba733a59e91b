"""The latest answer of every item, searchable: what the v1 API's lists read.

A `Catalog` is built once per served table (a model's own, or a published day): each
item's latest row priced as `/fair_price` prices it, the item's metadata, and the JSON of
its list entry, encoded once. A search filters all items with numpy masks; each sort order
is an argsort by (value, card id), computed on first use.

Paging is keyset: a cursor names the table version, the query it was made for and the last
item seen, so the next page continues the same order of the same table, even after a newer
day was published (the service keeps recent catalogs for that, `service.serving`). Each
item is therefore visited exactly once while a client pages through.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import math
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, TypeGuard

import numpy as np
import orjson
import pandas as pd

from model.encoding import kept_json
from model.lookup import LATEST_DAY, IntArray, Resolution, day_to_date
from model.predictor import (
    BoolArray,
    Predictor,
    PricedRows,
    QueryError,
    QueryErrorCode,
    finite_or_none,
    invalid,
)
from model.schema import printing_of
from model.signals import LABELS, Signal

CURSOR_FORMAT = 1
MAX_PORTFOLIO_LINES = 1000
MAX_QUANTITY = 1_000_000
MAX_ID_LENGTH = 128  # the longest item id (model.schema.ITEM_ID_PATTERN)
# The priced fields of one day of an item, in the column order of the CSV answers.
PRICED_COLUMNS = (
    "market_price",
    "buy_price",
    "fair_price",
    "fair_low",
    "fair_high",
    "deviation_pct",
    "signal",
    "reason",
)
HISTORY_COLUMNS = ("date", *PRICED_COLUMNS)
EXPORT_COLUMNS = (
    "card_id",
    "name",
    "set_code",
    "date",
    "price_date",
    *PRICED_COLUMNS,
    "history_days",
)


def fold(text: str) -> str:
    """Text as search compares it: accents removed, case folded, anything but letters and
    digits a single space ("Pokémon  GO" and "pokemon go" fold alike)."""
    decomposed = unicodedata.normalize("NFKD", text)
    plain = "".join(char for char in decomposed if not unicodedata.combining(char)).casefold()
    return " ".join("".join(char if char.isalnum() else " " for char in plain).split())


class SortKey(StrEnum):
    NAME = "name"
    PRICE = "price"  # the latest market price
    DEVIATION = "deviation"  # deviation_pct
    STRENGTH = "strength"  # edge_pct: how far a BUY or SELL is past its threshold


@dataclass(frozen=True)
class Sort:
    key: SortKey
    descending: bool = False

    @classmethod
    def parse(cls, text: str) -> Sort:
        """`name`, `price`, `deviation` or `strength`, ascending; a leading `-` descends.
        Raises `QueryError` naming the parameter."""
        descending = text.startswith("-")
        try:
            return cls(SortKey(text.removeprefix("-")), descending)
        except ValueError:
            allowed = ", ".join(f"{key.value}, -{key.value}" for key in SortKey)
            raise invalid(f"sort: {text!r} is not one of {allowed}") from None

    @property
    def text(self) -> str:
        return f"-{self.key.value}" if self.descending else self.key.value


@dataclass(frozen=True)
class CardQuery:
    """A search: `text` tokens each in the name (or number), in any order; a set; a
    signal; a lowest latest market price; an order."""

    text: str | None = None
    set_code: str | None = None
    signal: Signal | None = None
    min_price: float | None = None
    sort: Sort = Sort(SortKey.NAME)

    @property
    def tokens(self) -> list[str]:
        return fold(self.text).split() if self.text else []

    def digest(self) -> str:
        """Names the query (not the table): a cursor is only valid for the query it
        was made for."""
        canonical = orjson.dumps(
            [
                self.tokens,
                self.set_code,
                self.signal,
                self.min_price,
                self.sort.text,
            ]
        )
        return hashlib.sha256(canonical).hexdigest()[:16]


@dataclass(frozen=True)
class Cursor:
    """Where the next page starts: after item `after` of the query `digest`'s order, in
    the table `version`."""

    version: str
    digest: str
    after: str

    def encode(self) -> str:
        payload = orjson.dumps(
            {"f": CURSOR_FORMAT, "v": self.version, "q": self.digest, "a": self.after}
        )
        return base64.urlsafe_b64encode(payload).rstrip(b"=").decode()

    @classmethod
    def decode(cls, token: str) -> Cursor:
        """Raises `QueryError` naming the parameter for anything this API did not issue."""
        try:
            payload = orjson.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
            if not isinstance(payload, dict) or payload.get("f") != CURSOR_FORMAT:
                raise ValueError("format")
            parts = (payload["v"], payload["q"], payload["a"])
            if not all(isinstance(part, str) and part for part in parts):
                raise ValueError("fields")
        except (ValueError, KeyError, binascii.Error, orjson.JSONDecodeError):
            raise invalid(
                "cursor: not a cursor this API issued (use the `next` link of a page)"
            ) from None
        return cls(*parts)


@dataclass(frozen=True)
class Page:
    """One page of a search: the matches in all, this page's entries (JSON objects,
    encoded), and where the next page starts (None: this is the last)."""

    total: int
    entries: list[bytes]
    next: Cursor | None


@dataclass(frozen=True)
class Holding:
    card_id: str
    quantity: int | float
    cost_basis: float | None  # what the whole line cost


class Catalog:
    """The latest row of every item of one table (see the module docstring)."""

    def __init__(self, predictor: Predictor) -> None:
        table = predictor.table
        count = len(table)
        self.version = predictor.version
        self.model_version = predictor.model_version
        self.data_as_of = predictor.data_as_of.isoformat()
        self.info = predictor.info
        self.ids = table.item_ids
        self.position = table.position
        self.priced: PricedRows = predictor.priced(
            table.last_row.copy(), np.arange(count, dtype=np.int64)
        )
        items = predictor.items
        self.names: list[str] = table.names
        self.set_codes: list[str | None] = _texts(items["set_code"])
        # Set names where the prices came with them (TCGCSV price files and a groups.csv);
        # tables saved before set names have none.
        self.set_names: list[str | None] = _texts(
            items.get("set_name", pd.Series(pd.NA, items.index))
        )
        self.numbers: list[str | None] = _texts(items["number"])
        self.rarities: list[str | None] = _texts(items["rarity"])
        # Search reads the name, the card number and the set (its code and, where known,
        # its name): "fossil" finds the cards of Fossil.
        self.haystacks = [
            fold(" ".join(part or "" for part in parts))
            for parts in zip(self.names, self.numbers, self.set_codes, self.set_names, strict=True)
        ]
        self.set_array = np.array(self.set_codes, dtype=object)
        self.entries = [kept_json(self.entry(index)) for index in range(count)]
        self._orders: dict[Sort, tuple[IntArray, IntArray]] = {}

    def __len__(self) -> int:
        return len(self.ids)

    def entry(self, index: int) -> dict[str, Any]:
        """Item `index` as the v1 lists show it."""
        fields = self.priced.fields(index)
        return {
            "card_id": self.ids[index],
            "name": self.names[index],
            "set_code": self.set_codes[index],
            "number": self.numbers[index],
            "rarity": self.rarities[index],
            "printing": printing_of(self.ids[index]),
            **fields,
            "edge_pct": finite_or_none(self.priced.edge[index]),
            "data_as_of": self.data_as_of,
        }

    def detail(self, card_id: str, stale: bool) -> dict[str, Any]:
        """One item's latest answer. Raises `QueryError` for an unknown item."""
        index = self.position.get(card_id)
        if index is None:
            raise QueryError(QueryErrorCode.CARD_NOT_FOUND, f"no card with id {card_id!r}", card_id)
        return {**self.entry(index), "stale": stale, "model_version": self.model_version}

    def summaries(self, limit: int, offset: int, stale: bool) -> dict[str, Any]:
        """The compatibility API's `/cards` page: items in id order, offset paging."""
        window = range(offset, min(offset + limit, len(self)))
        return {
            "data_as_of": self.data_as_of,
            "stale": stale,
            "total": len(self),
            "limit": limit,
            "offset": offset,
            "cards": [
                {
                    "card_id": self.ids[index],
                    "name": self.names[index],
                    "set_code": self.set_codes[index],
                    "latest_date": day_to_date(int(self.priced.days[index])).isoformat(),
                    "latest_price": float(self.priced.market[index]),
                }
                for index in window
            ],
        }

    def search(self, query: CardQuery, limit: int, cursor: Cursor | None = None) -> Page:
        """The page of `limit` matches after `cursor` (from the first without one).

        The caller picks the catalog the cursor's version names; a cursor of another query
        raises `QueryError`."""
        digest = query.digest()
        order, rank = self._order(query.sort)
        start = 0
        if cursor is not None:
            position = self.position.get(cursor.after)
            if cursor.digest != digest or cursor.version != self.version or position is None:
                raise invalid(
                    "cursor: made for another query; page with the `next` link of the same query"
                )
            start = int(rank[position]) + 1
        mask = self._matches(query)
        rest = order[start:]
        selected = rest[mask[rest]]
        page = selected[:limit]
        following = (
            Cursor(self.version, digest, self.ids[int(page[-1])])
            if len(selected) > limit and len(page)
            else None
        )
        return Page(int(mask.sum()), [self.entries[int(index)] for index in page], following)

    def _matches(self, query: CardQuery) -> BoolArray:
        mask = np.ones(len(self), dtype=bool)
        for token in query.tokens:
            mask &= np.fromiter(
                (token in haystack for haystack in self.haystacks), dtype=bool, count=len(self)
            )
        if query.set_code is not None:
            mask &= self.set_array == query.set_code
        if query.signal is not None:
            mask &= self.priced.scored & (self.priced.codes == LABELS.index(query.signal))
        if query.min_price is not None:
            mask &= self.priced.market >= query.min_price
        return mask

    def _order(self, sort: Sort) -> tuple[IntArray, IntArray]:
        """Item positions in `sort`'s order (missing values last, ties by card id), and
        each position's rank in it."""
        if sort not in self._orders:
            values, missing = self._sort_values(sort.key)
            ranks = np.unique(values, return_inverse=True)[1].astype(np.int64)
            id_ranks = np.argsort(np.argsort(np.array(self.ids, dtype=str), kind="stable"))
            order = np.lexsort((id_ranks, -ranks if sort.descending else ranks, missing))
            rank = np.empty(len(order), dtype=np.int64)
            rank[order] = np.arange(len(order))
            self._orders[sort] = (order.astype(np.int64), rank)
        return self._orders[sort]

    def _sort_values(self, key: SortKey) -> tuple[np.ndarray[Any, Any], BoolArray]:
        priced = self.priced
        if key == SortKey.NAME:
            return np.array([fold(name) for name in self.names], dtype=str), np.zeros(
                len(self), dtype=bool
            )
        values = {
            SortKey.PRICE: priced.market,
            SortKey.DEVIATION: np.where(priced.scored, priced.deviation, np.nan),
            SortKey.STRENGTH: priced.edge,
        }[key]
        missing = ~np.isfinite(values)
        return np.where(missing, 0.0, values), missing

    def sets(self) -> list[dict[str, Any]]:
        """Per set: its name where known, items, the newest price day, and the share of
        BUY and SELL signals."""
        priced = self.priced
        frame = pd.DataFrame(
            {
                "set_code": pd.array(self.set_codes, dtype="string"),
                "set_name": pd.array(self.set_names, dtype="string"),
                "day": priced.days,
                "buy": priced.scored & (priced.codes == LABELS.index(Signal.BUY)),
                "sell": priced.scored & (priced.codes == LABELS.index(Signal.SELL)),
            }
        )
        grouped = frame.groupby("set_code", dropna=False, sort=True).agg(
            count=("day", "size"),
            day=("day", "max"),
            buy=("buy", "sum"),
            sell=("sell", "sum"),
            name=("set_name", "first"),
        )
        return [
            {
                "set_code": None if pd.isna(set_code) else str(set_code),
                "set_name": None if pd.isna(name) else str(name),
                "items": int(count),
                "latest_date": day_to_date(int(day)).isoformat(),
                "buy": int(buy),
                "sell": int(sell),
                "buy_share": round(int(buy) / int(count), 4),
                "sell_share": round(int(sell) / int(count), 4),
            }
            for set_code, count, day, buy, sell, name in zip(
                grouped.index,
                grouped["count"],
                grouped["day"],
                grouped["buy"],
                grouped["sell"],
                grouped["name"],
                strict=True,
            )
        ]

    def backtest(self, signal: Signal) -> dict[str, Any] | None:
        """How the signal did out of sample when the model was trained: count, mean and
        median forward return over the horizon, hit rate (None: not recorded)."""
        for record in self.info.get("signal_returns") or []:
            if record.get("signal") == signal.value:
                return {
                    "horizon_days": int(self.info["horizon"]),
                    "count": int(record["count"]),
                    "hit_rate": _number(record.get("hit_rate")),
                    "mean_forward_return": _number(record.get("mean_forward_return")),
                    "median_forward_return": _number(record.get("median_forward_return")),
                }
        return None

    def valuate(self, holdings: Sequence[Holding]) -> dict[str, Any]:
        """Each line at the latest market and fair price, with the profit or loss against
        its cost when given, and the totals; an unknown item is reported in its place."""
        lines: list[dict[str, Any]] = []
        market_total = fair_total = cost_total = pnl_total = 0.0
        priced_lines = fair_lines = 0
        for index, holding in enumerate(holdings):
            position = self.position.get(holding.card_id)
            if position is None:
                lines.append(
                    {
                        "index": index,
                        "card_id": holding.card_id,
                        "error": QueryErrorCode.CARD_NOT_FOUND.value,
                        "detail": f"no card with id {holding.card_id!r}",
                    }
                )
                continue
            fields = self.priced.fields(position)
            market_value = _money(holding.quantity * fields["market_price"])
            fair_value = (
                None
                if fields["fair_price"] is None
                else _money(holding.quantity * fields["fair_price"])
            )
            pnl = None if holding.cost_basis is None else _money(market_value - holding.cost_basis)
            lines.append(
                {
                    "index": index,
                    "card_id": holding.card_id,
                    "name": self.names[position],
                    "quantity": holding.quantity,
                    "price_date": fields["price_date"],
                    "market_price": fields["market_price"],
                    "fair_price": fields["fair_price"],
                    "market_value": market_value,
                    "fair_value": fair_value,
                    "cost_basis": holding.cost_basis,
                    "pnl": pnl,
                    "pnl_pct": (
                        None
                        if pnl is None or not holding.cost_basis
                        else round(pnl / holding.cost_basis, 4)
                    ),
                    "signal": fields["signal"],
                }
            )
            priced_lines += 1
            market_total += market_value
            if fair_value is not None:
                fair_lines += 1
                fair_total += fair_value
            if holding.cost_basis is not None and pnl is not None:
                cost_total += holding.cost_basis
                pnl_total += pnl
        return {
            "lines": lines,
            "totals": {
                "lines": len(holdings),
                "priced_lines": priced_lines,
                "unknown_lines": len(holdings) - priced_lines,
                "market_value": _money(market_total),
                "fair_value": _money(fair_total),
                "fair_value_lines": fair_lines,
                "cost_basis": _money(cost_total),
                "pnl": _money(pnl_total),
            },
        }


def parse_holdings(body: object) -> list[Holding]:
    """Portfolio lines from `[{card_id, quantity, cost_basis?}]`. Raises `QueryError`
    naming the first bad line and field."""
    if not isinstance(body, list) or not body:
        raise invalid("body: expected a non-empty list of {card_id, quantity, cost_basis?}")
    holdings = []
    for index, line in enumerate(body):
        if not isinstance(line, dict):
            raise invalid(f"[{index}]: expected an object with card_id and quantity")
        card_id = line.get("card_id")
        if not isinstance(card_id, str) or not 0 < len(card_id) <= MAX_ID_LENGTH:
            raise invalid(
                f"[{index}].card_id: expected a string of 1 to {MAX_ID_LENGTH} characters"
            )
        quantity = line.get("quantity")
        if not _is_number(quantity) or not 0 < quantity <= MAX_QUANTITY:
            raise invalid(f"[{index}].quantity: expected a number above 0, at most {MAX_QUANTITY}")
        cost = line.get("cost_basis")
        if cost is not None and (not _is_number(cost) or cost < 0):
            raise invalid(f"[{index}].cost_basis: expected a number of at least 0, or null")
        holdings.append(Holding(card_id, quantity, None if cost is None else float(cost)))
    return holdings


def export_rows(predictor: Predictor, day: int) -> pd.DataFrame:
    """Every item's answer on `day` (`LATEST_DAY`: each item's latest), one row per item
    priced on or before it. Raises `QueryError` when no item is."""
    table = predictor.table
    positions = np.arange(len(table), dtype=np.int64)
    resolved = table.resolve(positions, np.full(len(table), day, dtype=np.int64))
    found = resolved.status == Resolution.FOUND
    if not found.any():
        raise QueryError(
            QueryErrorCode.DATE_OUT_OF_RANGE,
            f"no prices on {day_to_date(day).isoformat()}: prices are available from "
            f"{table.start_date().isoformat()} to {table.last_date().isoformat()}",
        )
    positions = positions[found]
    priced = predictor.priced(resolved.rows[found], positions)
    records = [priced.fields(index) for index in range(len(positions))]
    frame = pd.DataFrame.from_records(records)
    items = predictor.items
    frame.insert(0, "card_id", [table.item_ids[position] for position in positions])
    frame.insert(1, "name", [table.names[position] for position in positions])
    frame.insert(2, "set_code", _texts(items["set_code"].iloc[positions]))
    asked = frame["price_date"] if day == LATEST_DAY else day_to_date(day).isoformat()
    frame.insert(3, "date", asked)
    return frame[list(EXPORT_COLUMNS)]


def _texts(values: pd.Series) -> list[str | None]:
    return [None if pd.isna(value) else str(value) for value in values]


def _is_number(value: object) -> TypeGuard[int | float]:
    return (
        isinstance(value, int | float)
        and not isinstance(value, bool)
        and math.isfinite(float(value))
    )


def _number(value: object) -> float | None:
    return float(value) if _is_number(value) else None


def _money(value: float) -> float:
    return round(value, 2)
