"""Fixes to third-party code, applied when the service is imported (`service.app`).

Each patch names the exact version it fixes and does nothing on any other: a new release
either fixed the problem or changed the code, and must be looked at again.

BentoML 1.4.39, `bentoml._internal.server.http.traffic.TimeoutMiddleware`: every request
arms `loop.call_later(timeout, ...)` and never cancels it. The timer handle keeps the
request's waiter future (and through it the request's context) alive for `traffic.timeout`
seconds after the answer went out: at a few thousand requests a second that is tens of
thousands of live objects per worker, long garbage-collector pauses (hundreds of ms, seen
as p99 latency) and a heap that grows with the load. It also runs every request in a task
of its own, with a future to wait on: about a tenth of a worker's CPU (py-spy,
docs/performance.md). The patched `__call__` below keeps its behaviour (504 when the
response has not started within the timeout; once it started, the timeout is over) with
`asyncio.timeout` in the request's own task, its timer cancelled as soon as the response
starts or the request ends. An app that ends without answering no longer waits out the
timeout: its result (or error) surfaces at once, as it would without the middleware.

BentoML 1.4.39, `_bentoml_impl.server.app.ServiceAppFactory.middlewares`: the
OpenTelemetry ASGI middleware is installed on every service even when the OpenTelemetry
SDK is switched off (`OTEL_SDK_DISABLED=true`, set by the bentofile, the Makefile and the
tests). It then only makes no-op spans, yet reads every header, builds the span
attributes and wraps every `send`: about 14 % of a worker's CPU on /fair_price (py-spy,
docs/performance.md). With the SDK off it is left out; nothing is lost but the
`X-BentoML-Request-ID: 0000000000000000` header of a no-op span (PokeWatch's own
`X-Request-ID` names each request). With tracing on, it stays.
"""

from __future__ import annotations

import asyncio
import logging
import os
from typing import Any

import bentoml
from starlette.responses import JSONResponse
from starlette.types import Message, Receive, Scope, Send

logger = logging.getLogger("pokewatch.patches")

BENTOML_PATCHED_VERSION = "1.4.39"


async def _timeout_call(self: Any, scope: Scope, receive: Receive, send: Send) -> None:
    """`TimeoutMiddleware.__call__` of BentoML 1.4.39 with its timer cancelled, in the
    request's own task: 504 when the response has not started within the timeout."""
    if scope["type"] not in ("http", "websocket"):
        await self.app(scope, receive, send)
        return
    deadline = asyncio.timeout(self.timeout)
    started = False

    async def _send(message: Message) -> None:
        nonlocal started
        if not started:
            started = True
            deadline.reschedule(None)  # from the response's start the timeout is over
        await send(message)

    try:
        async with deadline:
            await self.app(scope, receive, _send)
    except TimeoutError:
        if not deadline.expired():
            raise  # the app's own error, not the timeout
        response = JSONResponse(
            {"error": f"Not able to process the request in {self.timeout} seconds"},
            status_code=504,
        )
        await response(scope, receive, send)


def patch_bentoml_timeout_middleware() -> bool:
    """Install the fix on BentoML 1.4.39; True when it is (now or already) installed."""
    if bentoml.__version__ != BENTOML_PATCHED_VERSION:
        logger.info(
            "bentoml %s: TimeoutMiddleware patch (for %s) not applied",
            bentoml.__version__,
            BENTOML_PATCHED_VERSION,
        )
        return False
    from bentoml._internal.server.http.traffic import TimeoutMiddleware

    TimeoutMiddleware.__call__ = _timeout_call  # type: ignore[method-assign]
    return True


def tracing_disabled() -> bool:
    """The OpenTelemetry SDK's own test of `OTEL_SDK_DISABLED`."""
    return os.environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true"


def skip_disabled_tracing_middleware() -> bool:
    """Leave the OpenTelemetry middleware out while the SDK is disabled (BentoML 1.4.39)."""
    if bentoml.__version__ != BENTOML_PATCHED_VERSION:
        return False
    from _bentoml_impl.server.app import ServiceAppFactory
    from opentelemetry.instrumentation.asgi import OpenTelemetryMiddleware

    built = ServiceAppFactory.middlewares
    if getattr(built.fget, "pokewatch_patch", False):
        return True

    def middlewares(self: Any) -> list[Any]:
        stack: list[Any] = built.fget(self)
        if tracing_disabled():
            stack = [layer for layer in stack if layer.cls is not OpenTelemetryMiddleware]
        return stack

    middlewares.pokewatch_patch = True  # type: ignore[attr-defined]
    ServiceAppFactory.middlewares = property(middlewares)
    return True


def patches_switched_off() -> bool:
    """`POKEWATCH_BENTOML_PATCHES=0`: BentoML runs as released (to measure what the
    patches and `service.edge.DirectApi` buy, or should one ever misbehave)."""
    return os.environ.get("POKEWATCH_BENTOML_PATCHES", "1").strip() == "0"


def patches_enabled() -> bool:
    """The BentoML version the patches (and `service.edge.DirectApi`) were written for, not
    switched off."""
    return bentoml.__version__ == BENTOML_PATCHED_VERSION and not patches_switched_off()


def apply_patches() -> None:
    """Every patch of this module (idempotent), unless switched off."""
    if patches_switched_off():
        logger.warning("POKEWATCH_BENTOML_PATCHES=0: BentoML runs unpatched")
        return
    patch_bentoml_timeout_middleware()
    skip_disabled_tracing_middleware()
