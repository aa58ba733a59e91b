"""The prediction cache: LRU order, TTL, model-tag keys, poisoned values, single flight,
and the Redis tier against the real Redis (shared by two caches, as two workers would)."""

import asyncio
import uuid
from collections.abc import Iterator

import orjson
import pytest
import redis

from service.cache import (
    Cached,
    Compute,
    LruCache,
    PredictionCache,
    RedisTier,
    answer_decoder,
)
from service.redis_guard import RedisGuard
from service.settings import RedisSettings

SHARED_REDIS = "redis://127.0.0.1:6379/0"


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def answer(tag: str, card: str = "c", signal: str = "HOLD") -> Cached:
    return orjson.dumps({"card_id": card, "model_version": tag, "signal": signal}), signal


def test_lru_evicts_least_recently_used() -> None:
    cache = LruCache(max_items=2, ttl_seconds=60, jitter=0)
    cache.set("a", answer("m", "a"))
    cache.set("b", answer("m", "b"))
    assert cache.get("a") is not None  # a is now the most recent
    cache.set("c", answer("m", "c"))
    assert cache.get("b") is None
    assert cache.get("a") is not None
    assert cache.get("c") is not None
    assert len(cache) == 2


def test_lru_entries_expire_with_jittered_ttl() -> None:
    clock = FakeClock()
    cache = LruCache(max_items=10, ttl_seconds=100, jitter=0.1, clock=clock)
    cache.set("a", answer("m"))
    clock.now = 89.9
    assert cache.get("a") is not None
    clock.now = 110.1
    assert cache.get("a") is None
    ttls = {cache.ttl() for _ in range(50)}
    assert len(ttls) > 1
    assert all(90 <= ttl <= 110 for ttl in ttls)


def test_keys_carry_the_model_tag_and_canonical_date() -> None:
    assert PredictionCache.key("m:1", "c", None) == PredictionCache.key("m:1", "c", None)
    assert PredictionCache.key("m:1", "c", None) != PredictionCache.key("m:2", "c", None)
    assert PredictionCache.key("m:1", "c", "2024-01-01") != PredictionCache.key("m:1", "c", None)


@pytest.mark.parametrize(
    "stored",
    [
        b"garbage",
        b"[1, 2]",
        b'{"model_version": "other", "signal": "BUY"}',
        b'{"model_version": "m"}',
    ],
)
def test_decoder_rejects_anything_but_this_models_answer(stored: bytes) -> None:
    assert answer_decoder("m")(stored) is None
    assert answer_decoder("m")(answer("m")[0]) == answer("m")


def test_single_flight_computes_identical_misses_once() -> None:
    calls: list[list[int]] = []

    class SlowRedis(RedisTier):
        async def get_many(self, keys: list[str]) -> list[bytes | None] | None:
            await asyncio.sleep(0.01)
            return [None] * len(keys)

        async def set_many(self, items: dict[str, bytes], ttl_seconds: float) -> None:
            return None

    async def scenario() -> list[list[Cached | None]]:
        guard = RedisGuard("cache", RedisSettings(url=SHARED_REDIS))
        cache = PredictionCache(LruCache(100, 60), SlowRedis(guard))

        def compute(indexes: list[int]) -> list[Cached | None]:
            calls.append(indexes)
            return [answer("m") for _ in indexes]

        results = await asyncio.gather(
            *(cache.get_or_compute(["k"], compute, answer_decoder("m")) for _ in range(100))
        )
        await guard.close()
        return results

    results = asyncio.run(scenario())
    assert len(calls) == 1
    assert all(result == [answer("m")] for result in results)


@pytest.fixture
def shared_redis_db() -> Iterator[str]:
    prefix = f"test-{uuid.uuid4().hex}"
    yield prefix
    client = redis.Redis.from_url(SHARED_REDIS)
    for key in client.scan_iter(match=f"pokewatch:cache:{prefix}*"):
        client.delete(key)


def test_redis_tier_is_shared_between_workers_and_poison_is_overwritten(
    shared_redis_db: str,
) -> None:
    tag = shared_redis_db
    key = PredictionCache.key(tag, "card", None)
    redis.Redis.from_url(SHARED_REDIS).set(RedisTier.prefix + key, b"not json")

    async def scenario() -> tuple[int, int, int]:
        guards = [RedisGuard("cache", RedisSettings(url=SHARED_REDIS)) for _ in range(2)]
        workers = [PredictionCache(LruCache(100, 60), RedisTier(guard)) for guard in guards]
        computed = [0, 0]

        def compute_in(worker: int) -> Compute:
            def compute(indexes: list[int]) -> list[Cached | None]:
                computed[worker] += len(indexes)
                return [answer(tag, "card") for _ in indexes]

            return compute

        decode = answer_decoder(tag)
        first = await workers[0].get_or_compute([key], compute_in(0), decode)
        await asyncio.gather(*workers[0].writing)  # the write-back runs after the answer
        second = await workers[1].get_or_compute([key], compute_in(1), decode)
        assert first == second == [answer(tag, "card")]
        for guard in guards:
            await guard.close()
        return computed[0], computed[1], workers[1].stats["redis"].hits

    worker0, worker1, redis_hits = asyncio.run(scenario())
    assert (worker0, worker1) == (1, 0)  # the poisoned value was a miss, then overwritten
    assert redis_hits == 1
    assert redis.Redis.from_url(SHARED_REDIS).get(RedisTier.prefix + key) == answer(tag, "card")[0]


def test_redis_down_is_a_miss_not_an_error() -> None:
    async def scenario() -> list[Cached | None]:
        guard = RedisGuard("cache", RedisSettings(url="redis://127.0.0.1:1/0", timeout_ms=50))
        cache = PredictionCache(LruCache(100, 60), RedisTier(guard))
        result = await cache.get_or_compute(
            ["k"], lambda indexes: [answer("m") for _ in indexes], answer_decoder("m")
        )
        assert guard.degraded
        await guard.close()
        return result

    assert asyncio.run(scenario()) == [answer("m")]
