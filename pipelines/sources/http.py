"""A JSON-over-HTTP client with the retry policy every source shares.

Retried: connection errors, timeouts, 429 and 5xx, with full-jitter exponential backoff
(tenacity's `wait_random_exponential`), or the server's `Retry-After` (seconds or an
HTTP-date) when it sends one; both are capped. Not retried: anything else, notably
401/403/404 (a bad key or a wrong id does not get better by asking again).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import httpx
from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception,
    stop_after_attempt,
    wait_random_exponential,
)

from pipelines.settings import RetrySettings
from pipelines.sources import SourceError

RETRYABLE_EXCEPTIONS = (httpx.TimeoutException, httpx.NetworkError, httpx.RemoteProtocolError)


def is_retryable(error: BaseException) -> bool:
    if isinstance(error, httpx.HTTPStatusError):
        status = error.response.status_code
        return status == 429 or status >= 500
    return isinstance(error, RETRYABLE_EXCEPTIONS)


def retry_after_seconds(response: httpx.Response, now: datetime | None = None) -> float | None:
    """The `Retry-After` header as seconds from now, or None when absent or unreadable."""
    value = response.headers.get("Retry-After")
    if value is None:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


class _RetryAfterOrBackoff:
    """Tenacity wait: the server's Retry-After when it gave one, else full-jitter backoff."""

    def __init__(self, settings: RetrySettings) -> None:
        self._backoff = wait_random_exponential(
            multiplier=settings.initial_wait_seconds, max=settings.max_wait_seconds
        )
        self._retry_after_cap = settings.max_retry_after_seconds

    def __call__(self, state: RetryCallState) -> float:
        error = state.outcome.exception() if state.outcome else None
        if isinstance(error, httpx.HTTPStatusError):
            asked = retry_after_seconds(error.response)
            if asked is not None:
                return min(asked, self._retry_after_cap)
        return float(self._backoff(state))


class JsonClient:
    """GETs JSON from one base URL; `before_request` runs before every attempt (budgets)."""

    def __init__(
        self,
        base_url: str,
        retry: RetrySettings,
        timeout_seconds: float,
        headers: Mapping[str, str] | None = None,
        sleep: Callable[[float], None] = time.sleep,
        before_request: Callable[[], None] | None = None,
    ) -> None:
        self._http = httpx.Client(
            base_url=base_url, timeout=timeout_seconds, headers=dict(headers or {})
        )
        self._retry = retry
        self._sleep = sleep
        self._before_request = before_request

    def close(self) -> None:
        self._http.close()

    def get_json(self, path: str, params: Mapping[str, str | int] | None = None) -> Any:
        response = self.get(path, params)
        try:
            return response.json()
        except ValueError as error:
            raise SourceError(
                f"GET {response.request.url} answered malformed JSON (a truncated body?): {error}"
            ) from None

    def get_text(self, path: str) -> str:
        return self.get(path).text

    def get(self, path: str, params: Mapping[str, str | int] | None = None) -> httpx.Response:
        """A successful response (after retries), or a SourceError saying what went wrong."""
        retrying = Retrying(
            retry=retry_if_exception(is_retryable),
            stop=stop_after_attempt(self._retry.attempts),
            wait=_RetryAfterOrBackoff(self._retry),
            sleep=self._sleep,
            reraise=True,
        )
        try:
            return retrying(self._attempt, path, params)
        except httpx.HTTPStatusError as error:
            raise SourceError(
                f"GET {error.request.url} answered {error.response.status_code} "
                f"{error.response.reason_phrase}",
                status=error.response.status_code,
            ) from error
        except httpx.HTTPError as error:
            raise SourceError(f"GET {self._http.base_url}{path} failed: {error!r}") from error

    def _attempt(self, path: str, params: Mapping[str, str | int] | None) -> httpx.Response:
        if self._before_request is not None:
            self._before_request()
        response = self._http.get(path, params=params)
        response.raise_for_status()
        return response
