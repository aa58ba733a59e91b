"""The prediction cache: a bounded in-process LRU in front of an optional Redis tier.

Values are the JSON bytes of an answer, so a hit is served without recomputing or
re-encoding. Keys carry the model tag and the canonical query (card id, requested date or
`latest`): a new model never serves an old model's answers. What comes back from Redis is
checked before use (JSON object of this model tag); anything else is a miss, and the
fresh answer overwrites it. Never pickle.

Redis is optional and never on the critical path (see `service.redis_guard`): when it is
down or slow, the local tier and the model answer.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field

import orjson

from service.metrics import labelled, service_metrics
from service.redis_guard import RedisGuard

Clock = Callable[[], float]
# A cached answer: its JSON body and its signal (for the signal counter on hits).
Cached = tuple[bytes, str]
NO_SIGNAL = "none"  # the signal counter's label for an answer without a signal


def signal_label(answer: dict[str, object]) -> str:
    signal = answer.get("signal")
    return signal if isinstance(signal, str) else NO_SIGNAL


@dataclass
class TierStats:
    hits: int = 0
    misses: int = 0
    errors: int = 0

    @property
    def hit_rate(self) -> float:
        lookups = self.hits + self.misses
        return self.hits / lookups if lookups else 0.0

    def as_dict(self) -> dict[str, float]:
        return {
            "hits": self.hits,
            "misses": self.misses,
            "errors": self.errors,
            "hit_rate": round(self.hit_rate, 4),
        }


class LruCache:
    """True LRU with a per-entry deadline (TTL with jitter, so entries do not expire in step)."""

    def __init__(
        self,
        max_items: int,
        ttl_seconds: float,
        jitter: float = 0.1,
        clock: Clock = time.monotonic,
    ) -> None:
        self.max_items = max_items
        self.ttl_seconds = ttl_seconds
        self.jitter = jitter
        self.clock = clock
        self.entries: OrderedDict[str, tuple[float, Cached]] = OrderedDict()

    def __len__(self) -> int:
        return len(self.entries)

    def get(self, key: str) -> Cached | None:
        entry = self.entries.get(key)
        if entry is None:
            return None
        deadline, value = entry
        if self.clock() >= deadline:
            del self.entries[key]
            return None
        self.entries.move_to_end(key)
        return value

    def set(self, key: str, value: Cached) -> None:
        self.entries[key] = (self.clock() + self.ttl(), value)
        self.entries.move_to_end(key)
        while len(self.entries) > self.max_items:
            self.entries.popitem(last=False)

    def ttl(self) -> float:
        return self.ttl_seconds * (1 + random.uniform(-self.jitter, self.jitter))  # noqa: S311


class RedisTier:
    """MGET and pipelined SET PX through a `RedisGuard`."""

    prefix = "pokewatch:cache:"

    def __init__(self, guard: RedisGuard) -> None:
        self.guard = guard

    async def get_many(self, keys: list[str]) -> list[bytes | None] | None:
        """Values in key order, or None when Redis is unavailable (nothing was read)."""
        values = await self.guard.call(
            lambda: self.guard.client.mget([self.prefix + key for key in keys])
        )
        if values is None:
            return None
        return [value.encode() if isinstance(value, str) else value for value in values]

    async def set_many(self, items: dict[str, bytes], ttl_seconds: float) -> None:
        pipeline = self.guard.client.pipeline(transaction=False)
        for key, value in items.items():
            pipeline.set(self.prefix + key, value, px=max(1, int(ttl_seconds * 1000)))
        await self.guard.call(pipeline.execute)


Compute = Callable[[list[int]], list[Cached | None]]
Decode = Callable[[bytes], Cached | None]


@dataclass
class PredictionCache:
    """Looks answers up local → Redis → compute, and writes misses back in one round trip.

    `compute(indexes)` answers the queries at those indexes (None where the answer must
    not be cached, e.g. an error). `decode` turns what Redis holds back into an answer,
    or None for anything that is not a valid answer of the current model. Identical
    misses in flight at once in this worker wait for one computation (single flight).
    """

    local: LruCache
    redis: RedisTier | None = None
    ttl_seconds: float = 3600.0
    stats: dict[str, TierStats] = field(
        default_factory=lambda: {"local": TierStats(), "redis": TierStats()}
    )
    in_flight: dict[str, asyncio.Future[Cached | None]] = field(default_factory=dict)
    # Write-backs under way (held so they are not garbage-collected mid-flight).
    writing: set[asyncio.Task[None]] = field(default_factory=set)

    @staticmethod
    def key(model_tag: str, card_id: str, on: str | None) -> str:
        return f"{model_tag}|{card_id}|{on or 'latest'}"

    async def get_or_compute(
        self, keys: list[str], compute: Compute, decode: Decode
    ) -> list[Cached | None]:
        values: list[Cached | None] = [self.local.get(key) for key in keys]
        missing = [index for index, value in enumerate(values) if value is None]
        self._count("local", len(keys) - len(missing), len(missing))
        if not missing:
            return values
        # Claim the missing keys before the first await, so identical queries arriving
        # meanwhile wait for this one instead of asking Redis and computing again.
        followers: dict[int, asyncio.Future[Cached | None]] = {}
        claimed: dict[str, asyncio.Future[Cached | None]] = {}
        leaders: list[int] = []
        loop = asyncio.get_running_loop()
        for index in missing:
            key = keys[index]
            if key in self.in_flight and key not in claimed:
                followers[index] = self.in_flight[key]
                continue
            if key not in claimed:
                claimed[key] = self.in_flight[key] = loop.create_future()
            leaders.append(index)
        fresh: dict[str, bytes] = {}
        try:
            if self.redis is not None and leaders:
                await self._fill_from_redis(keys, values, leaders, decode)
            to_compute = [index for index in leaders if values[index] is None]
            computed = compute(to_compute) if to_compute else []
            for index, value in zip(to_compute, computed, strict=True):
                values[index] = value
                if value is not None:
                    fresh[keys[index]] = value[0]
                    self.local.set(keys[index], value)
            for key, future in claimed.items():
                future.set_result(self.local.get(key))
        except BaseException as error:
            for future in claimed.values():
                if not future.done():
                    future.set_exception(error)
            raise
        finally:
            for key in claimed:
                self.in_flight.pop(key, None)
        for index, future in followers.items():
            values[index] = await future
        if fresh and self.redis is not None:
            # The answer does not wait for the write-back (one pipelined round trip).
            task = asyncio.create_task(self.redis.set_many(fresh, self.ttl_seconds))
            self.writing.add(task)
            task.add_done_callback(self.writing.discard)
        return values

    async def _fill_from_redis(
        self, keys: list[str], values: list[Cached | None], missing: list[int], decode: Decode
    ) -> None:
        assert self.redis is not None
        found = await self.redis.get_many([keys[index] for index in missing])
        if found is None:
            self.stats["redis"].errors += 1
            return
        hits = 0
        for index, raw in zip(missing, found, strict=True):
            value = decode(raw) if raw is not None else None
            if value is not None:
                values[index] = value
                self.local.set(keys[index], value)
                hits += 1
        self._count("redis", hits, len(missing) - hits)

    def _count(self, tier: str, hits: int, misses: int) -> None:
        self.stats[tier].hits += hits
        self.stats[tier].misses += misses
        lookups = service_metrics().cache_lookups
        if hits:
            labelled(lookups, tier, "hit").inc(hits)
        if misses:
            labelled(lookups, tier, "miss").inc(misses)


def answer_decoder(model_tag: str) -> Decode:
    """A cached body counts only if it is a JSON answer of this model (never trust bytes)."""

    def decode(value: bytes) -> Cached | None:
        try:
            answer = orjson.loads(value)
        except orjson.JSONDecodeError:
            return None
        if not isinstance(answer, dict) or answer.get("model_version") != model_tag:
            return None
        if "signal" not in answer:
            return None
        return value, signal_label(answer)

    return decode
