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
import pandas as pd

from model.artifact import TrainedModel
from model.lookup import (
    LATEST_DAY,
    PriceTable,
    Resolution,
    date_to_day,
    day_to_date,
    to_day_numbers,
)
from model.signals import LABELS, SignalRule, SignalThresholds, deviation, rule_codes

DATE_PATTERN = re.compile(r"^\d{4}-\d{2}-\d{2}$")


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


class QueryError(Exception):
    """A query that cannot be answered: HTTP status, machine-readable code, human detail."""

    def __init__(self, status: int, error: str, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.error = error
        self.detail = detail

    def body(self) -> dict[str, Any]:
        return {"error": self.error, "detail": self.detail}

    def item_body(self, index: int, card_id: str | None = None) -> dict[str, Any]:
        """The error in place of one batch item's answer."""
        named = {} if card_id is None else {"card_id": card_id}
        return {"index": index, **named, "status": self.status, **self.body()}


class Predictor:
    """Answers from one table: a model's own, or a publication of it (`model.scoring`).

    `version` names the table (the publication, else the model tag): cached answers are
    keyed by it. `min_observed_days` is the fewest observed days an item needs for a fair
    price.
    """

    def __init__(
        self,
        trained: TrainedModel,
        model_version: str,
        thresholds: SignalThresholds,
        min_observed_days: int = 1,
    ) -> None:
        self.table = PriceTable(trained)
        self.model_version = model_version
        self.version = str(trained.info.get("published") or model_version)
        self.thresholds = thresholds
        self.min_observed_days = min_observed_days
        self.info = trained.info
        self.data_as_of = date.fromisoformat(trained.data_as_of)
        items = trained.items.set_index("item_id").loc[self.table.item_ids]
        self.catalog: list[dict[str, Any]] = [
            {
                "card_id": card_id,
                "name": name,
                "set_code": None if pd.isna(set_code) else set_code,
                "latest_date": day_to_date(int(day)).isoformat(),
                "latest_price": float(price),
            }
            for card_id, name, set_code, day, price in zip(
                self.table.item_ids,
                items["name"],
                items["set_code"],
                to_day_numbers(items["last_date"]),
                items["last_price"],
                strict=True,
            )
        ]

    def freshness(self, now: datetime, stale_after_hours: float) -> Freshness:
        return freshness(self.data_as_of, now, stale_after_hours)

    def fair_price(self, card_id: str, on: str | None, stale: bool = False) -> dict[str, Any]:
        """One prediction; raises `QueryError` (400 bad date, 404 unknown card or date)."""
        (answer,) = self.fair_prices([{"card_id": card_id, "date": on}], stale)
        if "error" in answer:
            raise QueryError(answer["status"], answer["error"], answer["detail"])
        return answer

    def fair_prices(self, items: Sequence[object], stale: bool = False) -> list[dict[str, Any]]:
        """Answers in item order; an item that fails gets an error object in its place.

        Items are `{"card_id": str, "date": "YYYY-MM-DD" | None}`, checked one by one so
        that a malformed item does not fail the others. `stale` goes into every answer.
        """
        count = len(items)
        positions = np.full(count, -1, dtype=np.int64)
        days = np.full(count, LATEST_DAY, dtype=np.int64)
        queries: list[tuple[str, str | None] | QueryError] = []
        for index, item in enumerate(items):
            try:
                card_id, on = parse_query(item)
                days[index] = parse_day(on)
            except QueryError as error:
                queries.append(error)
                continue
            positions[index] = self.table.position.get(card_id, -1)
            queries.append((card_id, on))

        table = self.table
        resolved = table.resolve(positions, days)
        rows = np.maximum(resolved.rows, 0)
        market = table.market[rows]
        fair = np.round(table.fair[rows], 2)
        low = np.round(table.low[rows], 2)
        high = np.round(table.high[rows], 2)
        deviation_pct = deviation(market, fair)
        codes = rule_codes(market, fair, low, high, self.thresholds)
        price_days = table.days[rows]
        history_days = rows - table.first_row[np.maximum(positions, 0)] + 1
        has_fair = np.isfinite(fair)
        has_band = np.isfinite(low) & np.isfinite(high)
        scored = has_fair & (history_days >= self.min_observed_days)
        if self.thresholds.rule == SignalRule.BAND:
            scored &= has_band
        data_as_of = self.data_as_of.isoformat()

        answers: list[dict[str, Any]] = []
        for index, query in enumerate(queries):
            if isinstance(query, QueryError):
                answers.append(query.item_body(index))
                continue
            card_id, on = query
            status = Resolution(resolved.status[index])
            if status != Resolution.FOUND:
                missing = self._not_found(card_id, on, status, int(positions[index]))
                answers.append(missing.item_body(index, card_id))
                continue
            price_date = day_to_date(int(price_days[index])).isoformat()
            answer: dict[str, Any] = {
                "card_id": card_id,
                "name": table.names[positions[index]],
                "date": on if on is not None else price_date,
                "price_date": price_date,
                "market_price": float(market[index]),
                "fair_price": None,
                "fair_low": None,
                "fair_high": None,
                "deviation_pct": None,
                "signal": None,
                "reason": None,
                "history_days": int(history_days[index]),
                "data_as_of": data_as_of,
                "stale": stale,
                "model_version": self.model_version,
            }
            if scored[index]:
                answer["fair_price"] = float(fair[index])
                answer["fair_low"] = _finite_or_none(low[index])
                answer["fair_high"] = _finite_or_none(high[index])
                answer["deviation_pct"] = _finite_or_none(deviation_pct[index])
                answer["signal"] = LABELS[codes[index]].value
            else:
                answer["reason"] = (
                    Unscored.INSUFFICIENT_HISTORY if has_fair[index] else Unscored.NOT_SCORED
                ).value
            answers.append(answer)
        return answers

    def _not_found(
        self, card_id: str, on: str | None, status: Resolution, position: int
    ) -> QueryError:
        if status == Resolution.UNKNOWN_ITEM:
            return QueryError(404, "card_not_found", f"no card with id {card_id!r}")
        first = self.table.first_date(position).isoformat()
        last = self.table.last_date().isoformat()
        return QueryError(
            404,
            "date_out_of_range",
            f"no price for {card_id!r} on {on}: prices are available from {first} to {last}",
        )

    def cards(self, limit: int, offset: int, stale: bool = False) -> dict[str, Any]:
        return {
            "data_as_of": self.data_as_of.isoformat(),
            "stale": stale,
            "total": len(self.catalog),
            "limit": limit,
            "offset": offset,
            "cards": self.catalog[offset : offset + limit],
        }


def parse_query(item: object) -> tuple[str, str | None]:
    """`(card_id, date)` from a query object. Raises `QueryError` (400) naming the field."""
    if not isinstance(item, dict):
        raise QueryError(400, "invalid_request", "item: expected an object with a card_id")
    card_id = item.get("card_id")
    if not isinstance(card_id, str) or not card_id:
        raise QueryError(400, "invalid_request", "card_id: expected a non-empty string")
    on = item.get("date")
    if on is not None and not isinstance(on, str):
        raise QueryError(400, "invalid_request", "date: expected a YYYY-MM-DD string or null")
    return card_id, on


def parse_day(on: str | None) -> int:
    """Day number of a `YYYY-MM-DD` date; `LATEST_DAY` for None. Raises `QueryError` (400)."""
    if on is None:
        return LATEST_DAY
    if not DATE_PATTERN.fullmatch(on):
        raise QueryError(400, "invalid_request", f"date: {on!r} is not a date in YYYY-MM-DD form")
    try:
        return date_to_day(date.fromisoformat(on))
    except ValueError:
        raise QueryError(400, "invalid_request", f"date: {on!r} is not a calendar date") from None


def _finite_or_none(value: np.float64) -> float | None:
    return float(value) if np.isfinite(value) else None
