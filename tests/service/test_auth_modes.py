"""`security.auth_mode`: enforce, warn (the key rollout) and off, on the real middleware
stack around a small app (the e2e tests run the modes over `bentoml serve`)."""

from __future__ import annotations

import logging
from datetime import date
from pathlib import Path

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from starlette.testclient import TestClient

from service.edge import (
    AuthMiddleware,
    EdgeMiddleware,
    RateLimitMiddleware,
    keyless_warning,
    route_label,
)
from service.keys import KeysFile, Scope
from service.metrics import service_metrics
from service.security import build_security
from service.settings import ServiceSettings


async def echo(request: Request) -> JSONResponse:
    return JSONResponse({"ok": True})


def stack(
    tmp_path: Path, mode: str, limits: dict[str, int] | None = None, **security: object
) -> tuple[TestClient, str]:
    """The edge, auth and rate-limit middleware in the service's order, and a valid key."""
    keys = KeysFile(tmp_path / "keys.json")
    raw, _ = keys.create("tests", frozenset({Scope.PREDICT}), "test")
    settings = ServiceSettings.model_validate(
        {
            "security": {
                "auth_mode": mode,
                "keys_file": str(keys.path),
                "key_env": "test",
                "rate_limit": {
                    "per_minute": 60,
                    "burst": 3,
                    "scope_costs": {"batch": 1},
                    **(limits or {}),
                },
                **security,
            }
        }
    )
    guarded = build_security(settings)
    app = Starlette(routes=[Route(path, echo) for path in ("/v1/cards/{x}", "/admin/reload")])
    wrapped = EdgeMiddleware(AuthMiddleware(RateLimitMiddleware(app, guarded), guarded))
    return TestClient(wrapped), raw


def keyless_count(route: str) -> float:
    value = service_metrics().keyless_requests.labels(route)._value.get()
    return float(value)


def test_enforce_refuses_keyless_requests(tmp_path: Path) -> None:
    client, key = stack(tmp_path, "enforce")
    assert client.get("/v1/cards/a").status_code == 401
    assert client.get("/v1/cards/a", headers={"X-API-Key": key}).status_code == 200


def test_warn_serves_keyless_requests_with_a_warning_logged_counted_and_limited(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    client, key = stack(tmp_path, "warn", enforce_from="2027-01-15")
    before = keyless_count("/v1/cards")
    with caplog.at_level(logging.WARNING, logger="pokewatch.auth"):
        answer = client.get("/v1/cards/a")
    assert answer.status_code == 200
    assert answer.headers["warning"] == (
        '299 pokewatch "requests without an API key will be refused from 2027-01-15"'
    )
    assert answer.headers["sunset"] == "Fri, 15 Jan 2027 00:00:00 GMT"
    assert keyless_count("/v1/cards") == before + 1
    assert "request without an API key from testclient: /v1/cards/a" in caplog.text
    # Limited per client address (burst 3: one used above).
    statuses = [client.get("/v1/cards/b").status_code for _ in range(3)]
    assert statuses == [200, 200, 429]
    # A key keeps its own quota and gets no warning.
    keyed = client.get("/v1/cards/a", headers={"X-API-Key": key})
    assert keyed.status_code == 200
    assert "warning" not in keyed.headers


@pytest.mark.parametrize("mode", ["enforce", "warn", "off"])
def test_a_wrong_key_is_refused_in_every_mode(tmp_path: Path, mode: str) -> None:
    client, _ = stack(tmp_path, mode)
    wrong = client.get("/v1/cards/a", headers={"X-API-Key": "pw_test_000000000000_wrong"})
    assert wrong.status_code == 401
    assert wrong.json()["error"] == "unauthorized"


def test_the_brute_force_guard_holds_in_warn_mode(tmp_path: Path) -> None:
    client, _ = stack(tmp_path, "warn", {"auth_failures_per_minute": 1, "auth_failures_burst": 2})
    statuses = [
        client.get("/v1/cards/a", headers={"X-API-Key": f"pw_test_00000000000{n}_x"}).status_code
        for n in range(3)
    ]
    assert statuses == [401, 401, 429]


def test_warn_never_opens_admin_routes(tmp_path: Path) -> None:
    client, _ = stack(tmp_path, "warn")
    assert client.get("/admin/reload").status_code == 401


def test_off_serves_without_a_key_and_without_a_warning(tmp_path: Path) -> None:
    client, _ = stack(tmp_path, "off")
    answer = client.get("/v1/cards/a")
    assert answer.status_code == 200
    assert "warning" not in answer.headers


def test_the_warning_without_a_day_and_the_route_labels() -> None:
    assert keyless_warning(None) == [
        (b"warning", b'299 pokewatch "requests without an API key will be refused soon"')
    ]
    assert keyless_warning(date(2027, 1, 15))[1][0] == b"sunset"
    assert route_label("/v1/cards/tcg-1/history") == "/v1/cards"
    assert route_label("/fair_price") == "/fair_price"
