"""The alerts database on both back-ends (SQLite and a private PostgreSQL database)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from model.alerts import Rule, RuleKind, default_rules
from service.alerts.store import (
    METADATA,
    AlertStore,
    Attempt,
    DeliveryStatus,
    NewEvent,
)


@pytest.fixture
def store(alerts_database: str) -> Iterator[AlertStore]:
    opened = AlertStore.open(alerts_database)
    yield opened
    opened.close()


def event(identity: str, key_id: str = "a" * 12, kind: str = "price_below") -> NewEvent:
    return NewEvent(identity, key_id, f"alert.{kind}", kind, "tcg-1", "2026-12-01", b'{"id":1}')


def test_the_migrated_schema_is_the_one_the_code_queries(alerts_database: str) -> None:
    store = AlertStore.open(alerts_database)
    store.migrate()  # again: a no-op
    with store.engine.connect() as connection:
        assert compare_metadata(MigrationContext.configure(connection), METADATA) == []
    store.close()


def test_workers_starting_together_migrate_once(alerts_database: str) -> None:
    errors: list[BaseException] = []

    def open_and_close() -> None:
        try:
            AlertStore.open(alerts_database).close()
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=open_and_close) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []


def test_a_key_sees_and_changes_only_its_own_watchlist(store: AlertStore) -> None:
    mine, theirs = "a" * 12, "b" * 12
    store.watch(mine, [("tcg-1", default_rules()), ("tcg-2", default_rules())])
    store.watch(theirs, [("tcg-1", [Rule(kind=RuleKind.PRICE_ABOVE, value=5)])])
    replaced = store.watch(mine, [("tcg-1", [Rule(kind=RuleKind.PRICE_BELOW, value=3)])])
    assert [item.rules for item in replaced] == [[Rule(kind=RuleKind.PRICE_BELOW, value=3)]]
    assert [item.item_id for item in store.watchlist(mine)] == ["tcg-1", "tcg-2"]
    assert store.watchlist(theirs)[0].rules == [Rule(kind=RuleKind.PRICE_ABOVE, value=5)]
    assert not store.unwatch(theirs, "tcg-2")
    assert store.unwatch(mine, "tcg-2")
    assert store.watched_count(mine) == 1
    assert len(store.watchlist()) == 2


def test_events_are_recorded_once_with_a_delivery_per_subscribed_webhook(
    store: AlertStore,
) -> None:
    key = "a" * 12
    everything = store.add_webhook(key, "http://127.0.0.1:1/a", ["*"], "sealed")
    prices = store.add_webhook(key, "http://127.0.0.1:1/b", ["price_below"], "sealed")
    store.add_webhook(key, "http://127.0.0.1:1/c", ["signal_buy"], "sealed")
    store.add_webhook("b" * 12, "http://127.0.0.1:1/d", ["*"], "sealed")
    assert store.record([event("evt_1")]) == 2
    assert store.record([event("evt_1")]) == 0  # the same hit again: nothing new
    due = store.due(time.time())
    assert sorted(item.webhook.id for item in due) == sorted([everything.id, prices.id])
    assert {item.body for item in due} == {b'{"id":1}'}


def test_a_claimed_delivery_is_nobody_elses_until_its_lease_ends(store: AlertStore) -> None:
    store.add_webhook("a" * 12, "http://127.0.0.1:1/a", ["*"], "sealed")
    store.record([event("evt_1")])
    (due,) = store.due(time.time())
    now = time.time()
    assert store.claim(due.id, now, lease_seconds=5)
    assert not store.claim(due.id, now + 1, lease_seconds=5)
    assert store.due(now + 1) == []
    assert store.next_pending() == pytest.approx(now + 5)
    assert store.claim(due.id, now + 6, lease_seconds=5)  # the holder died: taken over


def test_attempts_are_logged_and_a_dead_delivery_can_be_redelivered(store: AlertStore) -> None:
    hook = store.add_webhook("a" * 12, "http://127.0.0.1:1/a", ["*"], "sealed")
    store.record([event("evt_1")])
    (due,) = store.due(time.time())
    store.claim(due.id, time.time(), 5)
    store.finish_attempt(
        due.id,
        Attempt(1, time.time(), 12.5, 500, "answered 500", "oops"),
        DeliveryStatus.DEAD,
        None,
    )
    (log,) = store.deliveries(hook.id)
    assert log.status is DeliveryStatus.DEAD
    assert [(a.number, a.status_code, a.response) for a in log.attempts] == [(1, 500, "oops")]
    assert store.deliveries(hook.id, DeliveryStatus.PENDING) == []
    assert store.due(time.time()) == []
    assert not store.redeliver("wh_other", due.id)
    assert store.redeliver(hook.id, due.id)
    (again,) = store.due(time.time())
    assert again.attempts == 1  # counts on from the attempts already made
    assert store.pending_count() == 1


def test_deleting_a_webhook_drops_its_deliveries(store: AlertStore) -> None:
    key = "a" * 12
    hook = store.add_webhook(key, "http://127.0.0.1:1/a", ["*"], "sealed")
    store.record([event("evt_1")])
    assert not store.delete_webhook("b" * 12, hook.id)  # not theirs
    assert store.delete_webhook(key, hook.id)
    assert store.due(time.time()) == []
    assert store.webhook(hook.id) is None
