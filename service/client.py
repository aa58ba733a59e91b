"""A typed Python client of the REST API v1 (httpx).

    from service.client import PokeWatchClient

    with PokeWatchClient("http://127.0.0.1:3000", api_key) as client:
        page = client.cards(q="charizard", sort="-price", limit=5)
        for card in client.iter_cards(signal="BUY"):
            print(card.card_id, card.market_price, card.fair_low)

Answers are the pydantic models the OpenAPI document is generated from
(`service.openapi`), so the client and the document cannot disagree. A 429 is retried
after the `Retry-After` the service sends (up to `max_retries` times, each wait at most
`max_retry_wait` seconds); any other error answer raises `PokeWatchError` with the
service's error code, detail and request ID.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from types import TracebackType
from typing import Any, Literal, TypeVar
from urllib.parse import quote

import httpx
from pydantic import BaseModel

from service.openapi import (
    CardDetail,
    CardEntry,
    CardList,
    FairPriceAnswer,
    History,
    SetList,
    SignalList,
    Valuation,
)

__all__ = ["PokeWatchClient", "PokeWatchError"]

Answer = TypeVar("Answer", bound=BaseModel)
ListAnswer = TypeVar("ListAnswer", bound=CardList)
ExportFormat = Literal["parquet", "csv", "json"]


class PokeWatchError(Exception):
    """An error answer: its HTTP status and the service's error body."""

    def __init__(self, status: int, error: str, detail: str, request_id: str | None) -> None:
        super().__init__(f"{status} {error}: {detail}")
        self.status = status
        self.error = error
        self.detail = detail
        self.request_id = request_id


class PokeWatchClient:
    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        timeout: float = 10.0,
        max_retries: int = 3,
        max_retry_wait: float = 60.0,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.http = httpx.Client(
            base_url=base_url,
            headers={"X-API-Key": api_key},
            timeout=timeout,
            transport=transport,
        )
        self.max_retries = max_retries
        self.max_retry_wait = max_retry_wait
        self.sleep = sleep

    def __enter__(self) -> PokeWatchClient:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        self.http.close()

    # --- the v1 routes -------------------------------------------------------------------

    def cards(
        self,
        q: str | None = None,
        *,
        set_code: str | None = None,
        signal: Literal["BUY", "HOLD", "SELL"] | None = None,
        min_price: float | None = None,
        sort: str | None = None,
        limit: int | None = None,
        cursor: str | None = None,
    ) -> CardList:
        """One page of `GET /v1/cards` (the next one: `cursor=page.next_cursor`)."""
        params = {
            "q": q,
            "set": set_code,
            "signal": signal,
            "min_price": min_price,
            "sort": sort,
            "limit": limit,
            "cursor": cursor,
        }
        return self._get("/v1/cards", CardList, params)

    def iter_cards(self, q: str | None = None, **filters: Any) -> Iterator[CardEntry]:
        """Every match of a search, page after page."""
        return self._pages(lambda cursor: self.cards(q, cursor=cursor, **filters))

    def card(self, card_id: str) -> CardDetail:
        return self._get(f"/v1/cards/{_segment(card_id)}", CardDetail)

    def fair_price(self, card_id: str, date: str | None = None) -> FairPriceAnswer:
        return self._get(
            f"/v1/cards/{_segment(card_id)}/fair-price", FairPriceAnswer, {"date": date}
        )

    def history(self, card_id: str, start: str | None = None, end: str | None = None) -> History:
        return self._get(
            f"/v1/cards/{_segment(card_id)}/history", History, {"from": start, "to": end}
        )

    def history_csv(self, card_id: str, start: str | None = None, end: str | None = None) -> str:
        response = self._request(
            "GET",
            f"/v1/cards/{_segment(card_id)}/history",
            params={"from": start, "to": end},
            headers={"Accept": "text/csv"},
        )
        return response.text

    def sets(self) -> SetList:
        return self._get("/v1/sets", SetList)

    def signals(
        self,
        signal: Literal["BUY", "SELL"] = "BUY",
        *,
        set_code: str | None = None,
        min_price: float | None = None,
        limit: int | None = None,
        cursor: str | None = None,
    ) -> SignalList:
        params = {
            "signal": signal,
            "set": set_code,
            "min_price": min_price,
            "limit": limit,
            "cursor": cursor,
        }
        return self._get("/v1/signals", SignalList, params)

    def iter_signals(
        self, signal: Literal["BUY", "SELL"] = "BUY", **filters: Any
    ) -> Iterator[CardEntry]:
        return self._pages(lambda cursor: self.signals(signal, cursor=cursor, **filters))

    def valuate(self, holdings: Sequence[Mapping[str, Any]]) -> Valuation:
        """`holdings`: `{"card_id", "quantity", "cost_basis"?}` (cost of the whole line)."""
        response = self._request("POST", "/v1/portfolio/valuate", json=list(holdings))
        return Valuation.model_validate_json(response.content)

    def export(self, day: str = "latest", file_format: ExportFormat = "parquet") -> bytes:
        """The day's answers for every item, as the file (`batch` scope)."""
        return self._request("GET", f"/v1/export/{_segment(day)}.{file_format}").content

    # --- plumbing ------------------------------------------------------------------------

    def _get(
        self,
        path: str,
        answer: type[Answer],
        params: Mapping[str, str | int | float | None] | None = None,
    ) -> Answer:
        response = self._request("GET", path, params=params)
        return answer.model_validate_json(response.content)

    def _pages(self, fetch: Callable[[str | None], ListAnswer]) -> Iterator[CardEntry]:
        cursor: str | None = None
        while True:
            page = fetch(cursor)
            yield from page.items
            if page.next_cursor is None:
                return
            cursor = page.next_cursor

    def _request(
        self,
        method: str,
        path: str,
        params: Mapping[str, str | int | float | None] | None = None,
        **options: Any,
    ) -> httpx.Response:
        query = {name: value for name, value in (params or {}).items() if value is not None}
        attempt = 0
        while True:
            response = self.http.request(method, path, params=query, **options)
            if response.status_code == 429 and attempt < self.max_retries:
                attempt += 1
                self.sleep(min(_retry_after(response), self.max_retry_wait))
                continue
            if response.status_code >= 400:
                raise _error(response)
            return response


def _segment(value: str) -> str:
    """A path segment, percent-encoded (ids are plain, but never trust a caller's)."""
    return quote(value, safe="")


def _retry_after(response: httpx.Response) -> float:
    try:
        return max(0.0, float(response.headers.get("retry-after", "1")))
    except ValueError:
        return 1.0


def _error(response: httpx.Response) -> PokeWatchError:
    try:
        body = response.json()
    except ValueError:
        body = {}
    if not isinstance(body, dict):
        body = {}
    return PokeWatchError(
        response.status_code,
        str(body.get("error", "error")),
        str(body.get("detail", response.reason_phrase)),
        response.headers.get("x-request-id"),
    )
