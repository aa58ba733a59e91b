"""Answers as JSON bytes: a predictor behind the prediction cache, with the metrics.

The BentoML service (and the FastAPI reference app of the benchmarks) wrap this; nothing
here knows about BentoML. Bodies are encoded once with orjson and, when cached, served
as they are.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import orjson

from model.predictor import Predictor, QueryError, parse_query
from service.cache import Cached, LruCache, PredictionCache, RedisTier, answer_decoder
from service.metrics import service_metrics
from service.redis_guard import RedisGuard
from service.settings import CacheConfig

Body = tuple[int, bytes]


def error_body(error: QueryError) -> Body:
    return error.status, orjson.dumps(error.body())


class Answers:
    def __init__(self, predictor: Predictor, cache: PredictionCache | None) -> None:
        self.predictor = predictor
        self.cache = cache
        self.decode = answer_decoder(predictor.model_version)
        self.metrics = service_metrics()

    @property
    def model_version(self) -> str:
        return self.predictor.model_version

    async def fair_price(self, card_id: str, on: str | None) -> Body:
        started = time.perf_counter()
        query = {"card_id": card_id, "date": on}
        (cached,) = await self._lookup([query], [(card_id, on)])
        if cached is None:
            # Not cacheable: an error, computed (cheaply) again to raise it.
            try:
                answer = self.predictor.fair_price(card_id, on)
            except QueryError as error:
                return error_body(error)
            cached = (orjson.dumps(answer), answer["signal"])
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
        found = await self._lookup(valid_items, queries)
        uncached = [slot for slot, value in enumerate(found) if value is None]
        if uncached:
            answers = self.predictor.fair_prices([valid_items[slot] for slot in uncached])
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
        self, items: Sequence[object], queries: list[tuple[str, str | None]]
    ) -> list[Cached | None]:
        """Cached or freshly computed answers of valid queries (None for errors)."""

        def compute(indexes: list[int]) -> list[Cached | None]:
            answers = self.predictor.fair_prices([items[index] for index in indexes])
            return [
                None if "error" in answer else (orjson.dumps(answer), answer["signal"])
                for answer in answers
            ]

        if self.cache is None:
            return compute(list(range(len(items))))
        tag = self.predictor.model_version
        keys = [PredictionCache.key(tag, card_id, on) for card_id, on in queries]
        return await self.cache.get_or_compute(keys, compute, self.decode)

    def cards(self, limit: int, offset: int) -> Body:
        return 200, orjson.dumps(self.predictor.cards(limit, offset))

    def health(self) -> dict[str, Any]:
        info = self.predictor.info
        health: dict[str, Any] = {
            "status": "ok",
            "model_version": self.predictor.model_version,
            "strategy": info["strategy"],
            "horizon": info["horizon"],
            "items": len(self.predictor.table),
            "data_start": info["data_start"],
            "data_end": info["data_end"],
        }
        if self.cache is not None:
            health["cache"] = {tier: stats.as_dict() for tier, stats in self.cache.stats.items()}
        return health


def build_cache(config: CacheConfig, guard: RedisGuard | None) -> PredictionCache | None:
    if not config.enabled:
        return None
    return PredictionCache(
        local=LruCache(config.max_items, config.ttl_seconds, config.jitter),
        redis=RedisTier(guard) if guard is not None and config.use_redis else None,
        ttl_seconds=config.ttl_seconds,
    )
