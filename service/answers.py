"""Answers as JSON bytes: a predictor behind the prediction cache, with the metrics.

The BentoML service (and the FastAPI reference app of the benchmarks) wrap this; nothing
here knows about BentoML. Bodies are encoded once with orjson and, when cached, served
as they are. Each query is parsed once and computed at most once: an answer the cache
misses is computed with the others it missed, and a failing query keeps the error its
computation gave.

HTTP statuses are decided here, at the edge of the model: `model` says what went wrong
(`QueryErrorCode`), not which status it is.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

import orjson

from model.catalog import Catalog
from model.encoding import kept_json
from model.predictor import Predictor, Query, QueryError, QueryErrorCode, parse_day, parse_query
from service.cache import (
    Cached,
    LruCache,
    PredictionCache,
    RedisTier,
    answer_decoder,
    signal_label,
)
from service.errors import error_body
from service.metrics import labelled, service_metrics
from service.redis_guard import RedisGuard
from service.settings import CacheSettings

Body = tuple[int, bytes]
QUERY_STATUS = {
    QueryErrorCode.INVALID_REQUEST: 400,
    QueryErrorCode.CARD_NOT_FOUND: 404,
    QueryErrorCode.DATE_OUT_OF_RANGE: 404,
}


def status_of(error: QueryError) -> int:
    return QUERY_STATUS[error.error]


def query_error(error: QueryError) -> dict[str, Any]:
    return error_body(error.error.value, error.detail)


def query_error_body(error: QueryError) -> Body:
    return status_of(error), orjson.dumps(query_error(error))


def item_error(index: int, error: QueryError) -> dict[str, Any]:
    """A failed batch item's answer in its place: its index, the card it names (if any),
    its status and the error body."""
    named = {} if error.card_id is None else {"card_id": error.card_id}
    return {"index": index, **named, "status": status_of(error), **query_error(error)}


Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(UTC)


class Answers:
    """Answers of one table (a model's, or a published day of it), cached by table version
    and by staleness (an answer turns `stale` without its table changing)."""

    def __init__(
        self,
        predictor: Predictor,
        catalog: Catalog,
        cache: PredictionCache | None,
        stale_after_hours: float,
        clock: Clock = utc_now,
    ) -> None:
        self.predictor = predictor
        self.catalog = catalog
        self.cache = cache
        self.stale_after_hours = stale_after_hours
        self.clock = clock
        self.decode = answer_decoder(predictor.model_version)
        self.metrics = service_metrics()

    @property
    def model_version(self) -> str:
        return self.predictor.model_version

    @property
    def version(self) -> str:
        return self.predictor.version

    def stale(self) -> bool:
        return self.predictor.freshness(self.clock(), self.stale_after_hours).stale

    async def fair_price(self, card_id: str, on: str | None) -> Body:
        started = time.perf_counter()
        try:
            query = Query(card_id, on, parse_day(on))
        except QueryError as error:
            return query_error_body(error)
        (found,) = await self._answers([query], self.stale())
        if isinstance(found, QueryError):
            return query_error_body(found)
        labelled(self.metrics.signals, found[1]).inc()
        labelled(self.metrics.prediction_seconds, "fair_price").observe(
            time.perf_counter() - started
        )
        return 200, found[0]

    async def batch(self, items: Sequence[object]) -> Body:
        """Answers in item order; an item that fails gets its error in place, uncached."""
        started = time.perf_counter()
        parts: list[bytes] = [b""] * len(items)
        queries: list[Query] = []
        positions: list[int] = []
        for index, item in enumerate(items):
            try:
                queries.append(parse_query(item))
            except QueryError as error:
                parts[index] = orjson.dumps(item_error(index, error))
                continue
            positions.append(index)
        found = await self._answers(queries, self.stale())
        signals = self.metrics.signals
        for index, value in zip(positions, found, strict=True):
            if isinstance(value, QueryError):
                parts[index] = orjson.dumps(item_error(index, value))
                continue
            parts[index] = value[0]
            labelled(signals, value[1]).inc()
        self.metrics.batch_size.observe(len(items))
        labelled(self.metrics.prediction_seconds, "batch_predict").observe(
            time.perf_counter() - started
        )
        return 200, b'{"results":[' + b",".join(parts) + b"]}"

    async def _answers(self, queries: list[Query], stale: bool) -> list[Cached | QueryError]:
        """Cached or freshly computed answers, or each failing query's error."""
        errors: dict[int, QueryError] = {}

        def compute(indexes: list[int]) -> list[Cached | None]:
            computed: list[Cached | None] = []
            answers = self.predictor.answer([queries[index] for index in indexes], stale)
            for index, answer in zip(indexes, answers, strict=True):
                if isinstance(answer, QueryError):
                    errors[index] = answer
                    computed.append(None)
                else:
                    computed.append((kept_json(answer), signal_label(answer)))
            return computed

        if self.cache is None:
            found = compute(list(range(len(queries))))
        else:
            version = f"{self.version}|{'stale' if stale else 'fresh'}"
            keys = [PredictionCache.key(version, query.card_id, query.date) for query in queries]
            found = await self.cache.get_or_compute(keys, compute, self.decode)
        # An identical query in flight elsewhere failed: errors are not cached, so the
        # queries that waited on it are computed here.
        waited = [
            index for index, value in enumerate(found) if value is None and index not in errors
        ]
        if waited:
            for index, value in zip(waited, compute(waited), strict=True):
                found[index] = value
        return [errors[index] if value is None else value for index, value in enumerate(found)]

    def cards(self, limit: int, offset: int) -> Body:
        return 200, orjson.dumps(self.catalog.summaries(limit, offset, self.stale()))


def build_cache(config: CacheSettings, guard: RedisGuard | None) -> PredictionCache | None:
    if not config.enabled:
        return None
    return PredictionCache(
        local=LruCache(config.max_items, config.ttl_seconds, config.jitter),
        redis=RedisTier(guard) if guard is not None and config.use_redis else None,
        ttl_seconds=config.ttl_seconds,
    )
