"""The connection guard's own contract (its behaviour on a real server: tests/faults)."""

from http import HTTPStatus

import pytest
import uvicorn

from service.connections import UVICORN_GUARDED_VERSION, closing_response, guard_connections


def test_written_for_the_installed_uvicorn() -> None:
    assert uvicorn.__version__ == UVICORN_GUARDED_VERSION


def test_another_uvicorn_is_left_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

    monkeypatch.setattr(uvicorn, "__version__", "0.0.1")
    before = HttpToolsProtocol.data_received
    assert guard_connections(1, 10, 4096) is False
    assert HttpToolsProtocol.data_received is before


def test_closing_response_is_a_whole_http_answer() -> None:
    raw = closing_response(HTTPStatus.REQUEST_TIMEOUT, "request_timeout", "too slow")
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    assert lines[0] == b"HTTP/1.1 408 Request Timeout"
    assert b"connection: close" in lines
    assert f"content-length: {len(body)}".encode() in lines
    assert body == b'{"error":"request_timeout","detail":"too slow"}'
