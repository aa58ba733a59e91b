"""The REST API v1 over a real `bentoml serve` with 2 workers, through the typed client.

The server has its own store (a private BENTOML_HOME), so the day published here reaches
no other test's server, and the Redis rate limiter (shared by the workers) with a small
quota, so 429 is reachable on every route.
"""

from __future__ import annotations

import io
import os
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pandas as pd
import pytest

from model.data import load_prices
from model.schema import validate_prices
from model.scoring import score
from model.settings import ModelSettings
from model.training import train
from service.client import PokeWatchClient, PokeWatchError
from service.keys import KeysFile, Scope
from service.settings import StoreSettings
from service.store import Stage, Store
from tests.e2e.conftest import bentoml_serve
from tests.v1_routes import BATCH_ROUTES, CHARIZARD, SEALED, V1_ROUTES

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

BURST = 20


def new_key(scopes: frozenset[Scope] = frozenset(Scope)) -> str:
    keys = KeysFile(Path(os.environ["POKEWATCH_SECURITY__KEYS_FILE"]))
    return keys.create("v1 e2e", scopes, "test")[0]


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A private store holding one production model of the bundled sample."""
    home = tmp_path_factory.mktemp("v1-home")
    store = Store.from_settings(StoreSettings(path=home))
    store.registry.save(
        train(load_prices().valid, ModelSettings(strategy="mean3")).trained, Stage.PRODUCTION
    )
    return home


@pytest.fixture(scope="module")
def server(home: Path) -> Iterator[str]:
    env = {
        "BENTOML_HOME": str(home),
        "POKEWATCH_SERVICE__WORKERS": "2",
        "POKEWATCH_SERVICE__RELOAD_SECONDS": "1",
        "POKEWATCH_SECURITY__RATE_LIMIT__BACKEND": "redis",
        "POKEWATCH_REDIS__URL": "redis://127.0.0.1:6379/0",
        "POKEWATCH_REDIS__TIMEOUT_MS": "2000",
        "POKEWATCH_SECURITY__RATE_LIMIT__BURST": str(BURST),
        "POKEWATCH_SECURITY__RATE_LIMIT__PER_MINUTE": "30",  # a token every 2 s
    }
    with bentoml_serve("service:PokeWatch", env=env) as base:
        yield base


def publish_next_day(home: Path) -> str:
    """Score and publish one more day where every price moves (the order by price
    reverses), as the daily job publishes it. Returns the new day."""
    store = Store.from_settings(StoreSettings(path=home))
    selection = store.select()
    assert selection is not None
    trained = store.registry.load(selection.model, with_state=True)
    prices = load_prices().valid
    latest = prices.sort_values("date").groupby("item_id").tail(1)
    new_day = prices["date"].max() + pd.Timedelta(days=1)
    moved = latest.assign(date=new_day, market_price=10_000 / latest["market_price"])
    history = validate_prices(pd.concat([prices, moved], ignore_index=True))
    assert history.rejected.empty
    store.publications.publish(selection.model.tag, score(trained, history.valid))
    return str(new_day.date())


def served_days(base: str, samples: int = 10) -> set[str]:
    # A new connection per request: requests spread over the workers. A new key each
    # time: the small quota is not what this asks about.
    key = new_key()
    return {
        httpx.get(f"{base}/v1/sets", headers={"X-API-Key": key}).json()["data_as_of"]
        for _ in range(samples)
    }


def test_paging_visits_every_item_once_across_a_publish(server: str, home: Path) -> None:
    key = new_key()
    with PokeWatchClient(server, key) as client:
        first = client.cards(sort="-price", limit=40)
        before = first.data_as_of
        total = first.total
        new_day = publish_next_day(home)
        deadline = time.monotonic() + 30
        while served_days(server) != {new_day}:
            assert time.monotonic() < deadline, "the new day never reached both workers"
            time.sleep(0.5)
        seen = [item.card_id for item in first.items]
        prices = [item.market_price for item in first.items]
        cursor = first.next_cursor
        while cursor is not None:
            # Each page on a new connection, so both workers serve pages.
            page = client.cards(sort="-price", limit=40, cursor=cursor)
            assert page.data_as_of == before  # the cursor's table, not the new one
            seen += [item.card_id for item in page.items]
            prices += [item.market_price for item in page.items]
            cursor = page.next_cursor
        assert len(seen) == len(set(seen)) == total == 310
        assert prices == sorted(prices, reverse=True)
        # A new search reads the new day, whose order by price is reversed.
        fresh = client.cards(sort="-price", limit=5)
        assert fresh.data_as_of == new_day
        assert fresh.items[0].market_price == pytest.approx(10_000 / min(prices), abs=0.01)


def test_history_and_screener_over_http(server: str) -> None:
    with PokeWatchClient(server, new_key()) as client:
        history = client.history(CHARIZARD)
        assert [row.date for row in history.rows][:3] == ["2025-11-23", "2025-11-24", "2025-11-29"]
        as_csv = pd.read_csv(io.StringIO(client.history_csv(CHARIZARD)))
        assert as_csv["market_price"].tolist()[:3] == [row.market_price for row in history.rows][:3]
        screener = client.signals("BUY", limit=500)
        assert all(item.signal == "BUY" for item in screener.items)
        edges = [item.edge_pct or 0.0 for item in screener.items]
        assert edges == sorted(edges, reverse=True)
        exported = pd.read_parquet(io.BytesIO(client.export("2025-10-01", "parquet")))
        assert len(exported) > 0
        valuation = client.valuate([{"card_id": SEALED, "quantity": 3, "cost_basis": 10}])
        assert valuation.totals.priced_lines == 1


def test_an_etag_is_the_same_on_every_worker(server: str) -> None:
    headers = {"X-API-Key": new_key()}
    tag = httpx.get(f"{server}/v1/cards/{SEALED}", headers=headers).headers["etag"]
    statuses = {
        httpx.get(
            f"{server}/v1/cards/{SEALED}", headers={**headers, "If-None-Match": tag}
        ).status_code
        for _ in range(8)
    }
    assert statuses == {304}


@pytest.mark.parametrize(("method", "path", "body"), V1_ROUTES)
def test_auth_scope_and_quota_on_every_route(
    server: str, method: str, path: str, body: object
) -> None:
    url = f"{server}{path}"
    assert httpx.request(method, url, json=body).status_code == 401
    predict_only = httpx.request(
        method, url, json=body, headers={"X-API-Key": new_key(frozenset({Scope.PREDICT}))}
    )
    assert predict_only.status_code == (403 if path in BATCH_ROUTES else 200)
    key = new_key()
    statuses = []
    with httpx.Client(headers={"X-API-Key": key}) as client:
        for _ in range(BURST + 5):
            response = client.request(method, url, json=body)
            statuses.append(response.status_code)
            if response.status_code == 429:
                break
    assert statuses[0] == 200
    assert statuses[-1] == 429, statuses
    assert int(response.headers["retry-after"]) >= 1
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["error"] == "rate_limited"


def test_the_client_waits_out_a_429(server: str) -> None:
    key = new_key()
    with httpx.Client(headers={"X-API-Key": key}) as spender:
        while spender.get(f"{server}/v1/cards/{SEALED}").status_code != 429:
            pass
    waits: list[float] = []

    def sleep(seconds: float) -> None:
        waits.append(seconds)
        time.sleep(seconds)

    with PokeWatchClient(server, key, sleep=sleep) as client:
        assert client.card(SEALED).card_id == SEALED
    assert waits
    assert all(wait >= 1 for wait in waits)
    with PokeWatchClient(server, key, max_retries=0) as impatient:
        with httpx.Client(headers={"X-API-Key": key}) as spender:
            while spender.get(f"{server}/v1/cards/{SEALED}").status_code != 429:
                pass
        with pytest.raises(PokeWatchError) as caught:
            impatient.card(SEALED)
    assert (caught.value.status, caught.value.error) == (429, "rate_limited")
    assert caught.value.request_id
