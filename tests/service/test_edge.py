"""The hot APIs answered directly (`service.edge.DirectApi`) answer as BentoML's own path."""

from __future__ import annotations

from typing import Any

import bentoml
import pytest
from _bentoml_impl.server.app import ServiceAppFactory
from starlette.responses import Response
from starlette.testclient import TestClient
from starlette.types import Receive, Scope, Send

from service.edge import DirectApiMiddleware
from service.security import cors_policy
from service.settings import CorsSettings
from tests.service.test_app import CHARIZARD

REQUESTS: list[tuple[str, Any]] = [
    ("/fair_price", {"card_id": CHARIZARD}),
    ("/fair_price", {"card_id": CHARIZARD, "date": "2025-11-27"}),
    ("/fair_price", {"card_id": CHARIZARD, "date": "2025-13-01"}),
    ("/fair_price", {"card_id": CHARIZARD, "date": 20251127}),
    ("/fair_price", {"card_id": "no-such-card"}),
    ("/fair_price", {"card_id": ""}),
    ("/fair_price", {"card_id": "x" * 129}),
    ("/fair_price", {}),
    ("/fair_price", {"card_id": CHARIZARD, "extra": 1}),
    ("/fair_price", b""),
    ("/fair_price", b"{not json"),
    ("/fair_price", b"[1, 2]"),
    ("/fair_price", b'{"card_id": "a\\u0000b"}'),
    ("/batch_predict", {"items": [{"card_id": CHARIZARD}, {"card_id": 7}, "x"]}),
    ("/batch_predict", {"items": []}),
    ("/batch_predict", {"items": "not a list"}),
    ("/batch_predict", {"items": [{"card_id": CHARIZARD}] * 1001}),
]


def direct_layer(client: TestClient) -> DirectApiMiddleware:
    """The service's DirectApiMiddleware, found by walking the built middleware stack."""
    layer: Any = client.app
    seen = 0
    while not isinstance(layer, DirectApiMiddleware):
        layer = getattr(layer, "middleware_stack", None) or layer.app
        seen += 1
        assert seen < 50, "no DirectApiMiddleware in the service's stack"
    return layer


def answer(client: TestClient, path: str, body: Any) -> tuple[int, Any]:
    if isinstance(body, bytes):
        response = client.post(path, content=body, headers={"content-type": "application/json"})
    else:
        response = client.post(path, json=body)
    payload = response.json()
    if isinstance(payload, dict):
        payload.pop("request_id", None)
    return response.status_code, payload


V1_REQUESTS: list[tuple[str, str, dict[str, str]]] = [
    ("GET", f"/v1/cards/{CHARIZARD}", {}),
    ("GET", f"/v1/cards/{CHARIZARD}/fair-price?date=2025-11-27", {}),
    ("GET", f"/v1/cards/{CHARIZARD}/history?from=2025-11-01", {"accept": "text/csv"}),
    ("GET", "/v1/cards/no-such-card", {}),
    ("GET", f"/v1/cards/{CHARIZARD}?unknown=1", {}),
    ("GET", f"/v1/cards/{CHARIZARD}", {"accept": "image/png"}),
    ("GET", "/v1/cards?q=charizard&limit=2", {}),
    ("GET", "/v1/no-such-route", {}),
    ("DELETE", f"/v1/cards/{CHARIZARD}", {}),
    ("POST", "/v1/portfolio/valuate", {"content-type": "application/json"}),
]


def v1_answer(client: TestClient, method: str, path: str, headers: dict[str, str]) -> Any:
    response = client.request(method, path, headers=headers, content=b"[]")
    kept = ("content-type", "etag", "allow", "vary")
    # max-age counts down to the next scheduled run: only its form is compared.
    cache_control = response.headers.get("cache-control", "")
    policy = cache_control.split("=")[0] if cache_control.startswith("private") else cache_control
    body = response.content
    if response.status_code >= 400:
        payload = response.json()
        payload.pop("request_id")
        body = payload
    headers = {name: response.headers.get(name) for name in kept}
    return response.status_code, {**headers, "cache-control": policy}, body


class BentoMLPath:
    """The direct answers switched off while inside: every call takes BentoML's path."""

    def __init__(self, client: TestClient) -> None:
        self.layer = direct_layer(client)

    def __enter__(self) -> None:
        self.saved = self.layer.routes, self.layer.mounts
        self.layer.routes, self.layer.mounts = {}, {}

    def __exit__(self, *exc: object) -> None:
        self.layer.routes, self.layer.mounts = self.saved


def test_the_hot_apis_and_v1_are_answered_directly(client: TestClient) -> None:
    layer = direct_layer(client)
    assert set(layer.routes) == {"/fair_price", "/batch_predict"}
    assert set(layer.mounts) == {"/v1"}


def test_direct_answers_equal_bentomls(client: TestClient) -> None:
    direct = [answer(client, path, body) for path, body in REQUESTS]
    with BentoMLPath(client):
        through_bentoml = [answer(client, path, body) for path, body in REQUESTS]
    assert direct == through_bentoml
    statuses = {status for status, _ in direct}
    assert statuses == {200, 400, 404, 413}


def test_direct_v1_answers_equal_bentomls(client: TestClient) -> None:
    direct = [v1_answer(client, *request) for request in V1_REQUESTS]
    with BentoMLPath(client):
        through_bentoml = [v1_answer(client, *request) for request in V1_REQUESTS]
    assert direct == through_bentoml
    assert {status for status, _, _ in direct} == {200, 400, 404, 405, 406}
    etag = direct[0][1]["etag"]
    assert client.get(V1_REQUESTS[0][1], headers={"if-none-match": etag}).status_code == 304


def test_direct_answers_do_not_touch_bentomls_endpoint(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def broken(self: Any, name: str, request: Any) -> Any:
        raise AssertionError(f"BentoML's endpoint was called for {name}")

    monkeypatch.setattr(ServiceAppFactory, "api_endpoint", broken)
    assert client.post("/fair_price", json={"card_id": CHARIZARD}).status_code == 200
    # A route not answered directly goes through BentoML (here: its 500, made uniform).
    failed = client.post("/cards", json={})
    assert failed.status_code == 500
    assert failed.json()["error"] == "internal_error"


def test_a_failing_api_is_a_uniform_500(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    from service.answers import Answers

    async def failing(self: Answers, card_id: str, on: str | None) -> Any:
        raise RuntimeError("boom")

    monkeypatch.setattr(Answers, "fair_price", failing)
    response = client.post("/fair_price", json={"card_id": CHARIZARD})
    assert response.status_code == 500
    body = response.json()
    assert body["error"] == "internal_error"
    assert "boom" not in response.text
    assert response.headers["x-request-id"] == body["request_id"]


def test_wrong_methods_and_other_routes_pass_on(client: TestClient) -> None:
    assert client.get("/fair_price").status_code == 405
    assert client.post("/cards", json={"limit": 1}).status_code == 200


def test_direct_answers_carry_the_cors_policy() -> None:
    """They answer before BentoML's CORS middleware, so they apply the same policy."""

    @bentoml.service
    class Echo:
        @bentoml.api  # type: ignore[untyped-decorator]
        async def echo(self, text: str) -> Any:
            return Response(text.encode(), media_type="text/plain")

    async def not_found(scope: Scope, receive: Receive, send: Send) -> None:
        await Response(status_code=404)(scope, receive, send)

    instance = Echo.inner()  # type: ignore[attr-defined]
    app = DirectApiMiddleware(
        not_found,
        apis=[Echo.apis["echo"]],  # type: ignore[attr-defined]
        service=lambda: instance,
        enabled=True,
        cors=cors_policy(CorsSettings(allow_origins=["https://app.example"])),
    )
    client = TestClient(app)
    allowed = client.post("/echo", json={"text": "hi"}, headers={"Origin": "https://app.example"})
    assert allowed.text == "hi"
    assert allowed.headers["access-control-allow-origin"] == "https://app.example"
    assert "x-request-id" in allowed.headers["access-control-expose-headers"].lower()
    other = client.post("/echo", json={"text": "hi"}, headers={"Origin": "https://evil.example"})
    assert "access-control-allow-origin" not in other.headers
    assert client.post("/elsewhere", json={}).status_code == 404
