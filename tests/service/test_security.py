"""Authentication, scopes, headers, size limits and rate limiting through the ASGI app."""

import logging
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from service.keys import KeysFile, Scope

SEALED = {"card_id": "tcg-133777"}


@pytest.fixture
def keys_file() -> KeysFile:
    import os

    return KeysFile(Path(os.environ["POKEWATCH_SECURITY__KEYS_FILE"]))


@pytest.mark.parametrize(
    "headers",
    [
        {"X-API-Key": ""},
        {"X-API-Key": "pw_test_000000000000_" + "0" * 48},
        {"X-API-Key": "not-a-key"},
        {"X-API-Key": "", "Authorization": "Basic dXNlcjpwYXNz"},
    ],
)
def test_missing_or_unknown_key_is_401(client: TestClient, headers: dict[str, str]) -> None:
    response = client.post("/fair_price", json=SEALED, headers=headers)
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Bearer")
    body = response.json()
    assert body["error"] == "unauthorized"
    assert body["request_id"] == response.headers["x-request-id"]


def test_bearer_header_is_accepted(client: TestClient, api_key: str) -> None:
    response = client.post(
        "/fair_price", json=SEALED, headers={"X-API-Key": "", "Authorization": f"Bearer {api_key}"}
    )
    # An empty X-API-Key header is still "present": the Bearer token is not consulted.
    assert response.status_code == 401
    bearer_only = TestClient(client.app, headers={"Authorization": f"Bearer {api_key}"})
    assert bearer_only.post("/fair_price", json=SEALED).status_code == 200


def test_key_in_query_string_is_ignored(client: TestClient, api_key: str) -> None:
    response = client.post(f"/fair_price?api_key={api_key}", json=SEALED, headers={"X-API-Key": ""})
    assert response.status_code == 401


def test_revoked_and_expired_keys_get_the_same_401(client: TestClient, keys_file: KeysFile) -> None:
    raw, record = keys_file.create("short-lived", frozenset(Scope), "test")
    assert client.post("/fair_price", json=SEALED, headers={"X-API-Key": raw}).status_code == 200
    keys_file.revoke(record.key_id)
    revoked = client.post("/fair_price", json=SEALED, headers={"X-API-Key": raw})
    unknown = client.post("/fair_price", json=SEALED, headers={"X-API-Key": "nope"})
    assert revoked.status_code == unknown.status_code == 401
    assert revoked.json()["detail"] == unknown.json()["detail"]


def test_scope_is_checked(client: TestClient, keys_file: KeysFile) -> None:
    raw, _ = keys_file.create("predict only", frozenset({Scope.PREDICT}), "test")
    headers = {"X-API-Key": raw}
    assert client.post("/fair_price", json=SEALED, headers=headers).status_code == 200
    response = client.post("/batch_predict", json={"items": [SEALED]}, headers=headers)
    assert response.status_code == 403
    assert response.json()["error"] == "forbidden"


@pytest.mark.parametrize("path", ["/livez", "/readyz", "/healthz", "/docs.json"])
def test_probes_and_docs_need_no_key(client: TestClient, path: str) -> None:
    assert client.get(path, headers={"X-API-Key": ""}).status_code == 200


def test_cors_preflight_needs_no_key(client: TestClient) -> None:
    response = client.options(
        "/fair_price",
        headers={
            "X-API-Key": "",
            "Origin": "https://example.com",
            "Access-Control-Request-Method": "POST",
        },
    )
    assert response.status_code != 401


def test_security_headers_on_success_and_error(client: TestClient) -> None:
    for response in (
        client.post("/fair_price", json=SEALED),
        client.post("/fair_price", json={"card_id": "nope"}),
        client.post("/fair_price", json=SEALED, headers={"X-API-Key": ""}),
    ):
        headers = response.headers
        assert headers["x-content-type-options"] == "nosniff"
        assert headers["x-frame-options"] == "DENY"
        assert headers["referrer-policy"] == "no-referrer"
        assert headers["cache-control"] == "no-store"
        assert headers["content-security-policy"] == "frame-ancestors 'none'"
        assert "strict-transport-security" not in headers


def test_hsts_over_https(client: TestClient) -> None:
    response = client.post("/fair_price", json=SEALED, headers={"X-Forwarded-Proto": "https"})
    assert response.headers["strict-transport-security"].startswith("max-age=")


@pytest.mark.parametrize(
    ("offered", "echoed"),
    [("abc-123_X.y", True), ("has space", False), ("x" * 65, False), ("<script>", False)],
)
def test_request_id(client: TestClient, offered: str, echoed: bool) -> None:
    response = client.post(
        "/fair_price", json={"card_id": "nope"}, headers={"X-Request-ID": offered}
    )
    request_id = response.headers["x-request-id"]
    assert (request_id == offered) is echoed
    assert response.json()["request_id"] == request_id


def test_declared_body_over_limit_is_413(client: TestClient) -> None:
    response = client.post(
        "/batch_predict",
        content=b"{}",
        headers={"Content-Type": "application/json", "Content-Length": str(2 * 1024 * 1024)},
    )
    assert response.status_code == 413
    assert response.json()["error"] == "payload_too_large"


def test_streamed_body_over_limit_is_413(client: TestClient) -> None:
    def chunks() -> object:
        for _ in range(40):
            yield b" " * 65536

    response = client.post(
        "/batch_predict", content=chunks(), headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 413


def test_non_json_body_is_415(client: TestClient) -> None:
    response = client.post(
        "/fair_price", content=b"card_id=x", headers={"Content-Type": "text/plain"}
    )
    assert response.status_code == 415
    assert response.json()["error"] == "unsupported_media_type"


def test_wrong_method_is_405_with_allow(client: TestClient) -> None:
    response = client.get("/fair_price")
    assert response.status_code == 405
    assert "POST" in response.headers["allow"]


@pytest.mark.parametrize(
    ("method", "path", "allow"),
    [
        ("PUT", "/fair_price", "POST"),
        ("HEAD", "/batch_predict", "POST"),
        ("PATCH", "/v1/cards/tcg-1", "GET, HEAD"),
        ("PUT", "/v1/portfolio/valuate", "POST"),
        ("DELETE", "/livez", "GET, HEAD"),
        ("POST", "/ui/", "GET, HEAD"),
    ],
)
@pytest.mark.parametrize(
    "body",
    [
        {"content": b"card_id=x", "headers": {"Content-Type": "application/x-www-form-urlencoded"}},
        {"content": b"x" * 2_000_000, "headers": {"Content-Type": "text/plain"}},
        {},
    ],
    ids=["form", "oversized", "none"],
)
def test_wrong_method_is_405_whatever_the_body(
    client: TestClient, method: str, path: str, allow: str, body: dict[str, Any]
) -> None:
    """The method is judged before the media type and the size: 405 with `Allow`."""
    response = client.request(method, path, **body)
    assert (response.status_code, response.headers["allow"]) == (405, allow)
    if method != "HEAD":
        assert response.json()["error"] == "method_not_allowed"


def test_unknown_path_with_any_method_is_404(client: TestClient) -> None:
    response = client.put("/nope", content=b"a=b", headers={"Content-Type": "text/plain"})
    assert response.status_code == 404


def test_rate_limit_headers(client: TestClient) -> None:
    response = client.post("/fair_price", json=SEALED)
    assert response.headers["ratelimit-policy"].startswith('"default";q=100000')
    assert response.headers["ratelimit"].startswith('"default";r=')
    assert int(response.headers["x-ratelimit-limit"]) == 100000
    assert int(response.headers["x-ratelimit-remaining"]) >= 0


def test_brute_force_guard_turns_401_into_429(client: TestClient, api_key: str) -> None:
    """Failed keys from one address are limited (burst 20); valid keys are not affected."""
    attacker = TestClient(client.app, client=("203.0.113.9", 4000))
    statuses = [
        attacker.post("/fair_price", json=SEALED, headers={"X-API-Key": f"bad{n}"}).status_code
        for n in range(25)
    ]
    assert statuses[:20] == [401] * 20
    assert set(statuses[20:]) == {429}
    assert (
        attacker.post("/fair_price", json=SEALED, headers={"X-API-Key": api_key}).status_code == 200
    )
    assert client.post("/fair_price", json=SEALED, headers={"X-API-Key": "bad"}).status_code == 401


def test_logs_never_contain_a_raw_key(
    client: TestClient, api_key: str, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.DEBUG):
        client.post("/fair_price", json=SEALED)
        client.post("/fair_price", json=SEALED, headers={"X-API-Key": api_key + "0"})
        client.post("/fair_price", json={"card_id": api_key})
    secret = api_key.rsplit("_", 1)[1]
    assert caplog.records
    assert all(secret not in record.getMessage() for record in caplog.records)
    key_id = api_key.split("_")[2]
    assert any(f"key={key_id}" in record.getMessage() for record in caplog.records)
