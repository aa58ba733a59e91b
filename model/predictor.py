"""Answers fair-price queries from a trained model (the service and the CLI wrap it).

Single and batch queries share one vectorized path: each query is parsed, all are
resolved with one `searchsorted`, and the answers are assembled in request order.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import date
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
from model.signals import LABELS, SignalThresholds, deviation, rule_codes

DATE_PATTERN = re.compile(r"^\d{4}-\d{2}-\d{2}$")


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
    def __init__(
        self, trained: TrainedModel, model_version: str, thresholds: SignalThresholds
    ) -> None:
        self.table = PriceTable(trained)
        self.model_version = model_version
        self.thresholds = thresholds
        self.info = trained.info
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

    def fair_price(self, card_id: str, on: str | None) -> dict[str, Any]:
        """One prediction; raises `QueryError` (400 bad date, 404 unknown card or date)."""
        (answer,) = self.fair_prices([{"card_id": card_id, "date": on}])
        if "error" in answer:
            raise QueryError(answer["status"], answer["error"], answer["detail"])
        return answer

    def fair_prices(self, items: Sequence[object]) -> list[dict[str, Any]]:
        """Answers in item order; an item that fails gets an error object in its place.

        Items are `{"card_id": str, "date": "YYYY-MM-DD" | None}`, checked one by one so
        that a malformed item does not fail the others.
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

        resolved = self.table.resolve(positions, days)
        rows = np.maximum(resolved.rows, 0)
        market = self.table.market[rows]
        fair = np.round(self.table.fair[rows], 2)
        low = np.round(self.table.low[rows], 2)
        high = np.round(self.table.high[rows], 2)
        deviation_pct = deviation(market, fair)
        codes = rule_codes(market, fair, low, high, self.thresholds)
        price_days = self.table.days[rows]

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
            answers.append(
                {
                    "card_id": card_id,
                    "name": self.table.names[positions[index]],
                    "date": on if on is not None else price_date,
                    "price_date": price_date,
                    "market_price": float(market[index]),
                    "fair_price": _finite_or_none(fair[index]),
                    "fair_low": _finite_or_none(low[index]),
                    "fair_high": _finite_or_none(high[index]),
                    "deviation_pct": _finite_or_none(deviation_pct[index]),
                    "signal": LABELS[codes[index]].value,
                    "model_version": self.model_version,
                }
            )
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

    def cards(self, limit: int, offset: int) -> dict[str, Any]:
        return {
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
