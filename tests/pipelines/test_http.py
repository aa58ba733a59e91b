"""The shared retry policy against a local server: what is retried, how long it waits."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from pipelines.settings import RetrySettings
from pipelines.sources import SourceError
from pipelines.sources.http import JsonClient
from tests.pipelines.conftest import FAST_RETRY, Sleeps


def client(server: HTTPServer, sleeps: Sleeps, retry: RetrySettings = FAST_RETRY) -> JsonClient:
    return JsonClient(server.url_for(""), retry, timeout_seconds=0.5, sleep=sleeps)


def test_429_with_retry_after_seconds_waits_that_long(
    httpserver: HTTPServer, sleeps: Sleeps
) -> None:
    httpserver.expect_ordered_request("/x").respond_with_data(
        "slow down", status=429, headers={"Retry-After": "2"}
    )
    httpserver.expect_ordered_request("/x").respond_with_json({"ok": True})
    assert client(httpserver, sleeps).get_json("/x") == {"ok": True}
    assert sleeps == [2.0]


def test_retry_after_as_http_date_and_capped(httpserver: HTTPServer, sleeps: Sleeps) -> None:
    soon = format_datetime(datetime.now(UTC) + timedelta(seconds=3), usegmt=True)
    far = format_datetime(datetime.now(UTC) + timedelta(hours=5), usegmt=True)
    httpserver.expect_ordered_request("/x").respond_with_data(
        "", status=503, headers={"Retry-After": soon}
    )
    httpserver.expect_ordered_request("/x").respond_with_data(
        "", status=429, headers={"Retry-After": far}
    )
    httpserver.expect_ordered_request("/x").respond_with_json([1])
    assert client(httpserver, sleeps).get_json("/x") == [1]
    assert 1.0 <= sleeps[0] <= 3.0
    assert sleeps[1] == FAST_RETRY.max_retry_after_seconds


def test_5xx_retried_with_capped_full_jitter(httpserver: HTTPServer, sleeps: Sleeps) -> None:
    httpserver.expect_ordered_request("/x").respond_with_data("", status=500)
    httpserver.expect_ordered_request("/x").respond_with_data("", status=502)
    httpserver.expect_ordered_request("/x").respond_with_json({"fine": 1})
    assert client(httpserver, sleeps).get_json("/x") == {"fine": 1}
    assert len(sleeps) == 2
    assert all(0 <= wait <= FAST_RETRY.max_wait_seconds for wait in sleeps)


def test_gives_up_after_the_attempts(httpserver: HTTPServer, sleeps: Sleeps) -> None:
    httpserver.expect_request("/x").respond_with_data("", status=503)
    with pytest.raises(SourceError, match="503"):
        client(httpserver, sleeps).get_json("/x")
    assert len(httpserver.log) == FAST_RETRY.attempts


@pytest.mark.parametrize("status", [401, 403, 404])
def test_client_errors_are_not_retried(httpserver: HTTPServer, sleeps: Sleeps, status: int) -> None:
    httpserver.expect_request("/x").respond_with_data("no", status=status)
    with pytest.raises(SourceError, match=str(status)):
        client(httpserver, sleeps).get_json("/x")
    assert len(httpserver.log) == 1
    assert sleeps == []


def test_timeouts_are_retried(httpserver: HTTPServer, sleeps: Sleeps) -> None:
    released = threading.Event()

    def too_slow(request: Request) -> Response:
        released.wait(timeout=5)
        return Response("{}", content_type="application/json")

    httpserver.expect_request("/x").respond_with_handler(too_slow)
    retry = FAST_RETRY.model_copy(update={"attempts": 2})
    try:
        with pytest.raises(SourceError, match="Timeout"):
            client(httpserver, sleeps, retry).get_json("/x")
    finally:
        # The one-threaded test server must not still be stuck here when the next test
        # sends its first request (it would time out there, and be retried).
        released.set()
    assert len(sleeps) == 1


def test_connection_errors_are_retried(sleeps: Sleeps) -> None:
    unreachable = JsonClient("http://127.0.0.1:9", FAST_RETRY, timeout_seconds=0.5, sleep=sleeps)
    with pytest.raises(SourceError, match="Connect"):
        unreachable.get_json("/x")
    assert len(sleeps) == FAST_RETRY.attempts - 1


def test_malformed_json_is_a_clear_error_without_retry(
    httpserver: HTTPServer, sleeps: Sleeps
) -> None:
    httpserver.expect_request("/x").respond_with_data(
        '{"results": [', content_type="application/json"
    )
    with pytest.raises(SourceError, match="malformed JSON"):
        client(httpserver, sleeps).get_json("/x")
    assert sleeps == []
