"""End to end: a real `bentoml serve` of the service, called over HTTP."""

from dataclasses import replace

import httpx
import pytest

from service.settings import StoreSettings
from service.store import Stage, Store
from tests.e2e.conftest import bentoml_serve

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

SEALED = "tcg-133777"


def served_model() -> str:
    selection = Store.from_settings(StoreSettings()).select()
    assert selection is not None
    return selection.model.tag


def test_fair_price(http: httpx.Client) -> None:
    response = http.post("/fair_price", json={"card_id": SEALED, "date": "2024-06-01"})
    assert response.status_code == 200
    body = response.json()
    assert (body["card_id"], body["price_date"], body["model_version"]) == (
        SEALED,
        "2024-06-01",
        served_model(),  # other tests may have promoted a newer one
    )
    assert body["market_price"] > 0
    assert body["fair_price"] > 0
    assert response.headers["x-content-type-options"] == "nosniff"
    assert "ratelimit" in response.headers


def test_errors(http: httpx.Client) -> None:
    missing = http.post("/fair_price", json={"card_id": "nope"})
    assert (missing.status_code, missing.json()["error"]) == (404, "card_not_found")
    malformed = http.post("/fair_price", content=b"{", headers={"content-type": "application/json"})
    assert (malformed.status_code, malformed.json()["error"]) == (400, "invalid_request")
    wrong_type = http.post("/fair_price", json={"card_id": ["x"]})
    assert wrong_type.status_code == 400
    assert wrong_type.json()["detail"].startswith("card_id")
    anonymous = http.post("/fair_price", json={"card_id": SEALED}, headers={"X-API-Key": ""})
    assert anonymous.status_code == 401


def test_batch_and_cards(http: httpx.Client) -> None:
    cards = http.post("/cards", json={"limit": 3}).json()["cards"]
    assert len(cards) == 3
    items = [{"card_id": card["card_id"]} for card in cards] + [{"card_id": "nope"}]
    results = http.post("/batch_predict", json={"items": items}).json()["results"]
    assert [result["card_id"] for result in results] == [item["card_id"] for item in items]
    assert [result["market_price"] for result in results[:3]] == [
        card["latest_price"] for card in cards
    ]
    assert results[3]["status"] == 404


def test_probes_need_no_key(served: str) -> None:
    assert httpx.get(f"{served}/livez").status_code == 200
    assert httpx.get(f"{served}/readyz").status_code == 200


def test_readyz_fails_when_the_model_cannot_be_loaded(model_tag: str, api_key: str) -> None:
    """A pod whose only production model is unreadable starts (liveness) but never passes
    readiness."""
    name = "pokewatch-broken"
    registry = Store.from_settings(StoreSettings()).registry
    good = registry.load(registry.get(model_tag))
    # Saved with matching checksums (it verifies), so only loading it fails.
    unreadable = replace(good, info={**good.info, "format": 0})
    Store.from_settings(StoreSettings(), name).registry.save(unreadable, Stage.PRODUCTION)
    with bentoml_serve(
        "service:PokeWatch",
        env={"POKEWATCH_SERVICE__MODEL_TAG": f"{name}:latest"},
        ready_path="/livez",
    ) as base:
        assert httpx.get(f"{base}/readyz").status_code == 503
        response = httpx.post(
            f"{base}/fair_price", json={"card_id": SEALED}, headers={"X-API-Key": api_key}
        )
        assert response.status_code == 503
        assert response.json()["error"] == "model_unavailable"
