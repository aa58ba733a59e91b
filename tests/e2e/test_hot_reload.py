"""A promoted model reaches every worker of a running service, without a restart."""

import os
import time
from pathlib import Path

import httpx
import pytest

from model.data import load_prices
from model.settings import Settings, load_settings
from model.training import train
from service.keys import KeysFile, Scope
from service.settings import StoreSettings
from service.store import Stage, Store

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def versions_seen(base: str, key: str, samples: int = 12) -> set[str]:
    # A new connection per request, so requests spread over the workers.
    return {
        httpx.post(
            f"{base}/fair_price", json={"card_id": "tcg-133777"}, headers={"X-API-Key": key}
        ).json()["model_version"]
        for _ in range(samples)
    }


def test_promoted_model_reaches_all_workers(served_two_workers: str, api_key: str) -> None:
    base = served_two_workers
    settings = load_settings(Settings).model.model_copy(update={"strategy": "mean3"})
    result = train(load_prices().valid, settings)
    before = versions_seen(base, api_key)
    assert len(before) == 1
    registry = Store.from_settings(StoreSettings()).registry
    rejected = registry.save(result.trained, Stage.REJECTED)
    promoted = registry.save(result.trained, Stage.PRODUCTION)
    deadline = time.monotonic() + 20
    while (seen := versions_seen(base, api_key)) != {promoted}:
        assert rejected not in seen
        assert time.monotonic() < deadline, f"still serving {seen}"
        time.sleep(0.5)
    assert before != {promoted}


def test_admin_reload_needs_the_admin_scope(served_two_workers: str, api_key: str) -> None:
    base = served_two_workers
    keys = KeysFile(Path(os.environ["POKEWATCH_SECURITY__KEYS_FILE"]))
    predict_only, _ = keys.create("no admin", frozenset({Scope.PREDICT}), "test")
    denied = httpx.post(f"{base}/admin/reload", headers={"X-API-Key": predict_only})
    assert denied.status_code == 403
    answer = httpx.post(f"{base}/admin/reload", headers={"X-API-Key": api_key}).json()
    assert answer["reloaded"] in (True, False)
    assert answer["model_version"].startswith("pokewatch-fair-price:")
