"""Answers as JSON bytes: a predictor behind the prediction cache, with the metrics.

The BentoML service (and the FastAPI reference app of the benchmarks) wrap this; nothing
here knows about BentoML. Bodies are encoded once with orjson and, when cached, served
as they are.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime

import orjson

from model.predictor import Predictor, QueryError, parse_query
from service.cache import (
    Cached,
    LruCache,
    PredictionCache,
    RedisTier,
    answer_decoder,
    signal_label,
)
from service.metrics import service_metrics
from service.redis_guard import RedisGuard
from service.settings import CacheConfig

Body = tuple[int, bytes]


def error_body(error: QueryError) -> Body:
    return error.status, orjson.dumps(error.body())


Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(UTC)


class Answers:
    """Answers of one table (a model's, or a published day of it), cached by table version
    and by staleness (an answer turns `stale` without its table changing)."""

    def __init__(
        self,
        predictor: Predictor,
        cache: PredictionCache | None,
        stale_after_hours: float,
        clock: Clock = utc_now,
    ) -> None:
        self.predictor = predictor
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
        stale = self.stale()
        query = {"card_id": card_id, "date": on}
        (cached,) = await self._lookup([query], [(card_id, on)], stale)
        if cached is None:
            # Not cacheable: an error, computed (cheaply) again to raise it.
            try:
                answer = self.predictor.fair_price(card_id, on, stale)
            except QueryError as error:
                return error_body(error)
            cached = (orjson.dumps(answer), signal_label(answer))
        self.metrics.signals.labels(cached[1]).inc()
        self.metrics.prediction_seconds.labels("fair_price").observe(time.perf_counter() - started)
        return 200, cached[0]

    async def batch(self, items: Sequence[object]) -> Body:
        """Answers in item order; malformed items get their error in place, uncached."""
        started = time.perf_counter()
        parts: list[bytes | None] = [None] * len(items)
        queries: list[tuple[str, str | None]] = []
        positions: list[int] = []
        for index, item in enumerate(items):
            try:
                queries.append(parse_query(item))
            except QueryError as error:
                parts[index] = orjson.dumps(error.item_body(index))
                continue
            positions.append(index)
        valid_items = [items[index] for index in positions]
        stale = self.stale()
        found = await self._lookup(valid_items, queries, stale)
        uncached = [slot for slot, value in enumerate(found) if value is None]
        if uncached:
            answers = self.predictor.fair_prices([valid_items[slot] for slot in uncached], stale)
            for slot, answer in zip(uncached, answers, strict=True):
                if "index" in answer:
                    answer["index"] = positions[slot]
                parts[positions[slot]] = orjson.dumps(answer)
        signals = self.metrics.signals
        for slot, value in enumerate(found):
            if value is not None:
                parts[positions[slot]] = value[0]
                signals.labels(value[1]).inc()
        self.metrics.batch_size.observe(len(items))
        self.metrics.prediction_seconds.labels("batch_predict").observe(
            time.perf_counter() - started
        )
        return 200, b'{"results":[' + b",".join(part or b"null" for part in parts) + b"]}"

    async def _lookup(
        self, items: Sequence[object], queries: list[tuple[str, str | None]], stale: bool
    ) -> list[Cached | None]:
        """Cached or freshly computed answers of valid queries (None for errors)."""

        def compute(indexes: list[int]) -> list[Cached | None]:
            answers = self.predictor.fair_prices([items[index] for index in indexes], stale)
            return [
                None if "error" in answer else (orjson.dumps(answer), signal_label(answer))
                for answer in answers
            ]

        if self.cache is None:
            return compute(list(range(len(items))))
        version = f"{self.version}|{'stale' if stale else 'fresh'}"
        keys = [PredictionCache.key(version, card_id, on) for card_id, on in queries]
        return await self.cache.get_or_compute(keys, compute, self.decode)

    def cards(self, limit: int, offset: int) -> Body:
        return 200, orjson.dumps(self.predictor.cards(limit, offset, self.stale()))


def build_cache(config: CacheConfig, guard: RedisGuard | None) -> PredictionCache | None:
    if not config.enabled:
        return None
    return PredictionCache(
        local=LruCache(config.max_items, config.ttl_seconds, config.jitter),
        redis=RedisTier(guard) if guard is not None and config.use_redis else None,
        ttl_seconds=config.ttl_seconds,
    )
