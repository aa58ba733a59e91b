"""A Redis client that can never stall a request: short timeouts, no retries, and a
circuit breaker that skips Redis for a cool-down after a failure.

The rate limiter and the prediction cache each hold one; `degraded` reports (to a
callback, for the metrics) whether the component is running on its local fallback.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from service.settings import RedisSettings

logger = logging.getLogger("pokewatch.redis")

T = TypeVar("T")


class RedisGuard:
    def __init__(
        self,
        component: str,
        settings: RedisSettings,
        on_degraded: Callable[[bool], None] = lambda _degraded: None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if settings.url is None:
            raise ValueError(f"{component}: redis.url is not set")
        self.component = component
        self.timeout_seconds = settings.timeout_ms / 1000
        self.cool_down_seconds = settings.cool_down_seconds
        self.on_degraded = on_degraded
        self.clock = clock
        self.client = aioredis.Redis.from_url(
            settings.url,
            socket_timeout=self.timeout_seconds,
            socket_connect_timeout=self.timeout_seconds,
            retry=Retry(NoBackoff(), 0),
        )
        self.open_until = 0.0
        self.degraded = False

    @classmethod
    def from_settings(cls, settings: RedisSettings, component: str) -> RedisGuard | None:
        """The component's guarded client, reporting `pokewatch_redis_degraded{component}`;
        None when no Redis is configured (the component runs on its local state)."""
        if not settings.url:
            return None
        return cls(component, settings, on_degraded=degraded_metric(component))

    @property
    def available(self) -> bool:
        return self.clock() >= self.open_until

    async def call(
        self, make_call: Callable[[], Awaitable[T]], timeout: float | None = None
    ) -> T | None:
        """The call's result, or None when Redis failed, was too slow, or is cooling down."""
        if not self.available:
            return None
        try:
            async with asyncio.timeout(timeout or self.timeout_seconds * 2):
                result = await make_call()
        except (RedisError, OSError, TimeoutError) as error:
            self.open_until = self.clock() + self.cool_down_seconds
            self._set_degraded(True, error)
            return None
        self._set_degraded(False)
        return result

    def _set_degraded(self, degraded: bool, error: BaseException | None = None) -> None:
        if degraded == self.degraded:
            return
        self.degraded = degraded
        self.on_degraded(degraded)
        if degraded:
            logger.warning("Redis unavailable for %s (%r): local fallback", self.component, error)
        else:
            logger.warning("Redis back for %s", self.component)

    async def close(self) -> None:
        await self.client.aclose()


def degraded_metric(component: str) -> Callable[[bool], None]:
    """Sets `pokewatch_redis_degraded{component}` (imported late: see service.metrics)."""

    def report(degraded: bool) -> None:
        from service.metrics import service_metrics

        service_metrics().redis_degraded.labels(component).set(int(degraded))

    return report
