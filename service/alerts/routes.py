"""`/v1/watchlist` and `/v1/webhooks`: each API key's watched items and webhooks.

Everything here belongs to the key that made it: a key sees, changes and deletes only its
own items, webhooks and deliveries, and another key's webhook id answers 404 as if it did
not exist. Requests without a key (auth_mode warn or off) get 401. The database calls are
blocking (SQLAlchemy), so they run in Starlette's thread pool; the store is opened on first
use in each worker, and a database that cannot be opened or reached answers 503.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any, TypeVar

import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlalchemy.exc import SQLAlchemyError
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from model.alerts import MAX_RULES_PER_ITEM, Rule, RuleKind, default_rules
from model.catalog import MAX_ID_LENGTH
from model.predictor import invalid, unknown_card
from service.alerts.signing import SecretBox, SecretsError, new_secret
from service.alerts.store import (
    ALL_EVENTS,
    AlertStore,
    DeliveryLog,
    DeliveryStatus,
    WatchItem,
    Webhook,
    open_alerts,
)
from service.alerts.targets import TargetError, check
from service.errors import ApiError
from service.serving import Serving
from service.settings import ServiceSettings

logger = logging.getLogger("pokewatch.alerts")
T = TypeVar("T")
JSON = "application/json"
MAX_ITEMS_PER_REQUEST = 100
MAX_DELIVERIES_PAGE = 200
# Resolving a webhook's host when it is made: a name server that does not answer is an error.
RESOLVE_TIMEOUT_SECONDS = 5.0


class WatchEntry(BaseModel):
    model_config = ConfigDict(extra="forbid")

    card_id: str = Field(min_length=1, max_length=MAX_ID_LENGTH)
    # None: tell when the signal becomes BUY or SELL.
    rules: list[Rule] | None = Field(default=None, min_length=1, max_length=MAX_RULES_PER_ITEM)


class WatchRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    items: list[WatchEntry] = Field(min_length=1, max_length=MAX_ITEMS_PER_REQUEST)


class WebhookRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: str = Field(min_length=1)
    # None: every kind of alert.
    events: list[RuleKind] | None = Field(default=None, min_length=1)


def iso(seconds: float | None) -> str | None:
    if seconds is None:
        return None
    return datetime.fromtimestamp(seconds, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def watch_json(item: WatchItem, names: dict[str, str]) -> dict[str, Any]:
    return {
        "card_id": item.item_id,
        "name": names.get(item.item_id),
        "rules": [rule.model_dump(exclude_none=True) for rule in item.rules],
        "created": iso(item.created_at),
        "updated": iso(item.updated_at),
    }


def webhook_json(hook: Webhook) -> dict[str, Any]:
    return {
        "id": hook.id,
        "url": hook.url,
        "events": hook.events,
        "created": iso(hook.created_at),
    }


def delivery_json(log: DeliveryLog) -> dict[str, Any]:
    return {
        "id": log.id,
        "event_id": log.event_id,
        "event_type": log.event_type,
        "card_id": log.item_id,
        "date": log.day,
        "status": log.status.value,
        "created": iso(log.created_at),
        "delivered": iso(log.delivered_at),
        "next_attempt": iso(log.next_attempt_at) if log.status is DeliveryStatus.PENDING else None,
        "attempts": [
            {
                "number": attempt.number,
                "at": iso(attempt.started_at),
                "duration_ms": round(attempt.duration_ms, 1),
                "status_code": attempt.status_code,
                "error": attempt.error,
                "response": attempt.response,
            }
            for attempt in log.attempts
        ],
    }


def parsed(model: type[BaseModel], body: bytes) -> Any:
    """The request body as `model`; a clear 400 naming the first problem."""
    try:
        return model.model_validate_json(body)
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "body"
        raise invalid(f"{where}: {first['msg']}") from None


# A key's own data, changed by its writes: never kept by a cache.
NO_STORE = {"cache-control": "no-store"}


def json_response(content: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(content), status_code=status, media_type=JSON, headers=NO_STORE)


class AlertRoutes:
    def __init__(self, settings: ServiceSettings, serving: Callable[[], Serving]) -> None:
        self.settings = settings
        self.config = settings.alerts
        self.serving = serving
        self._opened: tuple[AlertStore, SecretBox] | None = None
        self._opening = threading.Lock()
        # One route per path, so a wrong method's 405 lists every method the path takes.
        self.routes = [
            Route(
                "/watchlist",
                by_method(GET=self.watchlist, POST=self.watch),
                methods=["GET", "POST"],
            ),
            Route("/watchlist/{card_id}", self.unwatch, methods=["DELETE"]),
            Route(
                "/webhooks",
                by_method(GET=self.webhooks, POST=self.add_webhook),
                methods=["GET", "POST"],
            ),
            Route(
                "/webhooks/{webhook_id}",
                by_method(GET=self.webhook, DELETE=self.delete_webhook),
                methods=["GET", "DELETE"],
            ),
            Route("/webhooks/{webhook_id}/deliveries", self.deliveries, methods=["GET"]),
            Route(
                "/webhooks/{webhook_id}/deliveries/{delivery_id}/redeliver",
                self.redeliver,
                methods=["POST"],
            ),
        ]

    def _open(self) -> tuple[AlertStore, SecretBox]:
        with self._opening:
            if self._opened is None:
                self._opened = open_alerts(self.config, self.settings.store)
            return self._opened

    async def _run(self, work: Callable[[AlertStore, SecretBox], T]) -> T:
        """`work` on the store in the thread pool; a database that cannot be opened or
        reached is a 503 naming the problem, never a 500."""

        def opened() -> T:
            store, box = self._open()
            return work(store, box)

        try:
            return await run_in_threadpool(opened)
        except (SQLAlchemyError, OSError, SecretsError) as error:
            logger.error("alerts storage unavailable: %s", error)
            raise ApiError(
                503, "alerts_unavailable", f"watchlists and webhooks are unavailable: {error}"
            ) from None

    # --- watchlist --------------------------------------------------------------------

    async def watchlist(self, request: Request) -> Response:
        _no_query(request)
        key_id = _key_id(request)
        items = await self._run(lambda store, _: store.watchlist(key_id))
        names = self._names([item.item_id for item in items])
        return json_response(
            {
                "items": [watch_json(item, names) for item in items],
                "total": len(items),
                "max_items": self.config.max_items_per_key,
            }
        )

    async def watch(self, request: Request) -> Response:
        _no_query(request)
        key_id = _key_id(request)
        wanted: WatchRequest = parsed(WatchRequest, await request.body())
        seen: set[str] = set()
        for index, entry in enumerate(wanted.items):
            if entry.card_id in seen:
                raise invalid(f"items.{index}.card_id: {entry.card_id!r} is given twice")
            seen.add(entry.card_id)
        answers = self.serving().current()
        positions = answers.predictor.table.position
        for entry in wanted.items:
            if entry.card_id not in positions:
                raise unknown_card(entry.card_id)
        limit = self.config.max_items_per_key

        def write(store: AlertStore, _: SecretBox) -> list[WatchItem]:
            watched = {item.item_id for item in store.watchlist(key_id)}
            adding = len(seen - watched)
            if len(watched) + adding > limit:
                raise ApiError(
                    409,
                    "watchlist_full",
                    f"items: the watchlist holds {len(watched)} items and {adding} more would "
                    f"pass its limit of {limit}",
                )
            return store.watch(
                key_id, [(entry.card_id, entry.rules or default_rules()) for entry in wanted.items]
            )

        written = await self._run(write)
        names = self._names([item.item_id for item in written])
        return json_response({"items": [watch_json(item, names) for item in written]})

    async def unwatch(self, request: Request) -> Response:
        _no_query(request)
        key_id = _key_id(request)
        card_id = request.path_params["card_id"]
        if not await self._run(lambda store, _: store.unwatch(key_id, card_id)):
            raise ApiError(404, "not_found", f"card_id: {card_id!r} is not on the watchlist")
        return Response(status_code=204, headers=NO_STORE)

    def _names(self, item_ids: list[str]) -> dict[str, str]:
        answers = self.serving().answers
        if answers is None:  # names are a courtesy: the list stands without them
            return {}
        table = answers.predictor.table
        return {
            item_id: str(table.names[table.position[item_id]])
            for item_id in item_ids
            if item_id in table.position
        }

    # --- webhooks ---------------------------------------------------------------------

    async def webhooks(self, request: Request) -> Response:
        _no_query(request)
        key_id = _key_id(request)
        hooks = await self._run(lambda store, _: store.webhooks(key_id))
        return json_response(
            {
                "webhooks": [webhook_json(hook) for hook in hooks],
                "max_webhooks": self.config.max_webhooks_per_key,
            }
        )

    async def add_webhook(self, request: Request) -> Response:
        _no_query(request)
        key_id = _key_id(request)
        wanted: WebhookRequest = parsed(WebhookRequest, await request.body())
        config = self.config
        try:
            await asyncio.wait_for(
                run_in_threadpool(check, wanted.url, config.require_https, config.allowed_networks),
                RESOLVE_TIMEOUT_SECONDS,
            )
        except TargetError as error:
            raise invalid(str(error)) from None
        except TimeoutError:
            raise invalid("url: its host did not resolve in time") from None
        kinds = (
            [ALL_EVENTS]
            if wanted.events is None
            else sorted({kind.value for kind in wanted.events})
        )
        secret = new_secret()

        def write(store: AlertStore, box: SecretBox) -> Webhook:
            if len(store.webhooks(key_id)) >= config.max_webhooks_per_key:
                raise ApiError(
                    409,
                    "too_many_webhooks",
                    f"this key has {config.max_webhooks_per_key} webhooks, the most it may "
                    "have; delete one first",
                )
            return store.add_webhook(key_id, wanted.url, kinds, box.seal(secret))

        hook = await self._run(write)
        # The only time the secret is shown.
        return json_response({**webhook_json(hook), "secret": secret}, status=201)

    async def webhook(self, request: Request) -> Response:
        _no_query(request)
        hook = await self._own_webhook(request)
        return json_response(webhook_json(hook))

    async def delete_webhook(self, request: Request) -> Response:
        _no_query(request)
        hook = await self._own_webhook(request)
        await self._run(lambda store, _: store.delete_webhook(hook.key_id, hook.id))
        return Response(status_code=204, headers=NO_STORE)

    async def deliveries(self, request: Request) -> Response:
        query = request.query_params
        for name in query:
            if name not in ("status", "limit"):
                raise invalid(f"{name}: unknown parameter; this route takes limit, status")
        status: DeliveryStatus | None = None
        if "status" in query:
            try:
                status = DeliveryStatus(query["status"])
            except ValueError:
                choices = ", ".join(state.value for state in DeliveryStatus)
                raise invalid(f"status: {query['status']!r} is not one of {choices}") from None
        limit_text = query.get("limit", "50")
        if not limit_text.isascii() or not limit_text.isdigit():
            raise invalid(f"limit: {limit_text!r} is not a whole number")
        limit = int(limit_text)
        if not 1 <= limit <= MAX_DELIVERIES_PAGE:
            raise invalid(f"limit: {limit} is not from 1 to {MAX_DELIVERIES_PAGE}")
        hook = await self._own_webhook(request)
        logs = await self._run(lambda store, _: store.deliveries(hook.id, status, limit))
        return json_response(
            {"webhook_id": hook.id, "deliveries": [delivery_json(log) for log in logs]}
        )

    async def redeliver(self, request: Request) -> Response:
        _no_query(request)
        hook = await self._own_webhook(request)
        delivery_id = request.path_params["delivery_id"]
        if not await self._run(lambda store, _: store.redeliver(hook.id, delivery_id)):
            raise ApiError(404, "not_found", f"delivery_id: no delivery {delivery_id!r}")
        return json_response(
            {
                "id": delivery_id,
                "status": DeliveryStatus.PENDING.value,
                "detail": "queued: the next alerts run delivers it",
            },
            status=202,
        )

    async def _own_webhook(self, request: Request) -> Webhook:
        key_id = _key_id(request)
        webhook_id = request.path_params["webhook_id"]
        hook = await self._run(lambda store, _: store.webhook(webhook_id, key_id))
        if hook is None:
            raise ApiError(404, "not_found", f"webhook_id: no webhook {webhook_id!r}")
        return hook


Endpoint = Callable[[Request], Awaitable[Response]]


def by_method(**endpoints: Endpoint) -> Endpoint:
    """One endpoint answering each method with its own (HEAD as GET)."""

    async def dispatch(request: Request) -> Response:
        method = "GET" if request.method == "HEAD" else request.method
        return await endpoints[method](request)

    return dispatch


def _key_id(request: Request) -> str:
    key_id: str | None = request.scope.get("state", {}).get("key_id")
    if key_id is None:
        raise ApiError(
            401,
            "unauthorized",
            "watchlists and webhooks belong to an API key: send one in X-API-Key",
        )
    return key_id


def _no_query(request: Request) -> None:
    for name in request.query_params:
        raise invalid(f"{name}: unknown parameter; this route takes none")


__all__ = ["AlertRoutes", "WatchRequest", "WebhookRequest"]
