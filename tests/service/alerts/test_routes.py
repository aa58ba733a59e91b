"""/v1/watchlist and /v1/webhooks in-process, through the service's middleware: each key
sees and changes only its own, bad input is a clear 4xx, secrets are shown once."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from starlette.testclient import TestClient
from starlette.types import ASGIApp, Receive, Scope, Send

from model.settings import load_settings
from service.alerts.signing import KEY_VARIABLE, new_key
from service.keys import KeysFile
from service.keys import Scope as KeyScope
from service.serving import Serving
from service.settings import ServiceSettings
from service.store import Store
from service.v1 import build_v1
from tests.v1_routes import CHARIZARD, SEALED


def other_key(name: str) -> dict[str, str]:
    raw, _ = KeysFile(Path(os.environ["POKEWATCH_SECURITY__KEYS_FILE"])).create(
        name, frozenset({KeyScope.PREDICT}), "test"
    )
    return {"X-API-Key": raw}


@pytest.fixture
def mine() -> dict[str, str]:
    return other_key("watcher")


@pytest.fixture
def theirs() -> dict[str, str]:
    return other_key("someone-else")


def test_a_watchlist_belongs_to_its_key(
    client: TestClient, mine: dict[str, str], theirs: dict[str, str]
) -> None:
    added = client.post(
        "/v1/watchlist",
        json={
            "items": [
                {"card_id": SEALED, "rules": [{"kind": "price_below", "value": 50}]},
                {"card_id": CHARIZARD},
            ]
        },
        headers=mine,
    )
    assert added.status_code == 200, added.text
    rules = {item["card_id"]: item["rules"] for item in added.json()["items"]}
    assert rules == {
        SEALED: [{"kind": "price_below", "value": 50.0}],
        CHARIZARD: [{"kind": "signal_buy"}, {"kind": "signal_sell"}],  # the default
    }
    assert all(item["name"] for item in added.json()["items"])
    client.post("/v1/watchlist", json={"items": [{"card_id": SEALED}]}, headers=theirs)

    answered = client.get("/v1/watchlist", headers=mine)
    assert answered.headers["cache-control"] == "no-store"
    listed = answered.json()
    assert (listed["total"], listed["max_items"]) == (2, 1000)
    assert [
        item["card_id"] for item in client.get("/v1/watchlist", headers=theirs).json()["items"]
    ] == [SEALED]
    # Their delete of my item does nothing to mine.
    assert client.delete(f"/v1/watchlist/{CHARIZARD}", headers=theirs).status_code == 404
    assert client.delete(f"/v1/watchlist/{CHARIZARD}", headers=mine).status_code == 204
    assert client.get("/v1/watchlist", headers=mine).json()["total"] == 1
    # Watching an item again replaces its rules.
    client.post(
        "/v1/watchlist",
        json={"items": [{"card_id": SEALED, "rules": [{"kind": "signal_buy"}]}]},
        headers=mine,
    )
    (item,) = client.get("/v1/watchlist", headers=mine).json()["items"]
    assert item["rules"] == [{"kind": "signal_buy"}]


def test_webhooks_belong_to_their_key_and_the_secret_is_shown_once(
    client: TestClient, mine: dict[str, str], theirs: dict[str, str]
) -> None:
    made = client.post(
        "/v1/webhooks",
        json={"url": "http://127.0.0.1:9/hook", "events": ["signal_buy", "price_below"]},
        headers=mine,
    )
    assert made.status_code == 201, made.text
    hook = made.json()
    assert hook["secret"].startswith("whsec_")
    assert hook["events"] == ["price_below", "signal_buy"]
    path = f"/v1/webhooks/{hook['id']}"
    shown = client.get(path, headers=mine).json()
    assert "secret" not in shown
    assert shown["url"] == "http://127.0.0.1:9/hook"
    assert hook["secret"] not in client.get("/v1/webhooks", headers=mine).text
    for method, route in [
        ("GET", path),
        ("DELETE", path),
        ("GET", f"{path}/deliveries"),
        ("POST", f"{path}/deliveries/dlv_x/redeliver"),
    ]:
        assert client.request(method, route, headers=theirs).status_code == 404, route
    assert client.get("/v1/webhooks", headers=theirs).json()["webhooks"] == []
    assert client.get(f"{path}/deliveries", headers=mine).json()["deliveries"] == []
    assert client.post(f"{path}/deliveries/dlv_x/redeliver", headers=mine).status_code == 404
    assert client.delete(path, headers=mine).status_code == 204
    assert client.get(path, headers=mine).status_code == 404


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "detail"),
    [
        ("POST", "/v1/watchlist", {"items": []}, 400, "items"),
        ("POST", "/v1/watchlist", {"items": [{"card_id": "nope"}]}, 404, "nope"),
        ("POST", "/v1/watchlist", {"items": [{"card_id": SEALED}] * 2}, 400, "given twice"),
        (
            "POST",
            "/v1/watchlist",
            {"items": [{"card_id": SEALED, "rules": [{"kind": "price_below"}]}]},
            400,
            "needs a value",
        ),
        (
            "POST",
            "/v1/watchlist",
            {"items": [{"card_id": SEALED, "rules": [{"kind": "moon"}]}]},
            400,
            "kind",
        ),
        ("POST", "/v1/watchlist", {"items": [{"card_id": SEALED, "extra": 1}]}, 400, "extra"),
        ("POST", "/v1/watchlist", "not an object", 400, "body"),
        ("POST", "/v1/webhooks", {"url": "http://169.254.169.254/latest"}, 400, "non-public"),
        ("POST", "/v1/webhooks", {"url": "http://[::1]:9/hook"}, 400, "non-public"),
        ("POST", "/v1/webhooks", {"url": "gopher://127.0.0.1/"}, 400, "scheme"),
        ("POST", "/v1/webhooks", {"url": "http://127.0.0.1/", "events": []}, 400, "events"),
        ("POST", "/v1/webhooks", {"url": "http://127.0.0.1/", "events": ["moon"]}, 400, "events"),
        ("GET", "/v1/watchlist?x=1", None, 400, "unknown parameter"),
        ("GET", "/v1/webhooks/wh_x/deliveries?status=lost", None, 400, "status"),
        ("GET", "/v1/webhooks/wh_x/deliveries?limit=0", None, 400, "limit"),
    ],
)
def test_bad_input_is_a_clear_error(
    client: TestClient,
    mine: dict[str, str],
    method: str,
    path: str,
    body: object,
    status: int,
    detail: str,
) -> None:
    answered = client.request(method, path, json=body, headers=mine)
    assert answered.status_code == status, answered.text
    assert detail in answered.json()["detail"]


def keyed(app: ASGIApp, key_id: str) -> ASGIApp:
    """The v1 app as the auth middleware hands it a request of `key_id`."""

    async def with_key(scope: Scope, receive: Receive, send: Send) -> None:
        scope.setdefault("state", {})["key_id"] = key_id
        await app(scope, receive, send)

    return with_key


def test_limits_per_key_on_both_back_ends(
    served_tag: str, alerts_database: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(KEY_VARIABLE, new_key())  # a database server needs it
    base = load_settings(ServiceSettings)
    alerts = base.alerts.model_copy(
        update={
            "database_url": alerts_database,
            "max_items_per_key": 1,
            "max_webhooks_per_key": 1,
        }
    )
    settings = base.model_copy(update={"alerts": alerts})
    serving = Serving(settings, Store.from_settings(settings.store), None)
    serving.start()
    with TestClient(keyed(build_v1(settings, lambda: serving), "c" * 12)) as keyed_client:
        assert (
            keyed_client.post("/watchlist", json={"items": [{"card_id": SEALED}]}).status_code
            == 200
        )
        full = keyed_client.post("/watchlist", json={"items": [{"card_id": CHARIZARD}]})
        assert (full.status_code, full.json()["error"]) == (409, "watchlist_full")
        # Changing the rules of an item already watched is no addition.
        assert (
            keyed_client.post("/watchlist", json={"items": [{"card_id": SEALED}]}).status_code
            == 200
        )
        assert (
            keyed_client.post("/webhooks", json={"url": "http://127.0.0.1:9/a"}).status_code == 201
        )
        more = keyed_client.post("/webhooks", json={"url": "http://127.0.0.1:9/b"})
        assert (more.status_code, more.json()["error"]) == (409, "too_many_webhooks")
    with TestClient(keyed(build_v1(settings, lambda: serving), "d" * 12)) as other_client:
        assert other_client.get("/watchlist").json()["items"] == []
        assert other_client.get("/webhooks").json()["webhooks"] == []
        assert other_client.delete(f"/watchlist/{SEALED}").status_code == 404


def test_without_a_key_the_routes_answer_401() -> None:
    """auth_mode off or warn serves keyless calls; watchlists still need a key."""
    app = build_v1(load_settings(ServiceSettings), lambda: None)  # type: ignore[arg-type,return-value]
    with TestClient(app) as bare:
        for method, path in [
            ("GET", "/watchlist"),
            ("POST", "/webhooks"),
            ("GET", "/webhooks/wh_x"),
        ]:
            answered = bare.request(method, path, json={})
            assert answered.status_code == 401, (path, answered.text)
            assert "API key" in answered.json()["detail"]


@pytest.mark.parametrize(("key", "named"), [(None, "POKEWATCH_ALERTS_KEY"), ("set", "port 1")])
def test_a_database_server_without_a_key_or_out_of_reach_is_a_503_naming_it(
    served_tag: str, monkeypatch: pytest.MonkeyPatch, key: str | None, named: str
) -> None:
    if key:
        monkeypatch.setenv(KEY_VARIABLE, new_key())
    base = load_settings(ServiceSettings)
    # Nothing listens on port 1.
    alerts = base.alerts.model_copy(
        update={"database_url": "postgresql+psycopg://nobody@127.0.0.1:1/none?connect_timeout=2"}
    )
    settings = base.model_copy(update={"alerts": alerts})
    app = keyed(build_v1(settings, lambda: None), "c" * 12)  # type: ignore[arg-type,return-value]
    with TestClient(app) as keyed_client:
        answered = keyed_client.get("/watchlist")
    assert answered.status_code == 503
    assert answered.json()["error"] == "alerts_unavailable"
    assert named in answered.json()["detail"]
