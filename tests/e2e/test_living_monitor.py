"""Two days of the living monitor, end to end, with real processes.

A fake TCGCSV (the real wire format) serves day D; `pokewatch daily` runs; a running
`bentoml serve` with 2 workers answers D for tracked items seen for the first time, with
`data_as_of = D`. The fake moves to D+1 (with one printing never seen before); the daily
job runs again; the *same* server process answers D+1 within `reload_seconds` (measured
and printed). A losing challenger saved after that is never served, and a Bento built
then (the rejected challenger is BentoML's `latest`) carries the production model:
`bentoml get` lists it, and its export serves it from an empty BENTOML_HOME.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tarfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from model.data import load_prices
from model.settings import ModelSettings
from model.training import train
from pipelines.sources.tcgcsv import TcgcsvPrice
from service.store import ModelRegistry, Stage
from tests.e2e.conftest import REPO, bentoml_serve, daily_job_overrides
from tests.pipelines.fake_tcgcsv import GROUPS, FakeTcgcsv, fixture_days

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

BIN = Path(sys.executable).parent
RELOAD_SECONDS = 2
NEWCOMER = {
    "productId": 999002,
    "subTypeName": "Holofoil",
    "marketPrice": 12.5,
    "lowPrice": 11.0,
    "midPrice": 13.0,
    "highPrice": 999.0,
    "directLowPrice": None,
}


def run(argv: list[str], env: dict[str, str], cwd: Path = REPO) -> subprocess.CompletedProcess[str]:
    completed = subprocess.run(argv, env=env, cwd=cwd, capture_output=True, text=True, check=False)
    assert completed.returncode == 0, f"{argv}: {completed.stdout}\n{completed.stderr}"
    return completed


def answers(base: str, key: str, card_ids: list[str], samples: int = 8) -> list[dict[str, Any]]:
    """Answers for the ids, asked again on new connections (they spread over the workers)."""
    found = []
    for _ in range(samples):
        response = httpx.post(
            f"{base}/batch_predict",
            json={"items": [{"card_id": card_id} for card_id in card_ids]},
            headers={"X-API-Key": key},
        )
        assert response.status_code == 200, response.text
        found += response.json()["results"]
    return found


def test_two_days_reach_a_running_service_and_the_bento_carries_production(
    httpserver: Any, api_key: str, tmp_path: Path
) -> None:
    home = tmp_path / "bentoml-home"
    fake = FakeTcgcsv(httpserver)
    overrides = daily_job_overrides(tmp_path, fake.url)
    overrides["POKEWATCH_SERVICE__WORKERS"] = "2"
    overrides["POKEWATCH_SERVICE__RELOAD_SECONDS"] = str(RELOAD_SECONDS)
    env = {**os.environ, "PATH": f"{BIN}:{os.environ['PATH']}", "BENTOML_HOME": str(home)}
    env.update(overrides)
    registry = ModelRegistry.at(home / "models")
    production = registry.save(
        train(load_prices().valid, ModelSettings(strategy="last")).trained, Stage.PRODUCTION
    )
    today = datetime.now(UTC).date()
    day, next_day = today - timedelta(days=1), today
    days = fixture_days()

    fake.publish(day, days[3])
    run([str(BIN / "pokewatch"), "daily"], env)
    tracked = sorted(
        TcgcsvPrice.model_validate(price).item_id
        for price in fake.prices_of(GROUPS[0])
        if price["marketPrice"] is not None
    )
    with bentoml_serve("service:PokeWatch", env=env) as base:
        first = answers(base, api_key, tracked[:3])
        assert {a["data_as_of"] for a in first} == {day.isoformat()}
        assert {a["price_date"] for a in first} == {day.isoformat()}
        assert {a["history_days"] for a in first} == {1}  # seen for the first time
        assert {a["model_version"] for a in first} == {production}
        assert {a["stale"] for a in first} == {False}
        assert all(a["signal"] in {"BUY", "HOLD", "SELL"} for a in first)

        fake.publish(next_day, days[4], extra={GROUPS[0]: [NEWCOMER]})
        run([str(BIN / "pokewatch"), "daily"], env)
        published = time.monotonic()
        ids = [*tracked[:3], "tcg-999002-holofoil"]
        deadline = published + 60
        while {a.get("data_as_of") for a in answers(base, api_key, ids)} != {next_day.isoformat()}:
            assert time.monotonic() < deadline, "the new day never reached every worker"
            time.sleep(0.2)
        reached = time.monotonic() - published
        print(f"D+1 reached both workers {reached:.1f} s after the daily job ended")
        newest = answers(base, api_key, ids)
        newcomer = [a for a in newest if a["card_id"] == "tcg-999002-holofoil"]
        assert {(a["market_price"], a["history_days"]) for a in newcomer} == {(12.5, 1)}
        assert {a["history_days"] for a in newest if a["card_id"] == tracked[0]} == {2}
        health = httpx.post(f"{base}/health", headers={"X-API-Key": api_key}).json()
        assert health["data_as_of"] == next_day.isoformat()
        assert health["jobs"]["daily"]["last_success"] is not None

        # A losing challenger saved after that (what `pokewatch train` does with one that
        # loses, tests/pipelines/test_promotion.py) is never served.
        registry.save(
            train(load_prices().valid, ModelSettings(strategy="mean3")).trained, Stage.REJECTED
        )
        time.sleep(RELOAD_SECONDS * 3)
        after = answers(base, api_key, ids)
        assert {a["model_version"] for a in after} == {production}
        assert {a["data_as_of"] for a in after} == {next_day.isoformat()}

    # The Bento built now carries the production model, not the newer rejected challenger.
    version = f"e2e-{uuid.uuid4().hex[:8]}"
    run([str(BIN / "bentoml"), "build", ".", "--version", version], env)
    listed = run([str(BIN / "bentoml"), "get", f"pokewatch:{version}", "-o", "json"], env)
    (service,) = json.loads(listed.stdout)["services"]
    carried = [model["tag"] for model in service["models"]]
    assert carried == [production], carried
    archive = tmp_path / "pokewatch.bento"
    run([str(BIN / "bentoml"), "export", f"pokewatch:{version}", str(archive)], env)
    extracted = tmp_path / "bento"
    extracted.mkdir()
    with tarfile.open(archive) as bundle:
        bundle.extractall(extracted, filter="data")
    empty = tmp_path / "empty-home"
    empty.mkdir()
    # The Bento's own configuration.yaml, as in the container.
    bento_env = {"BENTOML_HOME": str(empty), **dict.fromkeys(overrides)}
    with bentoml_serve(str(extracted), env=bento_env, cwd=extracted) as base:
        answer = httpx.post(
            f"{base}/fair_price", json={"card_id": "tcg-133777"}, headers={"X-API-Key": api_key}
        )
        assert answer.status_code == 200, answer.text
        assert answer.json()["model_version"] == production
