"""The REST API v1: reads with GET, search, price history, the signal screener, portfolio
valuation and day exports, with HTTP caching (docs/api.md).

A Starlette app, mounted on the BentoML service class at `/v1` (`bentoml.asgi_app`): the
service's ASGI middleware wraps it like every other route, so API keys, scopes, rate
limits, request IDs, security headers and the error body are the same (tests/service
check it). It answers from the worker's current `Answers` (and, for a cursor made on an
earlier table, that table's catalog).

Caching: every GET answer carries a strong `ETag` (a hash of the table version, which names
the model and the data day, of staleness, of the route and query and of the media type)
and `Cache-Control: private, max-age=<seconds until the next scheduled job run>`; a
matching `If-None-Match` gets 304 without the answer being computed. While a scheduled run
may still publish (the table was loaded before the last scheduled run), `max-age` is short.
Errors stay `no-store` (the edge middleware).
"""

from __future__ import annotations

import csv
import hashlib
import io
import math
from collections.abc import Awaitable, Callable, Iterable
from datetime import datetime
from typing import Any

import orjson
from croniter import croniter
from starlette.applications import Starlette
from starlette.datastructures import QueryParams
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from model.catalog import (
    HISTORY_COLUMNS,
    MAX_PORTFOLIO_LINES,
    CardQuery,
    Catalog,
    Cursor,
    Page,
    Sort,
    SortKey,
    export_rows,
    parse_holdings,
)
from model.lookup import LATEST_DAY
from model.predictor import QueryError, invalid, parse_day
from model.signals import Signal
from service.alerts.routes import AlertRoutes
from service.answers import Answers, Body, Clock, query_error_body, utc_now
from service.errors import ApiError
from service.serving import Serving
from service.settings import ScheduleSettings, ServiceSettings

JSON = "application/json"
CSV = "text/csv"
PARQUET = "application/vnd.apache.parquet"
EXPORT_TYPES = {"json": JSON, "csv": CSV, "parquet": PARQUET}
HISTORY_DROPS = frozenset({"price_date", "history_days"})
DEFAULT_LIMIT = 50
MAX_TEXT = 200
# While a scheduled run may still publish: how long a client may keep an answer.
PENDING_MAX_AGE = 60
VARY = "Accept, Authorization, X-API-Key"


class CachePolicy:
    """`max-age` of v1 answers: until the next scheduled job run (daily publish or retrain),
    short while a run that already started may still publish."""

    def __init__(self, schedule: ScheduleSettings, clock: Clock = utc_now) -> None:
        self.expressions = (schedule.daily, schedule.retrain)
        self.clock = clock
        self._window: tuple[datetime, datetime] | None = None

    def window(self, now: datetime) -> tuple[datetime, datetime]:
        """The last scheduled run at or before `now` and the next one after it."""
        if self._window is None or not self._window[0] <= now < self._window[1]:
            previous = max(croniter(cron, now).get_prev(datetime) for cron in self.expressions)
            following = min(croniter(cron, now).get_next(datetime) for cron in self.expressions)
            self._window = (previous, following)
        return self._window

    def max_age(self, loaded_at: datetime | None) -> int:
        now = self.clock()
        previous, following = self.window(now)
        until_next = max(0, math.floor((following - now).total_seconds()))
        if loaded_at is None or loaded_at < previous:
            return min(PENDING_MAX_AGE, until_next)
        return until_next


def best_match(accept: str | None, offered: Iterable[str]) -> str | None:
    """The offered media type the `Accept` header prefers (None: none is acceptable).
    No header, or an empty one, accepts anything."""
    choices = list(offered)
    if not accept or not accept.strip():
        return choices[0]
    ranges: list[tuple[str, float]] = []
    for part in accept.split(","):
        media, *parameters = (piece.strip() for piece in part.split(";"))
        quality = 1.0
        for parameter in parameters:
            name, _, value = parameter.partition("=")
            if name.strip().lower() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        if media:
            ranges.append((media.lower(), quality))
    best: tuple[float, int, str] | None = None
    for order, choice in enumerate(choices):
        kind = choice.split("/")[0]
        qualities = [quality for media, quality in ranges if media in (choice, f"{kind}/*", "*/*")]
        quality = max(qualities, default=0.0)
        if quality > 0 and (best is None or (quality, -order) > (best[0], -best[1])):
            best = (quality, order, choice)
    return None if best is None else best[2]


class Params:
    """A request's query parameters, each checked and named in errors; unknown and
    repeated ones are errors too (a typo never silently widens a search)."""

    def __init__(self, query: QueryParams, allowed: Iterable[str]) -> None:
        self.query = query
        allowed = set(allowed)
        for name in query:
            if name not in allowed:
                takes = ", ".join(sorted(allowed)) or "none"
                raise invalid(f"{name}: unknown parameter; this route takes {takes}")
            if len(query.getlist(name)) > 1:
                raise invalid(f"{name}: given more than once")

    def text(self, name: str) -> str | None:
        value = self.query.get(name)
        if value is None or value == "":
            return None
        if len(value) > MAX_TEXT:
            raise invalid(f"{name}: at most {MAX_TEXT} characters")
        return value

    def integer(self, name: str, default: int, low: int, high: int) -> int:
        value = self.query.get(name)
        if value is None:
            return default
        if not value.isascii() or not value.isdigit() or not low <= int(value) <= high:
            raise invalid(f"{name}: {value!r} is not a whole number from {low} to {high}")
        return int(value)

    def price(self, name: str) -> float | None:
        value = self.query.get(name)
        if value is None:
            return None
        try:
            number = float(value)
        except ValueError:
            number = math.nan
        if not math.isfinite(number) or number < 0 or not value.strip():
            raise invalid(f"{name}: {value!r} is not a price (a number of at least 0)")
        return number

    def signal(self, name: str, allowed: Iterable[Signal]) -> Signal | None:
        value = self.query.get(name)
        if value is None:
            return None
        choices = list(allowed)
        for signal in choices:
            if value.upper() == signal.value:
                return signal
        raise invalid(
            f"{name}: {value!r} is not one of {', '.join(choice.value for choice in choices)}"
        )

    def day(self, name: str) -> int | None:
        value = self.query.get(name)
        return None if value is None else parse_day(value, name)

    def cursor(self) -> Cursor | None:
        value = self.query.get("cursor")
        return None if value is None else Cursor.decode(value)


class V1:
    """The v1 routes over the answers `serving()` returns (the worker's)."""

    def __init__(self, settings: ServiceSettings, serving: Callable[[], Serving]) -> None:
        self.settings = settings
        self.serving = serving
        self.cache_policy = CachePolicy(settings.schedule)
        routes = [
            Route("/cards", self.cards, methods=["GET"]),
            Route("/cards/{card_id}", self.card, methods=["GET"]),
            Route("/cards/{card_id}/fair-price", self.fair_price, methods=["GET"]),
            Route("/cards/{card_id}/history", self.history, methods=["GET"]),
            Route("/sets", self.sets, methods=["GET"]),
            Route("/signals", self.signals, methods=["GET"]),
            Route("/portfolio/valuate", self.valuate, methods=["POST"]),
            Route("/export/{day}.{format}", self.export, methods=["GET"]),
            *AlertRoutes(settings, self.serving).routes,
        ]
        self.app = Starlette(
            routes=routes,
            exception_handlers={
                QueryError: self._query_error,
                ApiError: self._api_error,
                HTTPException: self._http_error,
            },
        )

    # --- routes -----------------------------------------------------------------------

    async def cards(self, request: Request) -> Response:
        params = Params(
            request.query_params, ("q", "set", "signal", "min_price", "sort", "limit", "cursor")
        )
        query = CardQuery(
            text=params.text("q"),
            set_code=params.text("set"),
            signal=params.signal("signal", Signal),
            min_price=params.price("min_price"),
            sort=Sort.parse(params.text("sort") or SortKey.NAME.value),
        )
        return await self._page(request, params, query, {})

    async def signals(self, request: Request) -> Response:
        params = Params(request.query_params, ("signal", "set", "min_price", "limit", "cursor"))
        signal = params.signal("signal", (Signal.BUY, Signal.SELL)) or Signal.BUY
        query = CardQuery(
            set_code=params.text("set"),
            signal=signal,
            min_price=params.price("min_price"),
            sort=Sort(SortKey.STRENGTH, descending=True),
        )
        answers = self.serving().current()
        return await self._page(
            request,
            params,
            query,
            {"signal": signal.value, "backtest": answers.catalog.backtest(signal)},
        )

    async def card(self, request: Request) -> Response:
        Params(request.query_params, ())
        answers = self.serving().current()
        card_id = request.path_params["card_id"]

        async def body(media: str) -> Body:
            return 200, orjson.dumps(answers.catalog.detail(card_id, answers.stale()))

        return await self._cached(request, answers, (JSON,), body)

    async def fair_price(self, request: Request) -> Response:
        params = Params(request.query_params, ("date",))
        answers = self.serving().current()
        card_id = request.path_params["card_id"]
        on = params.query.get("date")

        async def body(media: str) -> Body:
            return await answers.fair_price(card_id, on)

        return await self._cached(request, answers, (JSON,), body)

    async def history(self, request: Request) -> Response:
        params = Params(request.query_params, ("from", "to"))
        start, end = params.day("from"), params.day("to")
        answers = self.serving().current()
        card_id = request.path_params["card_id"]

        async def body(media: str) -> Body:
            rows = answers.predictor.history(card_id, start, end)
            records = []
            for index in range(len(rows.rows)):
                fields = rows.fields(index)
                records.append({"date": fields["price_date"], **_without(fields, HISTORY_DROPS)})
            if media == CSV:
                return 200, _csv(records, HISTORY_COLUMNS)
            position = answers.predictor.position(card_id)
            return 200, orjson.dumps(
                {
                    "card_id": card_id,
                    "name": answers.predictor.table.names[position],
                    "from": params.query.get("from"),
                    "to": params.query.get("to"),
                    "data_as_of": answers.catalog.data_as_of,
                    "stale": answers.stale(),
                    "model_version": answers.model_version,
                    "rows": records,
                }
            )

        return await self._cached(request, answers, (JSON, CSV), body)

    async def sets(self, request: Request) -> Response:
        Params(request.query_params, ())
        answers = self.serving().current()

        async def body(media: str) -> Body:
            return 200, orjson.dumps(
                {
                    "data_as_of": answers.catalog.data_as_of,
                    "stale": answers.stale(),
                    "model_version": answers.model_version,
                    "sets": answers.catalog.sets(),
                }
            )

        return await self._cached(request, answers, (JSON,), body)

    async def valuate(self, request: Request) -> Response:
        Params(request.query_params, ())
        _acceptable(request, (JSON,))
        try:
            lines = orjson.loads(await request.body())
        except orjson.JSONDecodeError as error:
            raise invalid(f"body: not JSON ({error})") from None
        if isinstance(lines, list) and len(lines) > MAX_PORTFOLIO_LINES:
            raise ApiError(
                413,
                "portfolio_too_large",
                f"body: {len(lines)} lines, at most {MAX_PORTFOLIO_LINES} allowed",
            )
        holdings = parse_holdings(lines)
        answers = self.serving().current()
        valuation = answers.catalog.valuate(holdings)
        meta = {
            "data_as_of": answers.catalog.data_as_of,
            "stale": answers.stale(),
            "model_version": answers.model_version,
        }
        return Response(orjson.dumps({**valuation, **meta}), media_type=JSON)

    async def export(self, request: Request) -> Response:
        Params(request.query_params, ())
        answers = self.serving().current()
        day_text, extension = request.path_params["day"], request.path_params["format"]
        exported = EXPORT_TYPES.get(extension)
        if exported is None:
            formats = ", ".join(EXPORT_TYPES)
            raise ApiError(404, "not_found", f"format: {extension!r} is not one of {formats}")
        day = LATEST_DAY if day_text == "latest" else parse_day(day_text, "day")

        async def body(media: str) -> Body:
            frame = export_rows(answers.predictor, day)
            if media == PARQUET:
                buffer = io.BytesIO()
                frame.to_parquet(buffer, index=False)
                return 200, buffer.getvalue()
            records: list[dict[str, Any]] = (
                frame.astype(object).where(frame.notna(), None).to_dict(orient="records")  # type: ignore[assignment]
            )
            if media == CSV:
                return 200, _csv(records, tuple(frame.columns))
            return 200, orjson.dumps(
                {
                    "date": day_text,
                    "data_as_of": answers.catalog.data_as_of,
                    "stale": answers.stale(),
                    "model_version": answers.model_version,
                    "rows": records,
                }
            )

        filename = f"pokewatch-{day_text}.{extension}"
        return await self._cached(
            request,
            answers,
            (exported,),
            body,
            {"content-disposition": f'attachment; filename="{filename}"'},
        )

    # --- shared -----------------------------------------------------------------------

    async def _page(
        self, request: Request, params: Params, query: CardQuery, extra: dict[str, Any]
    ) -> Response:
        limit = params.integer("limit", DEFAULT_LIMIT, 1, self.settings.service.max_page_size)
        cursor = params.cursor()
        answers = self.serving().current()
        catalog: Catalog | None = answers.catalog
        if cursor is not None and cursor.version != answers.version:
            catalog = await self.serving().catalog(cursor.version)
            if catalog is None:
                raise ApiError(
                    410,
                    "cursor_expired",
                    "cursor: its table is no longer served; start again without a cursor",
                )
        assert catalog is not None
        pinned = catalog

        async def body(media: str) -> Body:
            page = pinned.search(query, limit, cursor)
            meta = {
                **extra,
                "data_as_of": pinned.data_as_of,
                "stale": answers.stale(),
                "model_version": pinned.model_version,
                "total": page.total,
                "limit": limit,
                "next": _next_link(request, page),
                "next_cursor": None if page.next is None else page.next.encode(),
            }
            return 200, b'{"items":[' + b",".join(page.entries) + b"]," + orjson.dumps(meta)[1:]

        return await self._cached(request, answers, (JSON,), body, version=pinned.version)

    async def _cached(
        self,
        request: Request,
        answers: Answers,
        offered: tuple[str, ...],
        body: Callable[[str], Awaitable[Body]],
        headers: dict[str, str] | None = None,
        version: str | None = None,
    ) -> Response:
        """The answer in the media type `Accept` prefers among `offered`, with its
        validators, or 304 when the client's copy is current; an error answer without
        them."""
        media = _acceptable(request, offered)
        tag = entity_tag(version or answers.version, answers.stale(), request, media)
        max_age = self.cache_policy.max_age(self.serving().loaded_at)
        caching = {"etag": tag, "cache-control": f"private, max-age={max_age}", "vary": VARY}
        if _matches(request.headers.get("if-none-match"), tag):
            return Response(status_code=304, headers=caching)
        status, content = await body(media)
        if status != 200:
            return Response(content, status_code=status, media_type=JSON)
        media_type = f"{media}; charset=utf-8" if media == CSV else media
        return Response(content, media_type=media_type, headers={**caching, **(headers or {})})

    async def _query_error(self, request: Request, error: Exception) -> Response:
        assert isinstance(error, QueryError)
        status, content = query_error_body(error)
        return Response(content, status_code=status, media_type=JSON)

    async def _api_error(self, request: Request, error: Exception) -> Response:
        assert isinstance(error, ApiError)
        return Response(
            orjson.dumps(error.body),
            status_code=error.status,
            media_type=JSON,
        )

    async def _http_error(self, request: Request, error: Exception) -> Response:
        # Starlette's own 404/405: the edge middleware gives them the uniform error body.
        assert isinstance(error, HTTPException)
        return Response(error.detail, status_code=error.status_code, headers=error.headers)


def entity_tag(version: str, stale: bool, request: Request, media: str) -> str:
    """A strong ETag: what the answer depends on, hashed."""
    query = sorted(request.query_params.multi_items())
    identity = orjson.dumps([version, stale, request.url.path, query, media])
    return f'"{hashlib.sha256(identity).hexdigest()[:32]}"'


def _matches(if_none_match: str | None, tag: str) -> bool:
    if not if_none_match:
        return False
    # Weak comparison (RFC 9110 13.1.2); `*` is for writes, never a match here.
    return tag in {candidate.strip().removeprefix("W/") for candidate in if_none_match.split(",")}


def _acceptable(request: Request, offered: tuple[str, ...]) -> str:
    media = best_match(request.headers.get("accept"), offered)
    if media is None:
        raise _not_acceptable(offered)
    return media


def _not_acceptable(offered: tuple[str, ...]) -> ApiError:
    return ApiError(406, "not_acceptable", f"Accept: this route answers {', '.join(offered)}")


def _next_link(request: Request, page: Page) -> str | None:
    if page.next is None:
        return None
    query = [
        (name, value) for name, value in request.query_params.multi_items() if name != "cursor"
    ]
    query.append(("cursor", page.next.encode()))
    return f"{request.url.path}?{QueryParams(query)}"


def _without(fields: dict[str, Any], names: frozenset[str]) -> dict[str, Any]:
    return {name: value for name, value in fields.items() if name not in names}


def _csv(records: list[dict[str, Any]], columns: tuple[str, ...]) -> bytes:
    """RFC 4180 CSV with a header; nulls are empty cells."""
    buffer = io.StringIO()
    writer = csv.DictWriter(
        buffer, fieldnames=columns, lineterminator="\r\n", extrasaction="ignore"
    )
    writer.writeheader()
    writer.writerows(records)
    return buffer.getvalue().encode()


def build_v1(settings: ServiceSettings, serving: Callable[[], Serving]) -> Starlette:
    return V1(settings, serving).app


__all__ = ["V1", "CachePolicy", "best_match", "build_v1", "entity_tag"]
