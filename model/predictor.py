"""Answers fair-price queries from a published table (the service and the CLI wrap it).

Single and batch queries share one vectorized path: each query is parsed, all are
resolved with one `searchsorted`, and the answers are assembled in request order.

Every answer says how fresh the data is (`data_as_of`, the newest day in the table, and
`stale`) and how much history the item has (`history_days`, the days it was observed up to
`price_date`). Where the model gives no fair price or band for the row (too short a
history, or a row older than the model it was not trained on), the answer still has the
market price, with `fair_price`, the band, `deviation_pct` and `signal` null and a
`reason`; a fair price is never made up.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from typing import Any

import numpy as np
import numpy.typing as npt

from model.lookup import (
    LATEST_DAY,
    IntArray,
    PriceTable,
    Resolution,
    date_to_day,
    day_to_date,
)
from model.signals import (
    HOLD_CODE,
    LABELS,
    CodeArray,
    FloatArray,
    SignalRule,
    SignalSettings,
    deviation,
    rule_codes,
    signal_edge,
)

DATE_PATTERN = re.compile(r"^\d{4}-\d{2}-\d{2}$")
BoolArray = npt.NDArray[np.bool_]


class Unscored(StrEnum):
    """Why an answer has no fair price and no signal."""

    # Fewer observed days than the model needs, or a day before it had a band.
    INSUFFICIENT_HISTORY = "insufficient_history"
    # A day older than the model that it was not trained on (retraining prices it).
    NOT_SCORED = "not_scored"


@dataclass(frozen=True)
class Freshness:
    data_as_of: date
    age_hours: float
    stale: bool


def end_of_day(day: date) -> datetime:
    """When a day's prices are complete: the next midnight, UTC."""
    return datetime.combine(day + timedelta(days=1), time(), tzinfo=UTC)


def freshness(data_as_of: date, now: datetime, stale_after_hours: float) -> Freshness:
    """The data's age, counted from the end of its newest day (UTC), and whether it is stale.

    A clock before the data counts as age 0, so it never makes fresh data stale."""
    age = max(0.0, (now - end_of_day(data_as_of)).total_seconds() / 3600)
    return Freshness(data_as_of, age, age > stale_after_hours)


class QueryErrorCode(StrEnum):
    INVALID_REQUEST = "invalid_request"  # the query itself is malformed
    CARD_NOT_FOUND = "card_not_found"
    DATE_OUT_OF_RANGE = "date_out_of_range"  # the item has no price on or before the date


class QueryError(Exception):
    """A query that cannot be answered: a machine-readable code and a human detail (the
    service decides the HTTP status), and the item it is about when it names one."""

    def __init__(self, error: QueryErrorCode, detail: str, card_id: str | None = None) -> None:
        super().__init__(detail)
        self.error = error
        self.detail = detail
        self.card_id = card_id


def invalid(detail: str) -> QueryError:
    return QueryError(QueryErrorCode.INVALID_REQUEST, detail)


@dataclass(frozen=True)
class Query:
    """One parsed fair-price query: the item and the day asked (`LATEST_DAY` for none)."""

    card_id: str
    date: str | None
    day: int


@dataclass(frozen=True)
class PricedRows:
    """The answer fields of some table rows, vectorized (entry i describes `rows[i]`)."""

    rows: IntArray
    days: IntArray
    market: FloatArray
    buy: FloatArray  # the lowest listing (NaN: the source sends none)
    fair: FloatArray
    low: FloatArray
    high: FloatArray
    deviation: FloatArray
    codes: CodeArray
    edge: FloatArray
    history_days: IntArray
    scored: BoolArray
    has_fair: BoolArray

    def fields(self, index: int) -> dict[str, Any]:
        """The row's fields as answers carry them: a fair price, band, deviation and signal
        only where the row is scored, else nulls and the reason."""
        record: dict[str, Any] = {
            "price_date": day_to_date(int(self.days[index])).isoformat(),
            "market_price": float(self.market[index]),
            "buy_price": finite_or_none(self.buy[index]),
            "fair_price": None,
            "fair_low": None,
            "fair_high": None,
            "deviation_pct": None,
            "signal": None,
            "reason": None,
            "history_days": int(self.history_days[index]),
        }
        if self.scored[index]:
            record["fair_price"] = float(self.fair[index])
            record["fair_low"] = finite_or_none(self.low[index])
            record["fair_high"] = finite_or_none(self.high[index])
            record["deviation_pct"] = finite_or_none(self.deviation[index])
            record["signal"] = LABELS[self.codes[index]].value
        else:
            record["reason"] = (
                Unscored.INSUFFICIENT_HISTORY if self.has_fair[index] else Unscored.NOT_SCORED
            ).value
        return record


class Predictor:
    """Answers from one table: a model's own, or a publication of it (`model.scoring`).

    `version` names the table (the publication, else the model tag): cached answers are
    keyed by it. `min_observed_days` is the fewest observed days an item needs for a fair
    price.
    """

    def __init__(
        self,
        table: PriceTable,
        model_version: str,
        thresholds: SignalSettings,
        min_observed_days: int = 1,
    ) -> None:
        self.table = table
        self.model_version = model_version
        self.version = str(table.info.get("published") or model_version)
        self.thresholds = thresholds
        self.min_observed_days = min_observed_days
        self.info = table.info
        self.data_as_of = table.data_as_of
        self.items = table.items

    def freshness(self, now: datetime, stale_after_hours: float) -> Freshness:
        return freshness(self.data_as_of, now, stale_after_hours)

    def priced(self, rows: IntArray, positions: IntArray) -> PricedRows:
        """The answer fields of table `rows` (of the items at `positions`)."""
        table = self.table
        market = table.market.take(rows)
        buy = table.buy.take(rows)
        fair = table.fair.take(rows)
        low = table.low.take(rows)
        high = table.high.take(rows)
        deviation_pct = deviation(market, fair)
        codes = rule_codes(market, fair, low, high, self.thresholds, buy)
        history_days = rows - table.first_row[positions] + 1
        has_fair = np.isfinite(fair)
        scored = has_fair & (history_days >= self.min_observed_days)
        if self.thresholds.rule == SignalRule.BAND:
            scored &= np.isfinite(low) & np.isfinite(high)
        codes = np.where(scored, codes, HOLD_CODE).astype(np.int8)
        return PricedRows(
            rows=rows,
            days=table.day_numbers(rows),
            market=market,
            buy=buy,
            fair=fair,
            low=low,
            high=high,
            deviation=deviation_pct,
            codes=codes,
            edge=signal_edge(market, fair, low, high, codes, self.thresholds, buy),
            history_days=history_days,
            scored=scored,
            has_fair=has_fair,
        )

    def fair_price(self, card_id: str, on: str | None, stale: bool = False) -> dict[str, Any]:
        """One answer; raises `QueryError` (malformed date, unknown card or date)."""
        (answer,) = self.answer([Query(card_id, on, parse_day(on))], stale)
        if isinstance(answer, QueryError):
            raise answer
        return answer

    def answer(
        self, queries: Sequence[Query], stale: bool = False
    ) -> list[dict[str, Any] | QueryError]:
        """Answers in query order, all resolved with one `searchsorted`; a query that
        cannot be answered gets its `QueryError` in its place. `stale` goes into every
        answer."""
        table = self.table
        positions = np.array(
            [table.position.get(query.card_id, -1) for query in queries], dtype=np.int64
        )
        days = np.array([query.day for query in queries], dtype=np.int64)
        resolved = table.resolve(positions, days)
        known = np.maximum(positions, 0)
        priced = self.priced(np.maximum(resolved.rows, 0), known)
        data_as_of = self.data_as_of.isoformat()
        answers: list[dict[str, Any] | QueryError] = []
        for index, query in enumerate(queries):
            status = Resolution(resolved.status[index])
            if status != Resolution.FOUND:
                answers.append(self._not_found(query, status, int(positions[index])))
                continue
            fields = priced.fields(index)
            answers.append(
                {
                    "card_id": query.card_id,
                    "name": table.names[positions[index]],
                    "date": query.date if query.date is not None else fields["price_date"],
                    **fields,
                    "data_as_of": data_as_of,
                    "stale": stale,
                    "model_version": self.model_version,
                }
            )
        return answers

    def history(self, card_id: str, start: int | None, end: int | None) -> PricedRows:
        """Every observed day of one item between the day numbers `start` and `end`
        (inclusive; None: unbounded). Raises `QueryError` for an unknown item."""
        position = self.position(card_id)
        table = self.table
        rows = np.arange(table.first_row[position], table.last_row[position] + 1)
        days = table.day_numbers(rows)
        keep = np.ones(len(rows), dtype=bool)
        if start is not None:
            keep &= days >= start
        if end is not None:
            keep &= days <= end
        rows = rows[keep]
        return self.priced(rows, np.full(len(rows), position, dtype=np.int64))

    def position(self, card_id: str) -> int:
        """The item's position in the table. Raises `QueryError` for an unknown item."""
        position = self.table.position.get(card_id)
        if position is None:
            raise unknown_card(card_id)
        return position

    def _not_found(self, query: Query, status: Resolution, position: int) -> QueryError:
        if status == Resolution.UNKNOWN_ITEM:
            return unknown_card(query.card_id)
        first = self.table.first_date(position).isoformat()
        last = self.table.last_date().isoformat()
        return QueryError(
            QueryErrorCode.DATE_OUT_OF_RANGE,
            f"no price for {query.card_id!r} on {query.date}: prices are available from "
            f"{first} to {last}",
            query.card_id,
        )


def unknown_card(card_id: str) -> QueryError:
    return QueryError(QueryErrorCode.CARD_NOT_FOUND, f"no card with id {card_id!r}", card_id)


def parse_query(item: object) -> Query:
    """A query from a `{"card_id": str, "date": "YYYY-MM-DD" | null}` object. Raises
    `QueryError` naming the field."""
    if not isinstance(item, dict):
        raise invalid("item: expected an object with a card_id")
    card_id = item.get("card_id")
    if not isinstance(card_id, str) or not card_id:
        raise invalid("card_id: expected a non-empty string")
    on = item.get("date")
    if on is not None and not isinstance(on, str):
        raise invalid("date: expected a YYYY-MM-DD string or null")
    return Query(card_id, on, parse_day(on))


def parse_day(on: str | None, name: str = "date") -> int:
    """Day number of a `YYYY-MM-DD` date; `LATEST_DAY` for None. Raises `QueryError`
    naming the parameter."""
    if on is None:
        return LATEST_DAY
    if not DATE_PATTERN.fullmatch(on):
        raise invalid(f"{name}: {on!r} is not a date in YYYY-MM-DD form")
    try:
        return date_to_day(date.fromisoformat(on))
    except ValueError:
        raise invalid(f"{name}: {on!r} is not a calendar date") from None


def finite_or_none(value: np.floating[Any]) -> float | None:
    return float(value) if np.isfinite(value) else None
