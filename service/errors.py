"""One error body for every failed request: `{"error": code, "detail": message, "request_id"}`.

BentoML 1.4.39 answers its own errors in several shapes (a JSON array for exceptions
raised in an API, pydantic's error list for invalid input, plain text for unknown routes
and wrong methods). `uniform_body` rewrites any of them; the edge middleware applies it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from http import HTTPStatus
from typing import Any

from starlette.types import Send

ERROR_CODES = {
    400: "invalid_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    408: "timeout",
    413: "payload_too_large",
    415: "unsupported_media_type",
    431: "headers_too_large",
    422: "invalid_request",
    429: "too_many_requests",
    503: "unavailable",
}
# Our handlers' codes are snake_case; BentoML's messages ("1 validation error for ...") are not.
ERROR_CODE_PATTERN = re.compile(r"^[a-z][a-z_]*$")
JSON = b"application/json"


class ApiError(Exception):
    """An answer other than 200 that is not about a query (no model, gone, not acceptable):
    raised in a route, answered with the error body by the app's handler."""

    def __init__(self, status: int, error: str, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.error = error
        self.detail = detail

    @property
    def body(self) -> dict[str, Any]:
        return error_body(self.error, self.detail)


def model_unavailable() -> ApiError:
    """Every route's answer while a worker has no model loaded (the service still starts,
    so /livez answers; /readyz fails)."""
    return ApiError(503, "model_unavailable", "no fair-price model is loaded")


def error_body(error: str, detail: str, **extra: Any) -> dict[str, Any]:
    return {"error": error, "detail": detail, **extra}


async def send_json(
    send: Send,
    status: int,
    body: dict[str, Any],
    headers: Iterable[tuple[bytes, bytes]] = (),
    content_type: bytes = JSON,
) -> None:
    """Send a whole JSON response (for middleware answering before the app)."""
    data = json.dumps(body).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", content_type),
                (b"content-length", str(len(data)).encode()),
                *headers,
            ],
        }
    )
    await send({"type": "http.response.body", "body": data})


def uniform_body(status: int, body: bytes, request_id: str) -> tuple[bytes, bool]:
    """The uniform error body for any error response, and whether it was already uniform."""
    try:
        payload: Any = json.loads(body) if body else None
    except ValueError:
        payload = body.decode("utf-8", "replace").strip()
    if _is_uniform(payload):
        return json.dumps({**payload, "request_id": request_id}).encode(), True
    error = ERROR_CODES.get(status, "internal_error" if status >= 500 else "error")
    detail = _detail(payload) if status < 500 else "an unexpected error occurred"
    if not detail:
        detail = HTTPStatus(status).phrase
    return json.dumps(error_body(error, detail, request_id=request_id)).encode(), False


def _is_uniform(payload: Any) -> bool:
    return (
        isinstance(payload, dict)
        and isinstance(payload.get("error"), str)
        and isinstance(payload.get("detail"), str)
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
    field = ".".join(str(part) for part in location)
    message = str(issue.get("msg", "invalid value"))
    return f"{field}: {message}" if field else message
