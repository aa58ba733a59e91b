"""Hostile HTTP against a real `bentoml serve`: every probe gets a 4xx (or a correct 200),
never a 5xx, and the service answers ordinary requests after each."""

import pytest

from tests.faults.conftest import MAX_HEADER_BYTES, raw_request, served

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def post(path: str, body: bytes, extra: bytes = b"") -> bytes:
    return (
        f"POST {path} HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n".encode()
        + f"Content-Length: {len(body)}\r\nKEY\r\n".encode()
        + extra
        + b"\r\n"
        + body
    )


def get(path: str, extra: bytes = b"") -> bytes:
    return f"GET {path} HTTP/1.1\r\nHost: localhost\r\nKEY\r\n".encode() + extra + b"\r\n"


PROBES: dict[str, tuple[bytes, set[int]]] = {
    "10k-headers": (
        get("/v1/cards/tcg-133777", b"".join(b"X-Pad-%d: v\r\n" % n for n in range(10_000))),
        {431},
    ),
    "one-endless-header": (get("/v1/cards/tcg-133777", b"X-Long: " + b"a" * 100_000), {431}),
    "long-url": (get("/v1/cards/" + "a" * 100_000), {431}),
    "1GB-declared-body": (
        b"POST /fair_price HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
        b"KEY\r\nContent-Length: 1073741824\r\n\r\n{",
        {413},
    ),
    "invalid-utf8-in-json": (post("/fair_price", b'{"card_id": "\xff\xfe"}'), {400}),
    "nul-in-json-id": (post("/fair_price", b'{"card_id": "tcg-\\u0000133777"}'), {404}),
    "raw-nul-in-json": (post("/fair_price", b'{"card_id": "tcg\x00"}'), {400}),
    "invalid-utf8-in-path": (get("/v1/cards/%ff%fe"), {404}),
    "nul-in-path": (get("/v1/cards/tcg-%00133777"), {404}),
    "nul-in-query": (get("/v1/cards?q=char%00izard"), {200, 400}),
    "invalid-utf8-in-query": (get("/v1/cards?q=%ff"), {200, 400}),
    "deeply-nested-json": (post("/fair_price", b"[" * 100_000 + b"]" * 100_000), {400}),
    "deeply-nested-batch": (
        post("/batch_predict", b'{"items": ' + b"[" * 5_000 + b"]" * 5_000 + b"}"),
        {200, 400},
    ),
    "1e400-date": (post("/fair_price", b'{"card_id": "tcg-133777", "date": 1e400}'), {400}),
    "1e400-limit": (post("/cards", b'{"limit": 1e400}'), {400}),
    "1e400-in-portfolio": (
        post("/v1/portfolio/valuate", b'{"items": [{"card_id": "tcg-133777", "quantity": 1e400}]}'),
        {400},
    ),
    "1e400-query": (get("/v1/cards?limit=1e400"), {400}),
    "duplicate-keys": (
        post("/fair_price", b'{"card_id": "nope", "card_id": "tcg-133777"}'),
        {200},
    ),
    "wrong-host": (
        b"GET /v1/cards/tcg-133777 HTTP/1.1\r\nHost: evil.example\r\nKEY\r\n\r\n",
        {200},
    ),
    "http10-without-host": (b"GET /v1/cards/tcg-133777 HTTP/1.0\r\nKEY\r\n\r\n", {200}),
    "garbage-request-line": (b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n", {400}),
    "put-with-form": (
        b"PUT /fair_price HTTP/1.1\r\nHost: localhost\r\nKEY\r\n"
        b"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 9\r\n\r\ncard_id=x",
        {405},
    ),
    "negative-content-length": (
        b"POST /fair_price HTTP/1.1\r\nHost: localhost\r\nKEY\r\nContent-Length: -1\r\n\r\n",
        {400},
    ),
}


@pytest.mark.parametrize("name", sorted(PROBES))
def test_hostile_request_gets_a_clear_4xx(guarded: str, api_key: str, name: str) -> None:
    request, expected = PROBES[name]
    answer = raw_request(guarded, request.replace(b"KEY", f"X-API-Key: {api_key}".encode()))
    assert answer.status in expected, answer.data[:500]
    assert served(guarded, api_key) == 200


def test_the_head_limit_counts_what_a_real_client_sends(guarded: str, api_key: str) -> None:
    """Ordinary headers well under the limit are served (the limit is not a guess)."""
    filler = b"X-Trace: " + b"t" * (MAX_HEADER_BYTES // 2) + b"\r\n"
    answer = raw_request(
        guarded,
        get("/v1/cards/tcg-133777", filler).replace(b"KEY", f"X-API-Key: {api_key}".encode()),
    )
    assert answer.status == 200, answer.data[:300]
