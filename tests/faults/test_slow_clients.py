"""Slow, idle and too many clients against a real `bentoml serve` (service.connections):
half-sent requests get 408 and are closed within the read deadline, one connection over the
cap is closed at once, and other clients are served all along."""

import select
import time

import httpx
import pytest

from tests.faults.conftest import (
    MAX_CONNECTIONS,
    READ_SECONDS,
    SLACK_SECONDS,
    open_raw,
    raw_request,
    read_answer,
    served,
)

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


@pytest.mark.parametrize(
    "partial",
    [
        b"",  # connected, sent nothing
        b"POST /fair_price HTTP/1.1\r\nHost: x\r\nContent-Type: appl",  # half the headers
        # the headers, then 10 of 1,000 declared bytes: direct API, BentoML's app, v1 mount
        b'POST /fair_price HTTP/1.1\r\nHost: x\r\nKEY\r\nContent-Length: 1000\r\n\r\n{"card_id"',
        b'POST /cards HTTP/1.1\r\nHost: x\r\nKEY\r\nContent-Length: 1000\r\n\r\n{"limit": 1',
        b"POST /v1/portfolio/valuate HTTP/1.1\r\nHost: x\r\nKEY\r\nContent-Length: 99\r\n\r\n{",
        # a chunked body whose last chunk never comes
        b"POST /fair_price HTTP/1.1\r\nHost: x\r\nKEY\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"1\r\n{\r\n",
    ],
    ids=[
        "nothing",
        "half-headers",
        "half-body-direct",
        "half-body-bentoml",
        "half-body-v1",
        "endless-chunked",
    ],
)
def test_a_half_sent_request_gets_408_and_is_closed(
    guarded: str, api_key: str, partial: bytes
) -> None:
    """With a valid key (KEY), so that the body is what the service waits for."""
    request = partial.replace(b"KEY", f"X-API-Key: {api_key}".encode())
    answer = raw_request(guarded, request, READ_SECONDS + SLACK_SECONDS, until_closed=True)
    assert answer.closed, answer
    assert answer.status == 408, answer.data
    assert b'"error":"request_timeout"' in answer.data
    assert answer.seconds >= READ_SECONDS - 0.1


def test_a_body_dripping_slower_than_the_deadline_is_cut(guarded: str, api_key: str) -> None:
    """The deadline bounds the whole request, not the gap between bytes."""
    connection = open_raw(
        guarded,
        b"POST /fair_price HTTP/1.1\r\nHost: x\r\nContent-Length: 500\r\n"
        + f"X-API-Key: {api_key}\r\n\r\n".encode(),
    )
    with connection:
        started = time.monotonic()
        for _ in range(40):
            try:
                connection.sendall(b" ")
            except OSError:
                break
            time.sleep(0.1)
        answer = read_answer(connection, SLACK_SECONDS)
    assert answer.closed
    assert answer.status == 408
    assert time.monotonic() - started < READ_SECONDS + SLACK_SECONDS + 1


def test_a_slow_but_complete_request_is_served(guarded: str, api_key: str) -> None:
    body = b'{"card_id": "tcg-133777"}'
    request = (
        b"POST /fair_price HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        + f"X-API-Key: {api_key}\r\nContent-Length: {len(body)}\r\n\r\n".encode()
        + body
    )
    with open_raw(guarded) as connection:
        for start in range(0, len(request), 16):
            connection.sendall(request[start : start + 16])
            time.sleep(0.02)
        answer = read_answer(connection, 1.0)
    assert answer.status == 200, answer.data


def test_the_deadline_applies_to_each_request_on_a_kept_alive_connection(
    guarded: str, api_key: str
) -> None:
    first = (
        b"POST /fair_price HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        + f"X-API-Key: {api_key}\r\nContent-Length: 25\r\n\r\n".encode()
        + b'{"card_id": "tcg-133777"}'
    )
    with open_raw(guarded, first) as connection:
        time.sleep(0.5)  # the first request is answered well within its deadline
        connection.sendall(
            b"POST /fair_price HTTP/1.1\r\nHost: x\r\nContent-Length: 9\r\n"
            + f"X-API-Key: {api_key}\r\n\r\n".encode()
        )
        answer = read_answer(connection, READ_SECONDS + SLACK_SECONDS)
    assert answer.data.startswith(b"HTTP/1.1 200")
    assert b"HTTP/1.1 408" in answer.data
    assert answer.closed


def test_many_half_sent_requests_leave_other_clients_served(guarded: str, api_key: str) -> None:
    """80 half-sent requests (under the cap): the others are served meanwhile; every one of
    the 80 is answered 408 and closed by the deadline, and no descriptor stays behind."""
    partial = (
        b"POST /fair_price HTTP/1.1\r\nHost: x\r\nContent-Length: 50\r\n"
        + f"X-API-Key: {api_key}\r\n\r\n{{".encode()
    )
    connections = [open_raw(guarded, partial) for _ in range(80)]
    try:
        assert [served(guarded, api_key) for _ in range(5)] == [200] * 5
        answers = [read_answer(c, READ_SECONDS + SLACK_SECONDS) for c in connections]
    finally:
        for connection in connections:
            connection.close()
    assert {(a.status, a.closed) for a in answers} == {(408, True)}
    assert served(guarded, api_key) == 200


def test_connections_over_the_cap_are_closed_at_once(guarded: str, api_key: str) -> None:
    connections = [open_raw(guarded) for _ in range(MAX_CONNECTIONS + 20)]
    try:
        time.sleep(0.5)  # well before the read deadline
        readable, _, _ = select.select(connections, [], [], 0)
        # The 20 over the cap (the server may still hold a probe's connection or two),
        # closed without a byte sent.
        assert 20 <= len(readable) <= 25
        assert [read_answer(c, 1).data for c in readable] == [b""] * len(readable)
    finally:
        for connection in connections:
            connection.close()
    deadline = time.monotonic() + SLACK_SECONDS
    while time.monotonic() < deadline and served(guarded, api_key) != 200:
        time.sleep(0.1)
    assert served(guarded, api_key) == 200
    metrics = httpx.get(guarded + "/metrics", timeout=10).text
    assert 'pokewatch_connections_closed_total{reason="over_capacity"}' in metrics


def test_cut_requests_are_no_5xx_in_the_metrics(guarded: str) -> None:
    """After the half-sent requests above: the apps never saw them, so BentoML counted no
    5xx for them (it counts what an app answers, even to a client that is gone)."""
    text = httpx.get(guarded + "/metrics", timeout=10).text
    server_errors = [
        line
        for line in text.splitlines()
        if line.startswith("bentoml_service_request_total{")
        and 'http_response_code="5' in line
        and float(line.split()[-1]) > 0
    ]
    assert server_errors == []
