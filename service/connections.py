"""Slow and idle clients, bounded where they are seen: in uvicorn's connection protocol.

BentoML 1.4.39 serves with uvicorn 0.55.0 (httptools parser), which never times out a
request whose headers or body stop arriving: 1,000 connections each sending half a request
stayed open for 200 s and more, and every one holds a file descriptor. An ASGI middleware
cannot help with headers (the app is called once they are complete), and uvicorn's own
`limit_concurrency`, which BentoML does not pass anyway, answers 503. So
`guard_connections` wraps four methods of uvicorn's `HttpToolsProtocol`:

- **A read deadline.** A request's headers and body must arrive within `read_seconds` of
  the connection opening (or, on a kept-alive connection, of the request's first byte).
  Otherwise the client gets 408 with `Connection: close` if nothing was answered yet, the
  app sees `http.disconnect`, and the connection is closed. Time the app spends answering is
  not counted (`service.timeout_seconds` bounds that). Idle kept-alive connections are closed
  by uvicorn's `timeout_keep_alive`.
- **A connection cap.** A worker holding `max_connections` open connections closes a new
  one at once, before reading from it: no 5xx, and the descriptors left for the ones served.
- **A head size limit.** A request line and headers over `max_header_bytes` get 431 and the
  connection is closed: whether they arrived whole (10,000 headers) or are still coming
  (a header that never ends, which httptools would buffer until the deadline).

All three count in `pokewatch_connections_closed_total{reason}`. Like `service.patches`, this
names the exact uvicorn version it was written for and does nothing on another.
"""

from __future__ import annotations

import asyncio
import logging
from http import HTTPStatus
from typing import Any

import orjson
import uvicorn

from service.errors import error_body
from service.metrics import labelled, service_metrics

logger = logging.getLogger("pokewatch.connections")

UVICORN_GUARDED_VERSION = "0.55.0"
READ_TIMEOUT = "read_timeout"
OVER_CAPACITY = "over_capacity"
HEADERS_TOO_LARGE = "headers_too_large"


def closing_response(status: HTTPStatus, error: str, detail: str) -> bytes:
    """A raw error answer with `Connection: close`, written to the transport: no ASGI cycle
    exists for it (or the app is still waiting for the body)."""
    body = orjson.dumps(error_body(error, detail))
    head = (
        f"HTTP/1.1 {status.value} {status.phrase}\r\n"
        "content-type: application/json\r\n"
        f"content-length: {len(body)}\r\n"
        "connection: close\r\n\r\n"
    )
    return head.encode() + body


def closed(reason: str) -> None:
    labelled(service_metrics().connections_closed, reason).inc()


def guard_connections(read_seconds: float, max_connections: int, max_header_bytes: int) -> bool:
    """Install the read deadline, the connection cap and the head size limit; True when
    they are installed."""
    if uvicorn.__version__ != UVICORN_GUARDED_VERSION:
        logger.warning(
            "uvicorn %s: no read deadline or connection cap (written for %s)",
            uvicorn.__version__,
            UVICORN_GUARDED_VERSION,
        )
        return False
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

    protocol: Any = HttpToolsProtocol
    original = getattr(protocol, "pokewatch_original", None)
    if original is None:
        original = protocol.pokewatch_original = {
            name: getattr(protocol, name)
            for name in (
                "connection_made",
                "connection_lost",
                "data_received",
                "on_message_begin",
                "on_headers_complete",
                "on_body",
                "on_message_complete",
            )
        }
    timeout_response = closing_response(
        HTTPStatus.REQUEST_TIMEOUT,
        "request_timeout",
        f"the request was not received within {read_seconds:g} s",
    )
    too_large_response = closing_response(
        HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE,
        "headers_too_large",
        f"the request line and headers are over {max_header_bytes} bytes",
    )

    def arm(self: Any) -> None:
        if getattr(self, "pokewatch_deadline", None) is None:
            self.pokewatch_deadline = self.loop.call_later(read_seconds, read_timed_out, self)
        self.pokewatch_reading_headers = True

    def refuse_headers(self: Any) -> None:
        closed(HEADERS_TOO_LARGE)
        self.pokewatch_refused = True
        disarm(self)
        self.transport.write(too_large_response)
        self.transport.close()

    def disarm(self: Any) -> None:
        deadline: asyncio.TimerHandle | None = getattr(self, "pokewatch_deadline", None)
        if deadline is not None:
            deadline.cancel()
            self.pokewatch_deadline = None

    def read_timed_out(self: Any) -> None:
        self.pokewatch_deadline = None
        if self.transport.is_closing():
            return
        closed(READ_TIMEOUT)
        cycle = self.cycle if not self.pokewatch_reading_headers else None
        if cycle is None or not cycle.response_started:
            self.transport.write(timeout_response)
        if cycle is not None:
            cycle.disconnected = True
            cycle.message_event.set()
        self.transport.close()

    def connection_made(self: Any, transport: asyncio.Transport) -> None:
        original["connection_made"](self, transport)
        self.pokewatch_refused = self.pokewatch_reading_headers = False
        self.pokewatch_head_received = 0
        if len(self.connections) > max_connections:
            closed(OVER_CAPACITY)
            transport.close()
            return
        arm(self)

    def connection_lost(self: Any, exc: Exception | None) -> None:
        disarm(self)
        original["connection_lost"](self, exc)

    def data_received(self: Any, data: bytes) -> None:
        if self.pokewatch_refused:
            return
        original["data_received"](self, data)
        if self.pokewatch_reading_headers and not self.pokewatch_refused:
            # Still no end of the headers: everything since the last request is head.
            self.pokewatch_head_received += len(data)
            if self.pokewatch_head_received > max_header_bytes:
                refuse_headers(self)

    def on_message_begin(self: Any) -> None:
        original["on_message_begin"](self)
        arm(self)

    def on_headers_complete(self: Any) -> None:
        self.pokewatch_reading_headers = False
        self.pokewatch_head_received = 0
        head = len(self.url) + sum(len(name) + len(value) + 4 for name, value in self.headers)
        if head > max_header_bytes:
            refuse_headers(self)  # the app never sees this request
            return
        original["on_headers_complete"](self)

    def on_body(self: Any, body: bytes) -> None:
        if not self.pokewatch_refused:
            original["on_body"](self, body)

    def on_message_complete(self: Any) -> None:
        disarm(self)
        if not self.pokewatch_refused:
            original["on_message_complete"](self)

    protocol.connection_made = connection_made
    protocol.connection_lost = connection_lost
    protocol.data_received = data_received
    protocol.on_message_begin = on_message_begin
    protocol.on_headers_complete = on_headers_complete
    protocol.on_body = on_body
    protocol.on_message_complete = on_message_complete
    return True


__all__ = ["UVICORN_GUARDED_VERSION", "closing_response", "guard_connections"]
