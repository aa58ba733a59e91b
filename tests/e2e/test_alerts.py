"""Alerts end to end with real processes and a real receiver on loopback.

1. Two published days: a running `bentoml serve` takes a key's watchlist and webhook over
   HTTP; `pokewatch alerts run` evaluates day D, the daily job publishes D+1 and delivers
   what became true on D+1 (the receiver fails the first attempt: it is retried), running
   D+1 again sends nothing new, `pokewatch alerts test` sends a signed test event, and the
   delivery log over HTTP shows every attempt.
2. A deliverer killed with SIGKILL mid-delivery, restarted: every event arrives at least
   once, and only an event in flight at the kill arrives twice (the receiver's
   de-duplication by id absorbs it). On SQLite and on PostgreSQL.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.fernet import Fernet

from model.data import load_prices
from model.settings import ModelSettings
from model.training import train
from pipelines.sources.tcgcsv import TcgcsvPrice
from service.alerts.signing import KEY_VARIABLE, SecretBox, new_secret
from service.alerts.store import AlertStore, NewEvent
from service.store import ModelRegistry, Stage
from tests.alerts_receiver import receiving
from tests.e2e.conftest import bentoml_serve, daily_job_overrides
from tests.pipelines.fake_tcgcsv import GROUPS, FakeTcgcsv, fixture_days

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

BIN = Path(sys.executable).parent
DELIVERY = {
    "POKEWATCH_ALERTS__DELIVERY__TIMEOUT_SECONDS": "2",
    "POKEWATCH_ALERTS__DELIVERY__INITIAL_WAIT_SECONDS": "0.2",
    "POKEWATCH_ALERTS__DELIVERY__MAX_WAIT_SECONDS": "0.5",
    "POKEWATCH_ALERTS__DELIVERY__RUN_SECONDS": "30",
}


def pokewatch(*argv: str, env: dict[str, str]) -> str:
    done = subprocess.run(
        [str(BIN / "pokewatch"), *argv], env=env, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, f"{argv}: {done.stdout}\n{done.stderr}"
    return done.stdout


def market_prices(fake: FakeTcgcsv) -> dict[str, float]:
    return {
        TcgcsvPrice.model_validate(price).item_id: price["marketPrice"]
        for price in fake.prices_of(GROUPS[0])
        if price["marketPrice"] is not None
    }


def test_rules_fire_on_the_published_day_they_become_true(
    httpserver: Any, api_key: str, tmp_path: Path
) -> None:
    home = tmp_path / "bentoml-home"
    fake = FakeTcgcsv(httpserver)
    env = {
        **os.environ,
        "PATH": f"{BIN}:{os.environ['PATH']}",
        "BENTOML_HOME": str(home),
        **daily_job_overrides(tmp_path, fake.url),
        **DELIVERY,
    }
    ModelRegistry.at(home / "models").save(
        train(load_prices().valid, ModelSettings(strategy="last")).trained, Stage.PRODUCTION
    )
    today = datetime.now(UTC).date()
    day, next_day = today - timedelta(days=1), today
    days = fixture_days()
    fake.publish(day, days[3])
    before = market_prices(fake)
    pokewatch("daily", env=env)
    fake.publish(next_day, days[4])
    after = market_prices(fake)
    rising = sorted(item for item in before if after.get(item, 0) > before[item])
    assert rising, "the fixture has no price that rises from one day to the next"
    riser, steady = rising[0], sorted(set(before) & set(after) - {rising[0]})[0]
    threshold = round((before[riser] + after[riser]) / 2, 4)

    with receiving() as receiver, bentoml_serve("service:PokeWatch", env=env) as base:
        client = httpx.Client(base_url=base, headers={"X-API-Key": api_key})
        watched = client.post(
            "/v1/watchlist",
            json={
                "items": [
                    {"card_id": riser, "rules": [{"kind": "price_above", "value": threshold}]},
                    {"card_id": steady, "rules": [{"kind": "price_above", "value": 0}]},
                ]
            },
        )
        assert watched.status_code == 200, watched.text
        made = client.post("/v1/webhooks", json={"url": receiver.url})
        assert made.status_code == 201, made.text
        hook = made.json()
        receiver.secret = hook["secret"]

        # Day D: the steady item is priced for the first time (above 0: true, and new).
        printed = pokewatch("alerts", "run", env=env)
        assert "2 watched items, 1 alerts fired, 1 deliveries queued" in printed, printed
        assert [(r.event["card_id"], r.event["date"]) for r in receiver.received] == [
            (steady, day.isoformat())
        ]

        # Day D+1, through the daily job: only the riser's rule became true.
        receiver.script = [(500, {}, 0.0)]
        pokewatch("daily", env=env)
        on_next_day = [
            r.event for r in receiver.received if r.event["date"] == next_day.isoformat()
        ]
        assert [(e["card_id"], e["type"]) for e in on_next_day] == [
            (riser, "alert.price_above")
        ] * 2
        event = on_next_day[-1]
        assert event["answer"]["market_price"] == after[riser]
        assert event["previous"]["market_price"] == before[riser]
        assert receiver.refused == 0
        jobs = client.post("/health").json()["jobs"]
        assert jobs["alerts"]["last_success"] is not None

        # Running D+1 again adds nothing; a test event is signed and delivered.
        printed = pokewatch("alerts", "run", "--date", next_day.isoformat(), env=env)
        assert "0 deliveries queued" in printed, printed
        pokewatch("alerts", "test", hook["id"], env=env)
        assert receiver.received[-1].event["type"] == "webhook.test"
        assert receiver.refused == 0

        deliveries = client.get(f"/v1/webhooks/{hook['id']}/deliveries").json()["deliveries"]
        assert {d["status"] for d in deliveries} == {"delivered"}
        assert len(deliveries) == 3  # day D's, D+1's and the test event
        riser_delivery = next(d for d in deliveries if d["card_id"] == riser)
        assert [a["status_code"] for a in riser_delivery["attempts"]] == [500, 200]
        signed = receiver.received[-2]  # the riser's second attempt, answered 200
        shown = ("pokewatch-signature", "pokewatch-event-id", "pokewatch-attempt")
        print("one signed delivery as received:")
        print("\n".join(f"{name}: {signed.headers[name]}" for name in shown))
        print(signed.body.decode())
        client.close()


def test_a_deliverer_killed_mid_delivery_loses_nothing(alerts_database: str) -> None:
    key = Fernet.generate_key()
    box = SecretBox(key)
    store = AlertStore.open(alerts_database)
    env = {
        **os.environ,
        "POKEWATCH_ALERTS__DATABASE_URL": alerts_database,
        KEY_VARIABLE: key.decode(),
        **DELIVERY,
    }
    with receiving(new_secret()) as receiver:
        # Each answer takes 0.3 s, so the kill lands while one is in flight.
        receiver.script = [(200, {}, 0.3)] * 40
        store.add_webhook("a" * 12, receiver.url, ["*"], box.seal(receiver.secret))
        ids = [f"evt_kill_{number:02d}" for number in range(12)]
        store.record(
            [
                NewEvent(
                    identity,
                    "a" * 12,
                    "alert.price_below",
                    "price_below",
                    "tcg-1",
                    "2026-12-01",
                    f'{{"id":"{identity}"}}'.encode(),
                )
                for identity in ids
            ]
        )
        first = subprocess.Popen(
            [str(BIN / "pokewatch"), "alerts", "deliver", "--wait-seconds", "60"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        assert receiver.requested.wait(60), "the deliverer never called the receiver"
        time.sleep(random.uniform(0.3, 2.0))
        os.killpg(first.pid, signal.SIGKILL)
        first.wait()
        delivered_before = sum(receiver.delivered_ids.values())
        assert delivered_before < len(ids), "killed too late: everything was delivered"
        printed = pokewatch("alerts", "deliver", "--wait-seconds", "60", env=env)
        assert "left pending" in printed
        counts = receiver.delivered_ids
        assert set(counts) == set(ids)  # every event at least once
        twice = [identity for identity, seen in counts.items() if seen > 1]
        assert len(twice) <= 1, counts  # only the one in flight at the kill
        assert receiver.refused == 0
        assert store.pending_count() == 0
        print(f"killed after {delivered_before} receipts; sent twice: {twice or 'none'}")
    store.close()
