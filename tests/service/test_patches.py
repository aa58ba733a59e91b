"""The BentoML 1.4.39 patches: no timer outlives its request, timeouts still answer 504,
and the no-op tracing middleware is left out only while tracing is off."""

import asyncio

import pytest
from bentoml._internal.server.http.traffic import TimeoutMiddleware
from starlette.types import Message, Receive, Scope, Send

from service.patches import apply_patches, skip_disabled_tracing_middleware

apply_patches()

SCOPE: Scope = {"type": "http", "method": "POST", "path": "/", "headers": []}


async def receive() -> Message:
    return {"type": "http.request", "body": b""}


def run(app_delay: float, timeout: float, requests: int = 1) -> tuple[list[int], int]:
    """Statuses answered, and the timers still scheduled on the loop afterwards."""

    async def app(scope: Scope, receive_: Receive, send: Send) -> None:
        await asyncio.sleep(app_delay)
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    middleware = TimeoutMiddleware(app, timeout=timeout)

    async def scenario() -> tuple[list[int], int]:
        statuses: list[int] = []

        async def send(message: Message) -> None:
            if message["type"] == "http.response.start":
                statuses.append(message["status"])

        for _ in range(requests):
            await middleware(SCOPE, receive, send)
        loop = asyncio.get_running_loop()
        pending = [handle for handle in loop._scheduled if not handle.cancelled()]  # type: ignore[attr-defined]
        return statuses, len(pending)

    return asyncio.run(scenario())


def test_no_timer_outlives_its_request() -> None:
    statuses, pending = run(app_delay=0, timeout=60, requests=200)
    assert statuses == [200] * 200
    assert pending == 0


def test_a_slow_app_still_times_out_with_504() -> None:
    statuses, _ = run(app_delay=1, timeout=0.05)
    assert statuses == [504]


@pytest.mark.parametrize(("disabled", "kept"), [("true", False), ("false", True)])
def test_tracing_middleware_only_left_out_while_tracing_is_off(
    monkeypatch: pytest.MonkeyPatch, disabled: str, kept: bool
) -> None:
    from opentelemetry.instrumentation.asgi import OpenTelemetryMiddleware

    from service import PokeWatch

    assert skip_disabled_tracing_middleware()
    monkeypatch.setenv("OTEL_SDK_DISABLED", disabled)
    layers = [layer.cls for layer in PokeWatch.to_asgi().user_middleware]
    assert (OpenTelemetryMiddleware in layers) is kept
    assert TimeoutMiddleware in layers


def test_a_started_response_is_never_cut_off() -> None:
    async def app(scope: Scope, receive_: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await asyncio.sleep(0.1)  # past the timeout, after the start
        await send({"type": "http.response.body", "body": b"ok"})

    sent: list[Message] = []

    async def send(message: Message) -> None:
        sent.append(message)

    asyncio.run(TimeoutMiddleware(app, timeout=0.02)(SCOPE, receive, send))
    assert [message.get("status", message.get("body")) for message in sent] == [200, b"ok"]


def test_the_apps_own_errors_surface_at_once() -> None:
    async def app(scope: Scope, receive_: Receive, send: Send) -> None:
        raise TimeoutError("the app's own")

    async def send(message: Message) -> None:
        raise AssertionError("nothing may be answered for the app")

    with pytest.raises(TimeoutError, match="the app's own"):
        asyncio.run(TimeoutMiddleware(app, timeout=60)(SCOPE, receive, send))
