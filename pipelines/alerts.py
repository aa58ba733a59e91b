"""Alerts: evaluate every watchlist rule on a published day, deliver the events it fires.

`pokewatch alerts run` (the daily job runs it after publishing) evaluates each watched
item's rules on the day (`model.alerts`: a rule fires on the day it becomes true), writes
one event per hit with a pending delivery per subscribed webhook (`service.alerts.store`),
then delivers. An event's id is a hash of key, item, rule and day, so running a day again
(a retried job, a restart) adds nothing.

Delivery: a signed JSON POST (`service.alerts.signing`) to an address the SSRF check passed
(`service.alerts.targets`), redirects not followed, each phase within
`alerts.delivery.timeout_seconds`, at most `max_response_bytes` of the answer read. 2xx is
delivered; timeouts, connection errors, 408, 429 and 5xx are retried with full-jitter
exponential backoff (a Retry-After is honoured, capped) up to `max_attempts`, then
dead-lettered; any other status is refused for good (dead at once). A run waits up to
`run_seconds` for retries that come due; later ones are left for the next run.
"""

from __future__ import annotations

import hashlib
import logging
import random
import time
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

import httpx
import orjson

from model.alerts import Rule
from model.lookup import date_to_day
from model.predictor import Predictor, Query, QueryError
from pipelines.settings import PipelineSettings
from pipelines.sources.http import retry_after_seconds
from service.alerts.signing import SIGNATURE_HEADER, SecretBox, SecretsError, signature
from service.alerts.store import (
    AlertStore,
    Attempt,
    DeliveryStatus,
    DueDelivery,
    NewEvent,
    WatchItem,
    new_id,
    open_alerts,
)
from service.alerts.targets import TargetError, check
from service.settings import DeliverySettings
from service.store import Store, StoreError

logger = logging.getLogger("pokewatch.alerts")
ALERT_PREFIX = "alert."
TEST_EVENT = "webhook.test"
USER_AGENT = "PokeWatch-Webhooks/1"
RETRYABLE_STATUSES = frozenset({408, 429})
# A deliverer holds a delivery this long past the attempt's timeout; one killed mid-send
# leaves it to be sent again once the lease ends.
LEASE_MARGIN_SECONDS = 5.0
Clock = Callable[[], float]


@dataclass
class DeliveryCounts:
    delivered: int = 0
    retried: int = 0
    dead: int = 0
    left_pending: int = 0

    def summary(self) -> str:
        return (
            f"{self.delivered} delivered, {self.retried} attempts to retry, {self.dead} "
            f"dead-lettered, {self.left_pending} left pending"
        )


@dataclass
class AlertsRun:
    day: date | None = None
    watched: int = 0
    events: list[NewEvent] = field(default_factory=list)
    queued: int = 0
    counts: DeliveryCounts = field(default_factory=DeliveryCounts)

    def summary(self) -> str:
        day = self.day.isoformat() if self.day else "no published day"
        return (
            f"alerts on {day}: {self.watched} watched items, {len(self.events)} alerts fired, "
            f"{self.queued} deliveries queued; {self.counts.summary()}"
        )


def event_id(key_id: str, item_id: str, rule: Rule, day: date) -> str:
    """The same hit on the same day always has the same id (receivers de-duplicate by it)."""
    identity = f"{key_id}|{item_id}|{rule.name}|{day.isoformat()}"
    return "evt_" + hashlib.sha256(identity.encode()).hexdigest()[:32]


def _now_iso(clock: Clock) -> str:
    stamp = datetime.fromtimestamp(clock(), UTC).isoformat(timespec="seconds")
    return stamp.replace("+00:00", "Z")


def evaluate(
    predictor: Predictor, watches: Iterable[WatchItem], day: date, clock: Clock = time.time
) -> list[NewEvent]:
    """The events the watched items' rules fire on `day` (items without a price that day
    fire nothing)."""
    by_item: dict[str, list[WatchItem]] = defaultdict(list)
    for watch in watches:
        by_item[watch.item_id].append(watch)
    number = date_to_day(day)
    fired: list[NewEvent] = []
    for item_id, watching in sorted(by_item.items()):
        try:
            rows = predictor.history(item_id, None, number)
        except QueryError:
            continue  # no longer in the table (a delisted item)
        if len(rows.rows) == 0 or int(rows.days[-1]) != number:
            continue
        today = rows.fields(len(rows.rows) - 1)
        previous = rows.fields(len(rows.rows) - 2) if len(rows.rows) > 1 else None
        (answer,) = predictor.answer([Query(item_id, day.isoformat(), number)])
        assert not isinstance(answer, QueryError)  # the item has a row on the day
        for watch in watching:
            for rule in watch.rules:
                if not rule.fires(today, previous):
                    continue
                identity = event_id(watch.key_id, item_id, rule, day)
                body = {
                    "id": identity,
                    "type": ALERT_PREFIX + rule.kind.value,
                    "created": _now_iso(clock),
                    "key_id": watch.key_id,
                    "card_id": item_id,
                    "date": day.isoformat(),
                    "rule": rule.model_dump(exclude_none=True),
                    "answer": answer,
                    "previous": previous,
                }
                fired.append(
                    NewEvent(
                        identity,
                        watch.key_id,
                        str(body["type"]),
                        rule.kind.value,
                        item_id,
                        day.isoformat(),
                        orjson.dumps(body),
                    )
                )
    return fired


def ping_event(key_id: str, webhook_id: str, clock: Clock = time.time) -> NewEvent:
    """A `webhook.test` event for one webhook (`pokewatch alerts test`)."""
    identity = new_id("evt_test")
    body = {
        "id": identity,
        "type": TEST_EVENT,
        "created": _now_iso(clock),
        "key_id": key_id,
        "webhook_id": webhook_id,
    }
    return NewEvent(identity, key_id, TEST_EVENT, TEST_EVENT, None, None, orjson.dumps(body))


class Deliverer:
    """Sends due deliveries and records each attempt's outcome."""

    def __init__(
        self,
        store: AlertStore,
        box: SecretBox,
        settings: PipelineSettings,
        clock: Clock = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.store = store
        self.box = box
        self.alerts = settings.alerts
        self.delivery: DeliverySettings = settings.alerts.delivery
        self.clock = clock
        self.sleep = sleep
        timeout = self.delivery.timeout_seconds
        self.http = httpx.Client(
            timeout=httpx.Timeout(timeout), follow_redirects=False, trust_env=False
        )

    def close(self) -> None:
        self.http.close()

    def deliver(self, wait_seconds: float | None = None) -> DeliveryCounts:
        """Deliver what is due, waiting up to `wait_seconds` (default `run_seconds`) for
        retries and leases that end in that time."""
        counts = DeliveryCounts()
        deadline = self.clock() + (
            self.delivery.run_seconds if wait_seconds is None else wait_seconds
        )
        lease = self.delivery.timeout_seconds + LEASE_MARGIN_SECONDS
        while True:
            now = self.clock()
            due = self.store.due(now)
            if not due:
                upcoming = self.store.next_pending()
                if upcoming is None or upcoming > deadline:
                    break
                self.sleep(max(0.05, min(upcoming - now, deadline - now)))
                continue
            for delivery in due:
                if self.store.claim(delivery.id, self.clock(), lease):
                    self._attempt(delivery, counts)
        counts.left_pending = self.store.pending_count()
        return counts

    def _attempt(self, delivery: DueDelivery, counts: DeliveryCounts) -> None:
        number = delivery.attempts + 1
        started = self.clock()
        began = time.perf_counter()
        status_code: int | None = None
        excerpt: str | None = None
        retry_after: float | None = None
        error: str | None = None
        try:
            status_code, excerpt, retry_after = self._send(delivery, number)
        except (httpx.HTTPError, TargetError, SecretsError) as failure:
            error = f"{type(failure).__name__}: {failure}"
        duration_ms = (time.perf_counter() - began) * 1000
        if status_code is not None and 200 <= status_code < 300:
            outcome, next_at = DeliveryStatus.DELIVERED, None
            counts.delivered += 1
        elif status_code is not None and not _retryable(status_code):
            outcome, next_at = DeliveryStatus.DEAD, None
            error = error or f"answered {status_code}: not retried"
            counts.dead += 1
        elif number >= self.delivery.max_attempts:
            outcome, next_at = DeliveryStatus.DEAD, None
            error = error or f"answered {status_code}"
            counts.dead += 1
        else:
            outcome = DeliveryStatus.PENDING
            next_at = self.clock() + self._wait(number, retry_after)
            error = error or f"answered {status_code}"
            counts.retried += 1
        self.store.finish_attempt(
            delivery.id,
            Attempt(number, started, duration_ms, status_code, error, excerpt),
            outcome,
            next_at,
        )
        log = logger.info if outcome is DeliveryStatus.DELIVERED else logger.warning
        log(
            "delivery %s of %s to %s attempt %d: %s (%s)",
            delivery.id,
            delivery.event_id,
            delivery.webhook.id,
            number,
            outcome.value,
            status_code if error is None else error,
        )

    def _send(self, delivery: DueDelivery, number: int) -> tuple[int, str, float | None]:
        """POST the event once: its status, the start of its answer, its Retry-After."""
        alerts = self.alerts
        target = check(delivery.webhook.url, alerts.require_https, alerts.allowed_networks)
        secret = self.box.open(delivery.webhook.secret)
        headers = {
            "Host": target.host_header,
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
            SIGNATURE_HEADER: signature(secret, int(self.clock()), delivery.body),
            "PokeWatch-Event-Id": delivery.event_id,
            "Idempotency-Key": delivery.event_id,
            "PokeWatch-Delivery-Id": delivery.id,
            "PokeWatch-Attempt": str(number),
        }
        extensions: dict[str, Any] = {}
        if target.url.scheme == "https":
            extensions["sni_hostname"] = target.host
        limit = self.delivery.max_response_bytes
        deadline = time.monotonic() + self.delivery.timeout_seconds
        with self.http.stream(
            "POST",
            target.pinned_url(),
            content=delivery.body,
            headers=headers,
            extensions=extensions,
        ) as response:
            kept = bytearray()
            for chunk in response.iter_raw():
                kept += chunk
                if len(kept) >= limit or time.monotonic() > deadline:
                    break
            return (
                response.status_code,
                bytes(kept[:limit]).decode(errors="replace"),
                retry_after_seconds(response),
            )

    def _wait(self, number: int, retry_after: float | None) -> float:
        delivery = self.delivery
        if retry_after is not None:
            return min(retry_after, delivery.max_retry_after_seconds)
        ceiling = min(delivery.max_wait_seconds, delivery.initial_wait_seconds * 2 ** (number - 1))
        return random.uniform(0, ceiling)  # noqa: S311 (jitter, not a secret)


def _retryable(status: int) -> bool:
    return status in RETRYABLE_STATUSES or status >= 500


def run_alerts(
    settings: PipelineSettings,
    store: Store,
    day: date | None = None,
    wait_seconds: float | None = None,
) -> AlertsRun:
    """Evaluate the rules on `day` (default: the newest published day), then deliver."""
    alert_store, box = open_alerts(settings.alerts, settings.store)
    run = AlertsRun()
    try:
        watches = alert_store.watchlist()
        run.watched = len(watches)
        if watches:
            selection = store.select()
            if selection is None:
                raise StoreError("no production model to evaluate the rules with")
            predictor = Predictor(
                store.table(selection),
                selection.model.tag,
                settings.model.thresholds,
                settings.model.min_observed_days,
            )
            run.day = day or predictor.data_as_of
            if run.day > predictor.data_as_of:
                raise StoreError(
                    f"{run.day} is not published yet (the newest day is {predictor.data_as_of})"
                )
            run.events = evaluate(predictor, watches, run.day)
            run.queued = alert_store.record(run.events)
        deliverer = Deliverer(alert_store, box, settings)
        try:
            run.counts = deliverer.deliver(wait_seconds)
        finally:
            deliverer.close()
    finally:
        alert_store.close()
    return run


def send_test(
    settings: PipelineSettings, webhook_id: str, wait_seconds: float | None = None
) -> DeliveryCounts | None:
    """Queue a signed `webhook.test` event for one webhook and deliver (None: no such
    webhook)."""
    alert_store, box = open_alerts(settings.alerts, settings.store)
    try:
        hook = alert_store.webhook(webhook_id)
        if hook is None:
            return None
        alert_store.record([ping_event(hook.key_id, hook.id)], only_webhook=hook.id)
        deliverer = Deliverer(alert_store, box, settings)
        try:
            return deliverer.deliver(wait_seconds)
        finally:
            deliverer.close()
    finally:
        alert_store.close()


__all__ = [
    "AlertsRun",
    "Deliverer",
    "DeliveryCounts",
    "evaluate",
    "event_id",
    "ping_event",
    "run_alerts",
    "send_test",
]
