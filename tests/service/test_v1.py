"""The REST API v1 in-process, through the service's ASGI app and middleware."""

from __future__ import annotations

import csv
import io
import os
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pytest
from starlette.testclient import TestClient

from model.artifact import TrainedModel
from model.catalog import MAX_PORTFOLIO_LINES, Catalog, Cursor
from model.predictor import Predictor
from model.settings import load_settings
from model.signals import Signal
from service.keys import KeysFile, Scope
from service.settings import ScheduleSettings, ServiceSettings, StoreSettings
from service.store import Selection, Store
from service.v1 import CachePolicy, best_match
from tests.v1_routes import BATCH_ROUTES, CHARIZARD, SEALED, UNCACHED_PREFIXES, V1_ROUTES


@pytest.fixture(scope="module")
def selection(served_tag: str) -> Selection:
    selection = Store.from_settings(StoreSettings()).select()
    assert selection is not None
    return selection


@pytest.fixture(scope="module")
def table(selection: Selection) -> TrainedModel:
    return Store.from_settings(StoreSettings()).load(selection)


@pytest.fixture(scope="module")
def predictor(selection: Selection, served_tag: str) -> Predictor:
    settings = load_settings(ServiceSettings)
    return Predictor(
        Store.from_settings(StoreSettings()).table(selection),
        served_tag,
        settings.model.thresholds,
        settings.model.min_observed_days,
    )


@pytest.fixture(scope="module")
def catalog(predictor: Predictor) -> Catalog:
    return Catalog(predictor)


def call(client: TestClient, method: str, path: str, body: object, **headers: str) -> object:
    return client.request(method, path, json=body, headers=headers)


@pytest.mark.parametrize(("method", "path", "body"), V1_ROUTES)
def test_every_route_is_behind_the_service_middleware(
    client: TestClient, method: str, path: str, body: object
) -> None:
    """BentoML's add_asgi_middleware wraps the mounted app: request IDs, security
    headers, rate-limit headers, API keys and the uniform error body."""
    answered = client.request(method, path, json=body, headers={"X-Request-ID": "req-1"})
    assert answered.status_code == 200, answered.text
    assert answered.headers["x-request-id"] == "req-1"
    assert answered.headers["x-content-type-options"] == "nosniff"
    assert answered.headers["ratelimit"].startswith('"default";r=')
    denied = client.request(method, path, json=body, headers={"X-API-Key": ""})
    assert denied.status_code == 401
    assert set(denied.json()) == {"error", "detail", "request_id"}
    assert denied.headers["cache-control"] == "no-store"


@pytest.mark.parametrize(("method", "path", "body"), V1_ROUTES)
def test_scopes(client: TestClient, method: str, path: str, body: object) -> None:
    keys = KeysFile(Path(os.environ["POKEWATCH_SECURITY__KEYS_FILE"]))
    predict_only, _ = keys.create("v1 predict", frozenset({Scope.PREDICT}), "test")
    response = client.request(method, path, json=body, headers={"X-API-Key": predict_only})
    expected = 403 if path in BATCH_ROUTES else 200
    assert response.status_code == expected
    if expected == 403:
        assert "'batch' scope" in response.json()["detail"]


def test_card_is_the_latest_answer(client: TestClient, catalog: Catalog, served_tag: str) -> None:
    body = client.get(f"/v1/cards/{CHARIZARD}").json()
    stale = body["stale"]
    assert body == catalog.detail(CHARIZARD, stale)
    assert body["model_version"] == served_tag
    latest = client.post("/fair_price", json={"card_id": CHARIZARD}).json()
    assert {name: body[name] for name in latest if name in body} == {
        name: latest[name] for name in latest if name in body
    }
    assert body["market_price"] == 253.55


def test_fair_price_is_the_compatibility_answer(client: TestClient) -> None:
    for on in (None, "2025-11-27"):
        query = {} if on is None else {"date": on}
        got = client.get(f"/v1/cards/{CHARIZARD}/fair-price", params=query)
        posted = client.post("/fair_price", json={"card_id": CHARIZARD, "date": on})
        assert got.status_code == posted.status_code == 200
        assert got.json() == posted.json()
    missing = client.get(f"/v1/cards/{SEALED}/fair-price", params={"date": "2020-01-01"})
    assert (missing.status_code, missing.json()["error"]) == (404, "date_out_of_range")


def test_history_equals_the_artifact_rows(client: TestClient, table: TrainedModel) -> None:
    body = client.get(f"/v1/cards/{SEALED}/history").json()
    rows = table.predictions[table.predictions["item_id"] == SEALED].sort_values("date")
    assert [row["date"] for row in body["rows"]] == rows["date"].dt.date.astype(str).tolist()
    assert [row["market_price"] for row in body["rows"]] == rows["market_price"].tolist()
    # The band rule answers a fair price only with its band (the first days have none).
    scored = rows[["fair_price", "fair_low", "fair_high"]].notna().all(axis=1)
    assert scored.sum() > 500
    for column in ("fair_price", "fair_low", "fair_high"):
        expected = [
            round(value, 2) if priced else None
            for value, priced in zip(rows[column], scored, strict=True)
        ]
        assert [row[column] for row in body["rows"]] == expected
    reasons = {
        row["reason"] for row, priced in zip(body["rows"], scored, strict=True) if not priced
    }
    assert reasons <= {"insufficient_history", "not_scored"}
    window = client.get(
        f"/v1/cards/{SEALED}/history", params={"from": "2025-01-01", "to": "2025-01-31"}
    ).json()
    assert [row["date"][:7] for row in window["rows"]] == ["2025-01"] * 31
    assert (window["from"], window["to"]) == ("2025-01-01", "2025-01-31")


def test_history_as_csv_parses_back_to_the_json(client: TestClient) -> None:
    path = f"/v1/cards/{CHARIZARD}/history"
    as_json = client.get(path).json()["rows"]
    response = client.get(path, headers={"Accept": "text/csv"})
    assert response.headers["content-type"] == "text/csv; charset=utf-8"
    parsed = list(csv.DictReader(io.StringIO(response.text)))
    assert len(parsed) == len(as_json) == 3
    for row, expected in zip(parsed, as_json, strict=True):
        assert set(row) == set(expected)
        for name, value in expected.items():
            if value is None:
                assert row[name] == ""
            elif isinstance(value, float):
                assert float(row[name]) == value
            else:
                assert row[name] == str(value)


@pytest.mark.parametrize(
    ("q", "expected"),
    [
        ("CHARIZARD", {CHARIZARD}),
        ("ex charizard", {CHARIZARD}),  # tokens in any order
        ("charizard 201", {CHARIZARD}),
        ("zzzz-no-such-card", set()),
    ],
)
def test_search(client: TestClient, catalog: Catalog, q: str, expected: set[str]) -> None:
    body = client.get("/v1/cards", params={"q": q, "limit": 500}).json()
    assert {item["card_id"] for item in body["items"]} >= expected
    if not expected:
        assert (body["items"], body["total"], body["next"]) == ([], 0, None)


def test_search_is_accent_insensitive(client: TestClient, catalog: Catalog) -> None:
    plain = client.get("/v1/cards", params={"q": "pokemon center", "limit": 500}).json()
    accented = client.get("/v1/cards", params={"q": "POKÉMON Center", "limit": 500}).json()
    assert plain["total"] == accented["total"] > 0
    assert plain["items"] == accented["items"]
    assert all("pokemon center" in item["name"].lower() for item in plain["items"])


def test_paging_visits_every_item_once(client: TestClient, catalog: Catalog) -> None:
    seen: list[str] = []
    url: str | None = "/v1/cards?sort=-price&limit=37"
    while url is not None:
        body = client.get(url).json()
        seen += [item["card_id"] for item in body["items"]]
        url = body["next"]
        assert body["total"] == len(catalog)
    assert len(seen) == len(set(seen)) == len(catalog)
    prices = [catalog.entry(catalog.position[card])["market_price"] for card in seen]
    assert prices == sorted(prices, reverse=True)


def test_screener_lists_the_strongest_signals_with_their_backtest(
    client: TestClient, catalog: Catalog
) -> None:
    body = client.get("/v1/signals", params={"signal": "BUY", "limit": 500}).json()
    assert body["signal"] == "BUY"
    assert body["items"]
    assert all(item["signal"] == "BUY" for item in body["items"])
    edges = [item["edge_pct"] for item in body["items"]]
    assert edges == sorted(edges, reverse=True)
    assert all(edge > 0 for edge in edges)
    assert body["backtest"] == catalog.backtest(Signal.BUY)
    sell = client.get("/v1/signals", params={"signal": "sell"}).json()
    assert all(item["signal"] == "SELL" for item in sell["items"])
    assert client.get("/v1/signals", params={"signal": "HOLD"}).status_code == 400


def test_sets(client: TestClient, catalog: Catalog) -> None:
    body = client.get("/v1/sets").json()
    assert body["sets"] == catalog.sets()
    assert sum(entry["items"] for entry in body["sets"]) == len(catalog)
    sv2a = next(entry for entry in body["sets"] if entry["set_code"] == "sv2a")
    assert (sv2a["items"], sv2a["latest_date"]) == (10, "2025-11-29")


def test_portfolio_totals_by_hand(client: TestClient, catalog: Catalog) -> None:
    charizard = catalog.detail(CHARIZARD, False)
    sealed = catalog.detail(SEALED, False)
    response = client.post(
        "/v1/portfolio/valuate",
        json=[
            {"card_id": CHARIZARD, "quantity": 2, "cost_basis": 400},
            {"card_id": "no-such-card", "quantity": 1},
            {"card_id": SEALED, "quantity": 10},
        ],
    )
    assert response.status_code == 200
    assert response.headers["cache-control"] == "no-store"
    body = response.json()
    market = round(2 * 253.55, 2) + round(10 * sealed["market_price"], 2)
    assert body["totals"]["market_value"] == pytest.approx(market)
    assert body["totals"]["cost_basis"] == 400
    assert body["totals"]["pnl"] == pytest.approx(round(2 * 253.55 - 400, 2))
    assert (body["totals"]["priced_lines"], body["totals"]["unknown_lines"]) == (2, 1)
    assert body["lines"][1]["error"] == "card_not_found"
    assert body["lines"][0]["fair_value"] == round(2 * charizard["fair_price"], 2)


def test_portfolio_limits(client: TestClient) -> None:
    over = [{"card_id": SEALED, "quantity": 1}] * (MAX_PORTFOLIO_LINES + 1)
    too_many = client.post("/v1/portfolio/valuate", json=over)
    assert (too_many.status_code, too_many.json()["error"]) == (413, "portfolio_too_large")
    bad = client.post("/v1/portfolio/valuate", json=[{"card_id": SEALED, "quantity": -1}])
    assert bad.status_code == 400
    assert bad.json()["detail"].startswith("[0].quantity:")
    not_json = client.post(
        "/v1/portfolio/valuate", content=b"[", headers={"Content-Type": "application/json"}
    )
    assert (not_json.status_code, not_json.json()["error"]) == (400, "invalid_request")


def test_export_formats_parse_back_to_the_json(client: TestClient, catalog: Catalog) -> None:
    as_json = client.get("/v1/export/2025-10-01.json").json()
    rows = as_json["rows"]
    assert as_json["date"] == "2025-10-01"
    assert len(rows) > 0
    parquet = client.get("/v1/export/2025-10-01.parquet")
    assert parquet.headers["content-type"] == "application/vnd.apache.parquet"
    assert 'filename="pokewatch-2025-10-01.parquet"' in parquet.headers["content-disposition"]
    frame = pd.read_parquet(io.BytesIO(parquet.content))
    as_csv = pd.read_csv(
        io.StringIO(client.get("/v1/export/2025-10-01.csv").text),
        dtype={"set_code": "string", "card_id": "string"},
    )
    expected = pd.DataFrame.from_records(rows)
    assert frame.columns.tolist() == as_csv.columns.tolist() == expected.columns.tolist()
    for parsed in (frame, as_csv):
        assert parsed["card_id"].tolist() == expected["card_id"].tolist()
        assert parsed["market_price"].tolist() == expected["market_price"].tolist()
        assert parsed["signal"].fillna("").tolist() == expected["signal"].fillna("").tolist()
        assert (
            parsed["fair_price"].fillna(-1).tolist() == expected["fair_price"].fillna(-1).tolist()
        )
    assert (rows[0]["date"], rows[0]["card_id"]) == ("2025-10-01", rows[0]["card_id"])
    latest = client.get("/v1/export/latest.json").json()["rows"]
    assert len(latest) == len(catalog)


@pytest.mark.parametrize(
    ("path", "status", "error", "named"),
    [
        ("/v1/cards?limit=0", 400, "invalid_request", "limit"),
        ("/v1/cards?limit=501", 400, "invalid_request", "limit"),
        ("/v1/cards?limit=ten", 400, "invalid_request", "limit"),
        ("/v1/cards?sort=popularity", 400, "invalid_request", "sort"),
        ("/v1/cards?cursor=not-a-cursor", 400, "invalid_request", "cursor"),
        ("/v1/cards?min_price=-1", 400, "invalid_request", "min_price"),
        ("/v1/cards?min_price=nan", 400, "invalid_request", "min_price"),
        ("/v1/cards?signal=MAYBE", 400, "invalid_request", "signal"),
        ("/v1/cards?serch=charizard", 400, "invalid_request", "serch"),
        ("/v1/cards?q=a&q=b", 400, "invalid_request", "q"),
        (f"/v1/cards/{SEALED}/history?from=2025-13-01", 400, "invalid_request", "from"),
        (f"/v1/cards/{SEALED}/history?to=yesterday", 400, "invalid_request", "to"),
        (f"/v1/cards/{SEALED}/fair-price?date=2025-02-30", 400, "invalid_request", "date"),
        ("/v1/export/2025-1-1.csv", 400, "invalid_request", "day"),
        ("/v1/export/2020-01-01.csv", 404, "date_out_of_range", "2024-02-08"),
        ("/v1/export/latest.xlsx", 404, "not_found", "format"),
        ("/v1/cards/no-such-card", 404, "card_not_found", "no-such-card"),
        ("/v1/cards/no-such-card/history", 404, "card_not_found", "no-such-card"),
        ("/v1/nothing-here", 404, "not_found", ""),
    ],
)
def test_bad_input_is_a_clear_error(
    client: TestClient, path: str, status: int, error: str, named: str
) -> None:
    response = client.get(path)
    assert response.status_code == status, response.text
    body = response.json()
    assert (body["error"], set(body)) == (error, {"error", "detail", "request_id"})
    assert body["detail"].startswith(named) or named in body["detail"]
    assert response.headers["cache-control"] == "no-store"
    assert "etag" not in response.headers


def test_wrong_method_on_a_v1_route_is_405(client: TestClient) -> None:
    response = client.post("/v1/cards", json={})
    assert response.status_code == 405
    assert response.json()["error"] == "method_not_allowed"


@pytest.mark.parametrize(
    ("path", "accept"),
    [
        ("/v1/cards", "text/html"),
        (f"/v1/cards/{SEALED}/history", "application/xml"),
        ("/v1/export/latest.parquet", "text/csv"),
        ("/v1/sets", "application/json;q=0"),
    ],
)
def test_unacceptable_accept_is_406(client: TestClient, path: str, accept: str) -> None:
    response = client.get(path, headers={"Accept": accept})
    assert response.status_code == 406
    assert response.json()["error"] == "not_acceptable"


def test_etag_and_304(client: TestClient) -> None:
    first = client.get("/v1/cards", params={"q": "charizard"})
    tag = first.headers["etag"]
    assert first.headers["cache-control"].startswith("private, max-age=")
    assert "Accept" in first.headers["vary"]
    again = client.get("/v1/cards", params={"q": "charizard"}, headers={"If-None-Match": tag})
    assert again.status_code == 304
    assert again.content == b""
    assert again.headers["etag"] == tag
    weak = client.get(
        "/v1/cards", params={"q": "charizard"}, headers={"If-None-Match": f'"x", W/{tag}'}
    )
    assert weak.status_code == 304
    other_query = client.get("/v1/cards", params={"q": "pikachu"}, headers={"If-None-Match": tag})
    assert other_query.status_code == 200
    assert other_query.headers["etag"] != tag
    csv_tag = client.get(f"/v1/cards/{SEALED}/history", headers={"Accept": "text/csv"})
    json_tag = client.get(f"/v1/cards/{SEALED}/history")
    assert csv_tag.headers["etag"] != json_tag.headers["etag"]


def test_expired_cursor_is_410(client: TestClient) -> None:
    page = client.get("/v1/cards", params={"limit": 1}).json()
    cursor = Cursor.decode(page["next_cursor"])
    gone = Cursor("pokewatch-fair-price:gone@2025-11-29.x", cursor.digest, cursor.after)
    response = client.get("/v1/cards", params={"limit": 1, "cursor": gone.encode()})
    assert (response.status_code, response.json()["error"]) == (410, "cursor_expired")


def test_openapi_describes_every_v1_route(client: TestClient) -> None:
    document = client.get("/docs.json").json()
    paths = document["paths"]
    for method, path, _ in V1_ROUTES:
        template = (
            path.split("?")[0]
            .replace(SEALED, "{card_id}")
            .replace("latest.parquet", "latest.{format}")
        )
        operation = paths[template][method.lower()]
        assert operation["security"] == [{"ApiKey": []}, {"Bearer": []}]
        assert {"200", "400", "401", "403", "429"} <= set(operation["responses"])
        assert "Retry-After" in operation["responses"]["429"]["headers"]
        if method == "GET" and not path.startswith(UNCACHED_PREFIXES):
            assert "ETag" in operation["responses"]["200"]["headers"]
            assert "304" in operation["responses"]
    names = {parameter["name"] for parameter in paths["/v1/cards"]["get"]["parameters"]}
    assert names == {"q", "set", "signal", "min_price", "sort", "limit", "cursor", "If-None-Match"}
    assert "CardList" in document["components"]["schemas"]


NOW = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)


def test_answers_are_cacheable_until_the_next_scheduled_run() -> None:
    policy = CachePolicy(ScheduleSettings(daily="0 3 * * *", retrain="0 4 * * 0"), lambda: NOW)
    # Loaded after today's 03:00 run: until tomorrow 03:00.
    assert policy.max_age(datetime(2026, 12, 1, 3, 5, tzinfo=UTC)) == 17 * 3600
    # Loaded before it: a publish may be on its way, so a minute at most.
    assert policy.max_age(datetime(2026, 11, 30, 12, 0, tzinfo=UTC)) == 60
    assert policy.max_age(None) == 60
    sunday = datetime(2026, 12, 6, 3, 30, tzinfo=UTC)
    weekly = CachePolicy(ScheduleSettings(), lambda: sunday)
    # The retrain at 04:00 on Sundays comes first.
    assert weekly.max_age(datetime(2026, 12, 6, 3, 10, tzinfo=UTC)) == 30 * 60


@pytest.mark.parametrize(
    ("accept", "chosen"),
    [
        (None, "application/json"),
        ("", "application/json"),
        ("*/*", "application/json"),
        ("text/csv", "text/csv"),
        ("text/*", "text/csv"),
        ("application/json;q=0.5, text/csv", "text/csv"),
        ("text/csv;q=0.1, application/*;q=0.9", "application/json"),
        ("application/json;q=0, text/csv;q=0", None),
        ("text/html", None),
        ("text/csv;q=bad", None),
    ],
)
def test_best_match(accept: str | None, chosen: str | None) -> None:
    assert best_match(accept, ("application/json", "text/csv")) == chosen
