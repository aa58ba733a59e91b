"""The typed v1 client against a local server speaking the service's wire format."""

from __future__ import annotations

import json

import pytest
from pytest_httpserver import HTTPServer

from service.client import PokeWatchClient, PokeWatchError

ENTRY: dict[str, object] = {
    "card_id": "tcg-1",
    "name": "Booster Box",
    "set_code": "23237",
    "number": None,
    "rarity": None,
    "printing": "Normal",
    "price_date": "2025-10-09",
    "market_price": 100.0,
    "buy_price": None,
    "fair_price": 110.0,
    "fair_low": 105.0,
    "fair_high": 120.0,
    "deviation_pct": -0.0909,
    "signal": "BUY",
    "reason": None,
    "edge_pct": 0.0476,
    "history_days": 400,
    "data_as_of": "2025-11-29",
}


def page(items: list[dict[str, object]], cursor: str | None) -> dict[str, object]:
    return {
        "items": items,
        "data_as_of": "2025-11-29",
        "stale": False,
        "model_version": "pokewatch-fair-price:v1",
        "total": 2,
        "limit": 1,
        "next": None if cursor is None else f"/v1/cards?limit=1&cursor={cursor}",
        "next_cursor": cursor,
    }


def test_iter_cards_follows_the_cursor_and_waits_out_429(httpserver: HTTPServer) -> None:
    second = {**ENTRY, "card_id": "tcg-2"}
    httpserver.expect_ordered_request(
        "/v1/cards", query_string={"q": "box", "limit": "1"}, headers={"X-API-Key": "k"}
    ).respond_with_json(page([ENTRY], "c1"))
    httpserver.expect_ordered_request("/v1/cards").respond_with_json(
        {"error": "rate_limited", "detail": "retry after 3 s"},
        status=429,
        headers={"Retry-After": "3"},
        content_type="application/problem+json",
    )
    httpserver.expect_ordered_request(
        "/v1/cards", query_string={"q": "box", "limit": "1", "cursor": "c1"}
    ).respond_with_json(page([second], None))
    waits: list[float] = []
    with PokeWatchClient(httpserver.url_for("/"), "k", sleep=waits.append) as client:
        found = [card.card_id for card in client.iter_cards("box", limit=1)]
    assert found == ["tcg-1", "tcg-2"]
    assert waits == [3.0]


def test_errors_carry_the_service_body(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/v1/cards/nope").respond_with_json(
        {"error": "card_not_found", "detail": "no card with id 'nope'", "request_id": "r1"},
        status=404,
        headers={"X-Request-ID": "r1"},
    )
    httpserver.expect_request("/v1/sets").respond_with_data("upstream broke", status=502)
    with PokeWatchClient(httpserver.url_for("/"), "k") as client:
        with pytest.raises(PokeWatchError) as missing:
            client.card("nope")
        with pytest.raises(PokeWatchError) as broken:
            client.sets()
    assert (missing.value.status, missing.value.error, missing.value.request_id) == (
        404,
        "card_not_found",
        "r1",
    )
    assert (broken.value.status, broken.value.error) == (502, "error")


def test_retries_are_bounded_and_ids_are_one_path_segment(httpserver: HTTPServer) -> None:
    # The fake decodes %2F before matching; the raw request line is checked below.
    httpserver.expect_request("/v1/cards/a/b").respond_with_json(
        {"error": "rate_limited", "detail": "later"}, status=429, headers={"Retry-After": "999"}
    )
    waits: list[float] = []
    with (
        PokeWatchClient(
            httpserver.url_for("/"), "k", max_retries=2, max_retry_wait=5, sleep=waits.append
        ) as client,
        pytest.raises(PokeWatchError) as caught,
    ):
        client.card("a/b")
    assert caught.value.status == 429
    assert waits == [5, 5]
    assert len(httpserver.log) == 3
    request, response = httpserver.log[0]
    assert request.environ["REQUEST_URI"].startswith("/v1/cards/a%2Fb")
    assert json.loads(response.get_data())["error"] == "rate_limited"
