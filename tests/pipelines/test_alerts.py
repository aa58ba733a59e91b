"""Alerts: rules evaluated on consecutive days, events delivered to a real receiver on
loopback (signed, retried, dead-lettered, redelivered), on both database back-ends."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from ipaddress import ip_network
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import select

from model.alerts import Rule, RuleKind
from model.artifact import build_trained_model, price_table
from model.evaluation import BacktestSettings
from model.predictor import Predictor
from model.settings import load_settings
from model.strategies import FairPriceModel
from model.training import train
from pipelines.alerts import Deliverer, DeliveryCounts, evaluate, event_id, run_alerts, send_test
from pipelines.settings import PipelineSettings
from service.alerts.signing import KEY_VARIABLE, SecretBox, new_secret
from service.alerts.store import AlertStore, DeliveryStatus, open_alerts, webhooks
from service.settings import AlertsSettings, DeliverySettings
from service.store import Stage
from tests.alerts_receiver import Receiver, receiving
from tests.model.conftest import SMALL_PRICES, make_prices
from tests.pipelines.conftest import private_store

KEY, OTHER_KEY = "a" * 12, "b" * 12
DAY_2, DAY_3, DAY_4 = date(2024, 1, 3), date(2024, 1, 4), date(2024, 1, 5)
FAST = DeliverySettings(
    timeout_seconds=0.5,
    max_attempts=3,
    initial_wait_seconds=0.05,
    max_wait_seconds=0.2,
    max_retry_after_seconds=5,
    run_seconds=10,
)


def settings_for(database: str, **alerts: object) -> PipelineSettings:
    config = AlertsSettings(
        database_url=database,
        require_https=False,
        allowed_networks=[ip_network("127.0.0.0/8")],
        delivery=FAST,
    ).model_copy(update=alerts)
    return load_settings(PipelineSettings).model_copy(update={"alerts": config})


@pytest.fixture
def store(alerts_database: str) -> Iterator[AlertStore]:
    opened = AlertStore.open(alerts_database)
    yield opened
    opened.close()


@pytest.fixture
def box() -> SecretBox:
    return SecretBox(Fernet.generate_key())


@pytest.fixture
def predictor() -> Predictor:
    """SMALL_PRICES priced by the naive model: item a is 14, 13, 15 on days 2, 3, 4; d is
    5 on day 2 and 6 on day 4 (no price on day 3)."""
    trained = build_trained_model(
        make_prices(SMALL_PRICES), FairPriceModel("last", horizon=1), BacktestSettings()
    )
    return Predictor(
        price_table(trained), "test:1", load_settings(PipelineSettings).model.thresholds
    )


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with receiving(new_secret()) as running:
        yield running


def hook_to(
    store: AlertStore, box: SecretBox, receiver: Receiver, kinds: list[str] | None = None
) -> str:
    return store.add_webhook(KEY, receiver.url, kinds or ["*"], box.seal(receiver.secret)).id


def test_rules_fire_on_the_day_they_become_true(store: AlertStore, predictor: Predictor) -> None:
    store.watch(
        KEY,
        [
            (
                "a",
                [
                    Rule(kind=RuleKind.PRICE_ABOVE, value=14),
                    Rule(kind=RuleKind.PRICE_BELOW, value=13.5),
                ],
            ),
            ("d", [Rule(kind=RuleKind.PRICE_ABOVE, value=5.5)]),
        ],
    )
    store.watch(OTHER_KEY, [("a", [Rule(kind=RuleKind.PRICE_ABOVE, value=0)])])
    fired = {
        day: {
            (event.key_id, event.item_id, event.type)
            for event in evaluate(predictor, store.watchlist(), day)
        }
        for day in (DAY_2, DAY_3, DAY_4)
    }
    assert fired[DAY_2] == set()  # 14 is not above 14, nor below 13.5; d is 5
    assert fired[DAY_3] == {(KEY, "a", "alert.price_below")}  # 13 < 13.5, after 14
    # 15 > 14 after 13; d (no price on day 3) rises past 5.5 from day 2's 5.
    assert fired[DAY_4] == {(KEY, "a", "alert.price_above"), (KEY, "d", "alert.price_above")}
    # a is above 0 on every day since its first: it became true on day 0, never since.
    assert all((OTHER_KEY, "a", "alert.price_above") not in hits for hits in fired.values())


def test_an_event_is_written_once_however_often_its_day_is_evaluated(
    store: AlertStore, box: SecretBox, predictor: Predictor, receiver: Receiver
) -> None:
    hook_to(store, box, receiver)
    store.watch(KEY, [("a", [Rule(kind=RuleKind.PRICE_ABOVE, value=14)])])
    assert store.record(evaluate(predictor, store.watchlist(), DAY_4)) == 1
    assert store.record(evaluate(predictor, store.watchlist(), DAY_4)) == 0
    (due,) = store.due(time.time())
    assert due.event_id == event_id(KEY, "a", Rule(kind=RuleKind.PRICE_ABOVE, value=14), DAY_4)


@dataclass
class Queued:
    """One price_above event queued for one webhook to the receiver."""

    database: str
    store: AlertStore
    box: SecretBox
    receiver: Receiver
    hook: str

    def deliver(self, **alerts: object) -> DeliveryCounts:
        settings = settings_for(self.database, **alerts)
        return Deliverer(self.store, self.box, settings).deliver()


@pytest.fixture
def queued(
    alerts_database: str,
    store: AlertStore,
    box: SecretBox,
    predictor: Predictor,
    receiver: Receiver,
) -> Queued:
    hook = hook_to(store, box, receiver)
    store.watch(KEY, [("a", [Rule(kind=RuleKind.PRICE_ABOVE, value=14)])])
    store.record(evaluate(predictor, store.watchlist(), DAY_4))
    return Queued(alerts_database, store, box, receiver, hook)


def test_a_signed_event_reaches_the_receiver(queued: Queued) -> None:
    store, receiver = queued.store, queued.receiver
    counts = queued.deliver()
    assert (counts.delivered, counts.retried, counts.dead, counts.left_pending) == (1, 0, 0, 0)
    assert receiver.refused == 0
    (received,) = receiver.received
    event = received.event
    assert event["type"] == "alert.price_above"
    assert event["card_id"] == "a"
    assert event["date"] == "2024-01-05"
    assert event["rule"] == {"kind": "price_above", "value": 14.0}
    assert event["answer"]["market_price"] == 15.0
    assert event["answer"]["name"] == "Alpha"
    assert event["previous"]["market_price"] == 13.0
    assert received.headers["pokewatch-event-id"] == event["id"]
    assert received.headers["idempotency-key"] == event["id"]
    assert received.headers["pokewatch-attempt"] == "1"
    assert received.headers["host"] == receiver.url.split("/")[2]
    (log,) = store.deliveries(queued.hook)
    assert log.status is DeliveryStatus.DELIVERED
    assert [attempt.status_code for attempt in log.attempts] == [200]


def test_5xx_and_timeouts_are_retried_with_backoff_until_delivered(queued: Queued) -> None:
    # a 500, a 200 that comes too late (after the 0.5 s timeout), then a 200
    queued.receiver.script = [(500, {}, 0.0), (200, {}, 1.5)]
    counts = queued.deliver()
    assert (counts.delivered, counts.retried, counts.dead) == (1, 2, 0)
    (log,) = queued.store.deliveries(queued.hook)
    assert [attempt.status_code for attempt in log.attempts] == [500, None, 200]
    assert "Timeout" in (log.attempts[1].error or "")
    # The receiver saw the event three times and answered it 2xx twice: its
    # de-duplication by id absorbs the second.
    received = queued.receiver.received
    assert queued.receiver.delivered_ids == {log.event_id: 2}
    assert [item.headers["pokewatch-attempt"] for item in received] == ["1", "2", "3"]


def test_retry_after_is_honoured(queued: Queued) -> None:
    queued.receiver.script = [(429, {"Retry-After": "2"}, 0.0)]
    counts = queued.deliver()
    assert (counts.delivered, counts.retried) == (1, 1)
    first, second = (item.at for item in queued.receiver.received)
    assert second - first >= 1.9  # not the 0.05 s backoff


def test_the_last_failure_dead_letters_and_a_redelivery_delivers(queued: Queued) -> None:
    store, hook = queued.store, queued.hook
    queued.receiver.script = [(503, {}, 0.0)] * 3
    counts = queued.deliver()
    assert (counts.delivered, counts.retried, counts.dead) == (0, 2, 1)
    (log,) = store.deliveries(hook, DeliveryStatus.DEAD)
    assert len(log.attempts) == 3
    assert store.redeliver(hook, log.id)
    assert queued.deliver().delivered == 1
    (log,) = store.deliveries(hook)
    assert log.status is DeliveryStatus.DELIVERED
    assert [attempt.status_code for attempt in log.attempts] == [503, 503, 503, 200]


@pytest.mark.parametrize(
    ("status", "headers"), [(400, {}), (302, {"Location": "http://127.0.0.1:1/"})]
)
def test_other_answers_are_refused_for_good_and_redirects_are_not_followed(
    queued: Queued, status: int, headers: dict[str, str]
) -> None:
    queued.receiver.script = [(status, headers, 0.0)]
    counts = queued.deliver()
    assert (counts.delivered, counts.dead) == (0, 1)
    assert len(queued.receiver.received) == 1
    (log,) = queued.store.deliveries(queued.hook)
    assert log.status is DeliveryStatus.DEAD
    assert log.attempts[0].status_code == status


def test_a_target_that_turns_private_is_refused_at_delivery(queued: Queued) -> None:
    """The SSRF check runs before every attempt, not only when the webhook is made."""
    counts = queued.deliver(allowed_networks=[])
    assert counts.dead == 1
    assert queued.receiver.received == []
    (log,) = queued.store.deliveries(queued.hook)
    assert all("non-public" in (attempt.error or "") for attempt in log.attempts)


def test_secrets_are_stored_sealed_and_never_logged(
    queued: Queued, caplog: pytest.LogCaptureFixture
) -> None:
    queued.receiver.script = [(500, {}, 0.0)]
    with caplog.at_level(logging.DEBUG):
        queued.deliver()
    secret = queued.receiver.secret
    assert secret not in caplog.text
    assert "delivery" in caplog.text  # the attempts were logged
    with queued.store.engine.connect() as connection:
        stored = connection.execute(select(webhooks.c.secret)).scalar_one()
    assert secret not in stored
    assert queued.box.open(stored) == secret


def test_run_alerts_evaluates_the_published_day_and_a_test_event_is_signed(
    write_config: Path,
    tmp_path: Path,
    alerts_database: str,
    receiver: Receiver,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """`run_alerts` over a store's production model, and `send_test` (pokewatch alerts test)."""
    monkeypatch.setenv("POKEWATCH_ALERTS__DATABASE_URL", alerts_database)
    monkeypatch.setenv(KEY_VARIABLE, Fernet.generate_key().decode())
    settings = load_settings(PipelineSettings)
    store = private_store(tmp_path)
    model = train(make_prices(SMALL_PRICES), settings.model.model_copy(update={"horizon": 1}))
    store.registry.save(model.trained, Stage.PRODUCTION)
    alert_store, box = open_alerts(settings.alerts, settings.store)
    hook = alert_store.add_webhook(KEY, receiver.url, ["*"], box.seal(receiver.secret))
    alert_store.watch(KEY, [("a", [Rule(kind=RuleKind.PRICE_ABOVE, value=14)])])
    run = run_alerts(settings, store, wait_seconds=5)
    assert run.day == DAY_4
    assert (run.watched, len(run.events), run.queued, run.counts.delivered) == (1, 1, 1, 1)
    assert "1 alerts fired" in run.summary()
    again = run_alerts(settings, store, day=DAY_4, wait_seconds=5)
    assert (len(again.events), again.queued) == (1, 0)  # the same hit, already recorded
    counts = send_test(settings, hook.id, wait_seconds=5)
    assert counts is not None
    assert counts.delivered == 1
    assert [item.event["type"] for item in receiver.received] == [
        "alert.price_above",
        "webhook.test",
    ]
    assert send_test(settings, "wh_missing") is None
    alert_store.close()
