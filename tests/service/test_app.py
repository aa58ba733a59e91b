"""The service in-process through its ASGI app (BentoML's routing, validation, middleware)."""

import pytest
from starlette.testclient import TestClient

from model.data import load_prices

CHARIZARD = "sv2a_151_charizard_ex___201_165"
SEALED = "tcg-133777"


def test_fair_price_latest(client: TestClient, served_tag: str) -> None:
    response = client.post("/fair_price", json={"card_id": CHARIZARD})
    assert response.status_code == 200
    body = response.json()
    assert body["card_id"] == CHARIZARD
    assert body["name"] == "Charizard ex - 201/165"
    assert body["date"] == body["price_date"] == "2025-11-29"
    assert body["market_price"] == 253.55
    assert body["deviation_pct"] == pytest.approx(
        (body["market_price"] - body["fair_price"]) / body["fair_price"]
    )
    assert body["signal"] in {"BUY", "HOLD", "SELL"}
    assert body["model_version"] == served_tag


def test_fair_price_on_a_day_without_observation_uses_the_last_one(client: TestClient) -> None:
    prices = load_prices().valid
    observed = set(prices.loc[prices["item_id"] == CHARIZARD, "date"].dt.date.astype(str))
    assert "2025-11-27" not in observed
    body = client.post("/fair_price", json={"card_id": CHARIZARD, "date": "2025-11-27"}).json()
    assert body["date"] == "2025-11-27"
    assert body["price_date"] == "2025-11-24"


@pytest.mark.parametrize(
    ("payload", "status", "error", "detail_part"),
    [
        ({"card_id": "no-such-card"}, 404, "card_not_found", "no-such-card"),
        ({"card_id": SEALED, "date": "2020-01-01"}, 404, "date_out_of_range", "2024-02-08"),
        ({"card_id": SEALED, "date": "2099-01-01"}, 404, "date_out_of_range", "2025-11-29"),
        ({}, 400, "invalid_request", "card_id"),
        ({"card_id": 7}, 400, "invalid_request", "card_id"),
        ({"card_id": ""}, 400, "invalid_request", "card_id"),
        ({"card_id": SEALED, "date": "01/02/2024"}, 400, "invalid_request", "date"),
        ({"card_id": SEALED, "date": "2024-02-30"}, 400, "invalid_request", "date"),
        ({"card_id": SEALED, "date": 20240101}, 400, "invalid_request", "date"),
    ],
)
def test_fair_price_errors_are_one_json_object(
    client: TestClient, payload: dict[str, object], status: int, error: str, detail_part: str
) -> None:
    response = client.post("/fair_price", json=payload)
    assert response.status_code == status
    body = response.json()
    assert set(body) == {"error", "detail", "request_id"}
    assert body["error"] == error
    assert detail_part in body["detail"]


@pytest.mark.parametrize("raw", [b"{not json", b"", b"[1, 2]", b"null"])
def test_malformed_bodies_are_400(client: TestClient, raw: bytes) -> None:
    response = client.post("/fair_price", content=raw, headers={"content-type": "application/json"})
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"


def test_unknown_route_and_wrong_method(client: TestClient) -> None:
    missing = client.post("/nope", json={}).json()
    assert (missing["error"], missing["detail"]) == ("not_found", "Not Found")
    response = client.get("/fair_price")
    assert response.status_code == 405
    assert response.json()["error"] == "method_not_allowed"


def test_batch_answers_in_order_with_per_item_errors(client: TestClient) -> None:
    items = [
        {"card_id": SEALED, "date": "2024-06-01"},
        {"card_id": "missing"},
        "not an object",
        {"card_id": CHARIZARD},
        {"card_id": SEALED, "date": "June"},
    ]
    response = client.post("/batch_predict", json={"items": items})
    assert response.status_code == 200
    results = response.json()["results"]
    assert [result.get("card_id") for result in results[:2]] == [SEALED, "missing"]
    assert results[0]["price_date"] == "2024-06-01"
    assert results[1]["status"] == 404
    assert results[2] == {
        "index": 2,
        "status": 400,
        "error": "invalid_request",
        "detail": "item: expected an object with a card_id",
    }
    assert results[3]["market_price"] == 253.55
    assert results[4]["status"] == 400


def test_batch_equals_single_predictions(client: TestClient) -> None:
    cards = client.post("/cards", json={"limit": 40}).json()["cards"]
    items = [{"card_id": card["card_id"], "date": "2025-01-15"} for card in cards]
    batch = client.post("/batch_predict", json={"items": items}).json()["results"]
    singles = [client.post("/fair_price", json=item).json() for item in items]
    assert any("error" in single for single in singles)  # the sv2a cards start in 2025-11
    for index, (in_batch, single) in enumerate(zip(batch, singles, strict=True)):
        if "error" in single:
            del single["request_id"]  # one per HTTP request, not per batch item
            assert in_batch == {
                "index": index,
                "card_id": items[index]["card_id"],
                "status": 404,
                **single,
            }
        else:
            assert in_batch == single


def test_batch_limit_is_413(client: TestClient) -> None:
    response = client.post("/batch_predict", json={"items": [{"card_id": SEALED}] * 1001})
    assert response.status_code == 413
    assert response.json()["error"] == "batch_too_large"


def test_empty_batch_is_400(client: TestClient) -> None:
    response = client.post("/batch_predict", json={"items": []})
    assert response.status_code == 400
    assert "items" in response.json()["detail"]


def test_cards_pages(client: TestClient) -> None:
    first = client.post("/cards", json={"limit": 5, "offset": 0}).json()
    second = client.post("/cards", json={"limit": 5, "offset": 5}).json()
    assert first["total"] == 310
    assert len(first["cards"]) == len(second["cards"]) == 5
    assert {card["card_id"] for card in first["cards"]}.isdisjoint(
        card["card_id"] for card in second["cards"]
    )
    assert set(first["cards"][0]) == {"card_id", "name", "set_code", "latest_date", "latest_price"}
    assert client.post("/cards", json={"limit": 0}).status_code == 400


def test_health_reports_model_and_window(client: TestClient, served_tag: str) -> None:
    body = client.post("/health").json()
    assert body["model_version"] == served_tag
    assert body["items"] == 310
    assert (body["data_start"], body["data_end"]) == ("2024-02-08", "2025-11-29")


def test_probes(client: TestClient) -> None:
    assert client.get("/livez").status_code == 200
    assert client.get("/readyz").status_code == 200
