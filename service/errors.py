"""One error body for every failed request: `{"error": code, "detail": message}`.

BentoML 1.4.39 answers its own errors in several shapes (a JSON array for exceptions
raised in an API, pydantic's error list for invalid input, plain text for unknown routes).
This plain ASGI middleware rewrites those error responses; successful responses and
bodies already in the uniform shape pass through untouched and unbuffered.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from http import HTTPStatus
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

# Our handlers' codes are snake_case; BentoML's messages ("1 validation error for ...") are not.
ERROR_CODE_PATTERN = re.compile(r"^[a-z][a-z_]*$")
# BentoML's own endpoints keep their answers (probes read status codes only).
EXEMPT_PATHS = frozenset({"/livez", "/readyz", "/healthz", "/metrics", "/docs.json"})
ERROR_CODES = {
    400: "invalid_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    408: "timeout",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "invalid_request",
    429: "too_many_requests",
    503: "unavailable",
}


class UniformErrorsMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in EXEMPT_PATHS:
            await self.app(scope, receive, send)
            return
        start: Message | None = None
        chunks: list[bytes] = []

        async def reshape_errors(message: Message) -> None:
            nonlocal start
            if message["type"] == "http.response.start" and message["status"] >= 400:
                start = message
                return
            if start is None:
                await send(message)
                return
            chunks.append(message.get("body", b""))
            if message.get("more_body", False):
                return
            body = uniform_body(start["status"], b"".join(chunks))
            headers = [
                (name, value)
                for name, value in start["headers"]
                if name.lower() not in (b"content-length", b"content-type")
            ]
            headers += [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
            ]
            await send({**start, "headers": headers})
            await send({"type": "http.response.body", "body": body})

        await self.app(scope, receive, reshape_errors)


def uniform_body(status: int, body: bytes) -> bytes:
    try:
        payload: Any = json.loads(body) if body else None
    except ValueError:
        payload = body.decode("utf-8", "replace").strip()
    if _is_uniform(payload):
        return body
    error = ERROR_CODES.get(status, "internal_error" if status >= 500 else "error")
    detail = _detail(payload) if status < 500 else "an unexpected error occurred"
    return json.dumps({"error": error, "detail": detail or HTTPStatus(status).phrase}).encode()


def _is_uniform(payload: Any) -> bool:
    return (
        isinstance(payload, dict)
        and set(payload) >= {"error", "detail"}
        and isinstance(payload["error"], str)
        and isinstance(payload["detail"], str)
        and ERROR_CODE_PATTERN.fullmatch(payload["error"]) is not None
    )


def _detail(payload: Any) -> str:
    if isinstance(payload, list) and payload:
        return _detail(payload[0])
    if isinstance(payload, dict):
        detail = payload.get("detail")
        if isinstance(detail, list):
            return "; ".join(_validation_message(issue) for issue in detail)
        return str(detail or payload.get("error") or "")
    return str(payload or "")


def _validation_message(issue: Any) -> str:
    if not isinstance(issue, dict):
        return str(issue)
    location: Iterable[Any] = issue.get("loc") or ()
    field = ".".join(str(part) for part in location if part not in ("body",))
    message = str(issue.get("msg", "invalid value"))
    return f"{field}: {message}" if field else message
