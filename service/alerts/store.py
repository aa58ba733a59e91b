"""Watchlists, webhooks, events and deliveries in one SQL database (SQLAlchemy 2 Core).

SQLite in WAL mode is the embedded default (a file in the store's state directory);
PostgreSQL (psycopg 3) by `alerts.database_url`. The schema is Alembic's
(`service/alerts/migrations`): `AlertStore.open` upgrades it to the newest revision under a
lock (a file lock for SQLite, an advisory lock for PostgreSQL), so workers and jobs that
start together migrate once.

Delivery is at least once: an event and its deliveries are written in one transaction; a
deliverer *claims* a due delivery with a lease (a conditional UPDATE, so two deliverers
never send it at once), sends it, then records the outcome. A deliverer killed between
sending and recording leaves the lease to expire, and the delivery is sent again: the
receiver de-duplicates by event id. Times are seconds since the epoch (UTC).
"""

from __future__ import annotations

import fcntl
import secrets
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

import orjson
from alembic import command
from alembic.config import Config
from sqlalchemy import (
    Column,
    Engine,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    and_,
    create_engine,
    delete,
    event,
    func,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.sql.dml import Insert

from model.alerts import Rule
from service.alerts.signing import SecretBox
from service.settings import AlertsSettings, StoreSettings
from service.store import state_directory

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
ALL_EVENTS = "*"
# PostgreSQL advisory lock id of the schema migration ("pokewatch alerts").
MIGRATION_LOCK_ID = 0x706F6B65_77617463

METADATA = MetaData()
watch_items = Table(
    "watch_items",
    METADATA,
    Column("key_id", String(12), primary_key=True),
    Column("item_id", String(128), primary_key=True),
    Column("rules", Text, nullable=False),  # JSON: [Rule, ...]
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
)
webhooks = Table(
    "webhooks",
    METADATA,
    Column("id", String(32), primary_key=True),
    Column("key_id", String(12), nullable=False, index=True),
    Column("url", String(2048), nullable=False),
    Column("events", Text, nullable=False),  # JSON: rule kinds, or ["*"]
    Column("secret", Text, nullable=False),  # encrypted (service.alerts.signing)
    Column("created_at", Float, nullable=False),
)
events = Table(
    "events",
    METADATA,
    Column("id", String(40), primary_key=True),
    Column("key_id", String(12), nullable=False),
    Column("type", String(64), nullable=False),
    Column("item_id", String(128), nullable=True),
    Column("day", String(10), nullable=True),
    Column("body", Text, nullable=False),  # the JSON every attempt sends, byte for byte
    Column("created_at", Float, nullable=False),
)
deliveries = Table(
    "deliveries",
    METADATA,
    Column("id", String(32), primary_key=True),
    Column("event_id", String(40), ForeignKey("events.id", ondelete="CASCADE"), nullable=False),
    Column(
        "webhook_id",
        String(32),
        ForeignKey("webhooks.id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    Column("status", String(16), nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("next_attempt_at", Float, nullable=True),
    Column("lease_until", Float, nullable=True),
    Column("last_status_code", Integer, nullable=True),
    Column("last_error", Text, nullable=True),
    Column("created_at", Float, nullable=False),
    Column("delivered_at", Float, nullable=True),
    UniqueConstraint("event_id", "webhook_id", name="uq_deliveries_event_webhook"),
    Index("ix_deliveries_due", "status", "next_attempt_at"),
)
attempts = Table(
    "delivery_attempts",
    METADATA,
    Column(
        "delivery_id",
        String(32),
        ForeignKey("deliveries.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("number", Integer, primary_key=True),
    Column("started_at", Float, nullable=False),
    Column("duration_ms", Float, nullable=False),
    Column("status_code", Integer, nullable=True),
    Column("error", Text, nullable=True),
    Column("response", Text, nullable=True),  # the start of the receiver's answer
)


class DeliveryStatus(StrEnum):
    PENDING = "pending"
    DELIVERED = "delivered"
    DEAD = "dead"  # dead-lettered after the last attempt, or refused for good


@dataclass(frozen=True)
class WatchItem:
    key_id: str
    item_id: str
    rules: list[Rule]
    created_at: float
    updated_at: float


@dataclass(frozen=True)
class Webhook:
    id: str
    key_id: str
    url: str
    events: list[str]
    secret: str  # encrypted
    created_at: float

    def wants(self, kind: str) -> bool:
        return ALL_EVENTS in self.events or kind in self.events


@dataclass(frozen=True)
class NewEvent:
    id: str
    key_id: str
    type: str
    kind: str  # the rule kind (webhooks subscribe to kinds), or the event type
    item_id: str | None
    day: str | None
    body: bytes


@dataclass(frozen=True)
class DueDelivery:
    id: str
    event_id: str
    attempts: int  # made so far
    webhook: Webhook
    body: bytes


@dataclass(frozen=True)
class Attempt:
    number: int
    started_at: float
    duration_ms: float
    status_code: int | None
    error: str | None
    response: str | None


@dataclass(frozen=True)
class DeliveryLog:
    id: str
    event_id: str
    event_type: str
    item_id: str | None
    day: str | None
    status: DeliveryStatus
    attempts: list[Attempt]
    next_attempt_at: float | None
    created_at: float
    delivered_at: float | None


def database_url(settings: AlertsSettings, store: StoreSettings) -> str:
    if settings.database_url:
        return settings.database_url
    return f"sqlite:///{state_directory(store) / 'alerts.db'}"


def open_alerts(settings: AlertsSettings, store: StoreSettings) -> tuple[AlertStore, SecretBox]:
    """The alerts database, migrated, and the key that seals its webhook secrets: beside an
    SQLite file, else `POKEWATCH_ALERTS_KEY` (a database server has no directory to share)."""
    url = make_url(database_url(settings, store))
    file = url.database if url.get_backend_name() == "sqlite" else None
    beside = Path(file).parent if file and file != ":memory:" else None
    box = SecretBox.from_environment(beside)
    return AlertStore.open(url.render_as_string(hide_password=False)), box


def new_id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(12)}"


def _dumps(value: Any) -> str:
    return orjson.dumps(value).decode()


def _insert_ignoring_duplicates(connection: Connection, table: Table) -> Insert:
    """INSERT ... ON CONFLICT DO NOTHING in the connection's dialect."""
    if connection.dialect.name == "postgresql":
        return postgresql.insert(table).on_conflict_do_nothing()
    return sqlite.insert(table).on_conflict_do_nothing()


class AlertStore:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    @classmethod
    def open(cls, url: str) -> AlertStore:
        """The store at `url`, its schema upgraded to the newest revision."""
        parsed = make_url(url)
        if parsed.get_backend_name() == "sqlite":
            if parsed.database and parsed.database != ":memory:":
                Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
            engine = create_engine(url, connect_args={"timeout": 30})
            event.listen(engine, "connect", _sqlite_pragmas)
        else:
            engine = create_engine(url, pool_pre_ping=True, pool_size=5, max_overflow=5)
        store = cls(engine)
        store.migrate()
        return store

    def close(self) -> None:
        self.engine.dispose()

    def migrate(self) -> None:
        with self._migration_lock(), self.engine.begin() as connection:
            if connection.dialect.name == "postgresql":
                connection.execute(
                    text("SELECT pg_advisory_xact_lock(:id)"), {"id": MIGRATION_LOCK_ID}
                )
            config = Config()
            config.set_main_option("script_location", str(MIGRATIONS))
            config.attributes["connection"] = connection
            command.upgrade(config, "head")

    @contextmanager
    def _migration_lock(self) -> Iterator[None]:
        database = self.engine.url.database
        if self.engine.dialect.name != "sqlite" or not database or database == ":memory:":
            yield
            return
        with Path(f"{database}.migrate-lock").open("a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            yield

    # --- watchlists -------------------------------------------------------------------

    def watch(self, key_id: str, items: Sequence[tuple[str, list[Rule]]]) -> list[WatchItem]:
        """Add items to the key's watchlist, or replace the rules of items already on it."""
        now = time.time()
        with self.engine.begin() as connection:
            for item_id, rules in items:
                encoded = _dumps([rule.model_dump(exclude_none=True) for rule in rules])
                changed = connection.execute(
                    update(watch_items)
                    .where(watch_items.c.key_id == key_id, watch_items.c.item_id == item_id)
                    .values(rules=encoded, updated_at=now)
                ).rowcount
                if not changed:
                    connection.execute(
                        watch_items.insert().values(
                            key_id=key_id,
                            item_id=item_id,
                            rules=encoded,
                            created_at=now,
                            updated_at=now,
                        )
                    )
        wanted = {item_id for item_id, _ in items}
        return [item for item in self.watchlist(key_id) if item.item_id in wanted]

    def watchlist(self, key_id: str | None = None) -> list[WatchItem]:
        """One key's watched items (None: every key's), oldest first."""
        query = select(watch_items).order_by(watch_items.c.created_at, watch_items.c.item_id)
        if key_id is not None:
            query = query.where(watch_items.c.key_id == key_id)
        with self.engine.connect() as connection:
            rows = connection.execute(query).all()
        return [
            WatchItem(
                row.key_id,
                row.item_id,
                [Rule.model_validate(rule) for rule in orjson.loads(row.rules)],
                row.created_at,
                row.updated_at,
            )
            for row in rows
        ]

    def watched_count(self, key_id: str) -> int:
        query = select(func.count()).where(watch_items.c.key_id == key_id)
        with self.engine.connect() as connection:
            return int(connection.execute(query).scalar_one())

    def unwatch(self, key_id: str, item_id: str) -> bool:
        with self.engine.begin() as connection:
            removed = connection.execute(
                delete(watch_items).where(
                    watch_items.c.key_id == key_id, watch_items.c.item_id == item_id
                )
            ).rowcount
        return bool(removed)

    # --- webhooks ---------------------------------------------------------------------

    def add_webhook(self, key_id: str, url: str, kinds: list[str], secret: str) -> Webhook:
        hook = Webhook(new_id("wh"), key_id, url, kinds, secret, time.time())
        with self.engine.begin() as connection:
            connection.execute(
                webhooks.insert().values(
                    id=hook.id,
                    key_id=key_id,
                    url=url,
                    events=_dumps(kinds),
                    secret=secret,
                    created_at=hook.created_at,
                )
            )
        return hook

    def webhooks(self, key_id: str) -> list[Webhook]:
        query = (
            select(webhooks)
            .where(webhooks.c.key_id == key_id)
            .order_by(webhooks.c.created_at, webhooks.c.id)
        )
        with self.engine.connect() as connection:
            return [_webhook(row) for row in connection.execute(query).all()]

    def webhook(self, webhook_id: str, key_id: str | None = None) -> Webhook | None:
        """The webhook, if it exists (and belongs to `key_id`, when one is given)."""
        query = select(webhooks).where(webhooks.c.id == webhook_id)
        if key_id is not None:
            query = query.where(webhooks.c.key_id == key_id)
        with self.engine.connect() as connection:
            row = connection.execute(query).first()
        return None if row is None else _webhook(row)

    def delete_webhook(self, key_id: str, webhook_id: str) -> bool:
        """Remove a webhook with its deliveries (pending ones are not sent)."""
        with self.engine.begin() as connection:
            connection.execute(delete(deliveries).where(deliveries.c.webhook_id == webhook_id))
            removed = connection.execute(
                delete(webhooks).where(webhooks.c.id == webhook_id, webhooks.c.key_id == key_id)
            ).rowcount
        return bool(removed)

    # --- events and deliveries --------------------------------------------------------

    def record(self, new_events: Sequence[NewEvent], only_webhook: str | None = None) -> int:
        """Write events (an id already recorded is skipped) and, in the same transaction,
        one pending delivery per webhook of the event's key that subscribes to its kind
        (`only_webhook`: to that webhook alone). Returns how many deliveries were queued."""
        now = time.time()
        queued = 0
        with self.engine.begin() as connection:
            hooks: dict[str, list[Webhook]] = {}
            for new in new_events:
                inserted = connection.execute(
                    _insert_ignoring_duplicates(connection, events)
                    .values(
                        id=new.id,
                        key_id=new.key_id,
                        type=new.type,
                        item_id=new.item_id,
                        day=new.day,
                        body=new.body.decode(),
                        created_at=now,
                    )
                    .returning(events.c.id)
                ).first()
                if inserted is None:
                    continue
                if new.key_id not in hooks:
                    rows = connection.execute(
                        select(webhooks).where(webhooks.c.key_id == new.key_id)
                    ).all()
                    hooks[new.key_id] = [_webhook(row) for row in rows]
                for hook in hooks[new.key_id]:
                    if (only_webhook is None and hook.wants(new.kind)) or hook.id == only_webhook:
                        connection.execute(
                            deliveries.insert().values(
                                id=new_id("dlv"),
                                event_id=new.id,
                                webhook_id=hook.id,
                                status=DeliveryStatus.PENDING.value,
                                attempts=0,
                                next_attempt_at=now,
                                created_at=now,
                            )
                        )
                        queued += 1
        return queued

    def due(self, now: float, limit: int = 100) -> list[DueDelivery]:
        """Pending deliveries whose next attempt is due and that nobody holds, oldest first."""
        query = (
            select(
                deliveries.c.id,
                deliveries.c.event_id,
                deliveries.c.attempts,
                events.c.body,
                webhooks.c.id.label("webhook_id"),
                webhooks.c.key_id,
                webhooks.c.url,
                webhooks.c.events,
                webhooks.c.secret,
                webhooks.c.created_at,
            )
            .select_from(deliveries)
            .join(events, events.c.id == deliveries.c.event_id)
            .join(webhooks, webhooks.c.id == deliveries.c.webhook_id)
            .where(
                deliveries.c.status == DeliveryStatus.PENDING.value,
                deliveries.c.next_attempt_at <= now,
                or_(deliveries.c.lease_until.is_(None), deliveries.c.lease_until < now),
            )
            .order_by(deliveries.c.next_attempt_at, deliveries.c.created_at)
            .limit(limit)
        )
        with self.engine.connect() as connection:
            rows = connection.execute(query).all()
        return [
            DueDelivery(
                row.id,
                row.event_id,
                row.attempts,
                Webhook(
                    row.webhook_id,
                    row.key_id,
                    row.url,
                    orjson.loads(row.events),
                    row.secret,
                    row.created_at,
                ),
                row.body.encode(),
            )
            for row in rows
        ]

    def claim(self, delivery_id: str, now: float, lease_seconds: float) -> bool:
        """Hold a due delivery for `lease_seconds` (False: another deliverer has it)."""
        with self.engine.begin() as connection:
            claimed = connection.execute(
                update(deliveries)
                .where(
                    deliveries.c.id == delivery_id,
                    deliveries.c.status == DeliveryStatus.PENDING.value,
                    or_(deliveries.c.lease_until.is_(None), deliveries.c.lease_until < now),
                )
                .values(lease_until=now + lease_seconds)
            ).rowcount
        return bool(claimed)

    def finish_attempt(
        self,
        delivery_id: str,
        attempt: Attempt,
        status: DeliveryStatus,
        next_attempt_at: float | None,
    ) -> None:
        """Log an attempt and the delivery's new state, and release its lease."""
        with self.engine.begin() as connection:
            connection.execute(
                _insert_ignoring_duplicates(connection, attempts).values(
                    delivery_id=delivery_id,
                    number=attempt.number,
                    started_at=attempt.started_at,
                    duration_ms=attempt.duration_ms,
                    status_code=attempt.status_code,
                    error=attempt.error,
                    response=attempt.response,
                )
            )
            connection.execute(
                update(deliveries)
                .where(deliveries.c.id == delivery_id)
                .values(
                    status=status.value,
                    attempts=attempt.number,
                    next_attempt_at=next_attempt_at,
                    lease_until=None,
                    last_status_code=attempt.status_code,
                    last_error=attempt.error,
                    delivered_at=time.time() if status is DeliveryStatus.DELIVERED else None,
                )
            )

    def next_pending(self) -> float | None:
        """When the earliest pending delivery may be tried (its next attempt, or the end
        of the lease a deliverer holds it by); None when nothing is pending."""
        query = select(
            func.min(func.coalesce(deliveries.c.lease_until, deliveries.c.next_attempt_at))
        ).where(deliveries.c.status == DeliveryStatus.PENDING.value)
        with self.engine.connect() as connection:
            value = connection.execute(query).scalar_one_or_none()
        return None if value is None else float(value)

    def pending_count(self) -> int:
        query = select(func.count()).where(deliveries.c.status == DeliveryStatus.PENDING.value)
        with self.engine.connect() as connection:
            return int(connection.execute(query).scalar_one())

    def deliveries(
        self, webhook_id: str, status: DeliveryStatus | None = None, limit: int = 50
    ) -> list[DeliveryLog]:
        """A webhook's deliveries, newest first, each with its attempts."""
        query = (
            select(deliveries, events.c.type, events.c.item_id, events.c.day)
            .join(events, events.c.id == deliveries.c.event_id)
            .where(deliveries.c.webhook_id == webhook_id)
            .order_by(deliveries.c.created_at.desc(), deliveries.c.id)
            .limit(limit)
        )
        if status is not None:
            query = query.where(deliveries.c.status == status.value)
        with self.engine.connect() as connection:
            rows = connection.execute(query).all()
            tried: dict[str, list[Attempt]] = {row.id: [] for row in rows}
            if tried:
                for attempt in connection.execute(
                    select(attempts)
                    .where(attempts.c.delivery_id.in_(list(tried)))
                    .order_by(attempts.c.number)
                ).all():
                    tried[attempt.delivery_id].append(
                        Attempt(
                            attempt.number,
                            attempt.started_at,
                            attempt.duration_ms,
                            attempt.status_code,
                            attempt.error,
                            attempt.response,
                        )
                    )
        return [
            DeliveryLog(
                row.id,
                row.event_id,
                row.type,
                row.item_id,
                row.day,
                DeliveryStatus(row.status),
                tried[row.id],
                row.next_attempt_at,
                row.created_at,
                row.delivered_at,
            )
            for row in rows
        ]

    def redeliver(self, webhook_id: str, delivery_id: str) -> bool:
        """Queue a delivery of the webhook again, now (False: no such delivery). Its
        attempts count on from where they stopped; the log keeps the earlier ones."""
        with self.engine.begin() as connection:
            queued = connection.execute(
                update(deliveries)
                .where(and_(deliveries.c.id == delivery_id, deliveries.c.webhook_id == webhook_id))
                .values(
                    status=DeliveryStatus.PENDING.value,
                    next_attempt_at=time.time(),
                    lease_until=None,
                    delivered_at=None,
                )
            ).rowcount
        return bool(queued)


def _webhook(row: Any) -> Webhook:
    return Webhook(
        row.id, row.key_id, row.url, orjson.loads(row.events), row.secret, row.created_at
    )


def _sqlite_pragmas(connection: Any, _record: Any) -> None:
    # WAL: readers (the service) never wait for the writer (a job); foreign keys for the
    # cascades; a busy writer is waited for instead of failing at once.
    cursor = connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


__all__ = [
    "ALL_EVENTS",
    "METADATA",
    "AlertStore",
    "Attempt",
    "DeliveryLog",
    "DeliveryStatus",
    "DueDelivery",
    "NewEvent",
    "WatchItem",
    "Webhook",
    "database_url",
    "new_id",
    "open_alerts",
]
