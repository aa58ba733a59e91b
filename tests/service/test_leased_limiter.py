"""Leased rate limiting against the shared Redis: the stated bounds hold with many workers.

Each worker is a `LeasedLimiter` of its own (as each process holds one); they share one key
of one Redis bucket. Over the run, the exact limiter can grant at most `burst + rate * t`;
the leased one at most `(lease_tokens - 1)` per worker more, and it refuses at most that
many more than the exact one would.
"""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from collections.abc import Sequence

import pytest
import redis

from model.settings import load_settings
from service.ratelimit import LeasedLimiter, Policy, RedisLimiter
from service.redis_guard import RedisGuard
from service.security import build_security
from service.settings import RedisSettings, ServiceSettings

SHARED_REDIS = "redis://127.0.0.1:6379/0"
POLICY = Policy("leased", per_minute=3000, burst=40)  # 50 tokens a second
WORKERS = 4
LEASE = 10


def guard() -> RedisGuard:
    return RedisGuard("ratelimit", RedisSettings(url=SHARED_REDIS, timeout_ms=1000))


@pytest.fixture(autouse=True)
def shared_redis() -> None:
    try:
        redis.Redis.from_url(SHARED_REDIS).ping()
    except redis.RedisError:
        pytest.skip("no Redis on 127.0.0.1:6379")


async def hammer(limiters: Sequence[RedisLimiter], key: str, seconds: float) -> tuple[int, float]:
    """Requests from every worker in a random order for `seconds`: (granted, elapsed)."""
    chooser = random.Random(7)
    granted = 0
    started = time.monotonic()
    while time.monotonic() - started < seconds:
        decisions = await asyncio.gather(
            *(chooser.choice(limiters).hit(key, POLICY) for _ in range(8))
        )
        granted += sum(decision.allowed for decision in decisions)
        await asyncio.sleep(0.002)
    return granted, time.monotonic() - started


def allowance(elapsed: float) -> float:
    """The most the exact limit can grant over `elapsed` seconds (a full bucket at start)."""
    return POLICY.burst + elapsed * POLICY.per_minute / 60


def test_leased_grants_within_the_stated_bound_of_the_exact_limit() -> None:
    async def scenario() -> tuple[int, float, int, float]:
        exact = [RedisLimiter(guard(), workers=WORKERS) for _ in range(WORKERS)]
        leased = [LeasedLimiter(guard(), WORKERS, LEASE) for _ in range(WORKERS)]
        exact_granted, exact_elapsed = await hammer(exact, f"test:{uuid.uuid4().hex}", 1.5)
        leased_granted, leased_elapsed = await hammer(leased, f"test:{uuid.uuid4().hex}", 1.5)
        for limiter in exact + leased:
            await limiter.close()
        return exact_granted, exact_elapsed, leased_granted, leased_elapsed

    exact_granted, exact_elapsed, leased_granted, leased_elapsed = asyncio.run(scenario())
    slack = WORKERS * (LEASE - 1)
    assert exact_granted <= allowance(exact_elapsed) + 1
    assert leased_granted <= allowance(leased_elapsed) + slack + 1
    # Under constant pressure the exact limit grants nearly all it may: the leased one
    # grants at most `slack` fewer than that.
    assert leased_granted >= exact_granted * leased_elapsed / exact_elapsed - slack - 5


def test_leased_uses_one_round_trip_per_lease() -> None:
    async def scenario() -> tuple[int, int, int]:
        limiter = LeasedLimiter(guard(), WORKERS, LEASE)
        await limiter.warm_up()
        calls = 0
        script = limiter.script

        async def counted(keys: list[str], args: list[float]) -> object:
            nonlocal calls
            calls += 1
            return await script(keys=keys, args=args)

        limiter.script = counted  # type: ignore[assignment]
        key = f"test:{uuid.uuid4().hex}"
        decisions = [await limiter.hit(key, POLICY) for _ in range(35)]
        await limiter.close()
        remaining = decisions[-1].remaining
        return calls, sum(decision.allowed for decision in decisions), remaining

    calls, granted, remaining = asyncio.run(scenario())
    assert granted == 35
    assert calls == 4  # 10 + 10 + 10 + 10 tokens for 35 requests
    # What the bucket still has plus what this worker holds.
    assert POLICY.burst - 40 + 5 <= remaining <= POLICY.burst - 35 + 1


def test_a_cost_above_the_lease_takes_what_it_needs() -> None:
    async def scenario() -> list[bool]:
        limiter = LeasedLimiter(guard(), WORKERS, lease_tokens=3)
        key = f"test:{uuid.uuid4().hex}"
        decisions = [await limiter.hit(key, POLICY, cost=25) for _ in range(2)]
        await limiter.close()
        return [decision.allowed for decision in decisions]

    # 25 of the 40-token burst, then only 15 are left: the second is refused.
    assert asyncio.run(scenario()) == [True, False]


def test_a_refusal_says_when_to_retry() -> None:
    async def scenario() -> tuple[bool, float]:
        limiter = LeasedLimiter(guard(), WORKERS, LEASE)
        key = f"test:{uuid.uuid4().hex}"
        for _ in range(POLICY.burst):
            assert (await limiter.hit(key, POLICY)).allowed
        refused = await limiter.hit(key, POLICY)
        await limiter.close()
        return refused.allowed, refused.retry_after_seconds

    allowed, retry = asyncio.run(scenario())
    assert not allowed
    assert 0 < retry <= 60 / POLICY.per_minute + 0.01


@pytest.mark.parametrize(("lease", "kind"), [("1", RedisLimiter), ("10", LeasedLimiter)])
def test_the_setting_chooses_exact_or_leased(
    monkeypatch: pytest.MonkeyPatch, lease: str, kind: type[RedisLimiter]
) -> None:
    monkeypatch.setenv("POKEWATCH_REDIS__URL", SHARED_REDIS)
    monkeypatch.setenv("POKEWATCH_SECURITY__RATE_LIMIT__BACKEND", "redis")
    monkeypatch.setenv("POKEWATCH_SECURITY__RATE_LIMIT__LEASE_TOKENS", lease)
    limiter = build_security(load_settings(ServiceSettings)).limiter
    assert type(limiter) is kind


def test_redis_buckets_survive_a_clock_jump_back_of_years() -> None:
    """The script's twin of the clamp in `gcra`: a TAT set by a clock ten years ahead (as a
    Redis host whose clock was set back sees it) is a full bucket, not ten years of 429."""
    key = f"jump-{uuid.uuid4().hex}"
    limiter = RedisLimiter(guard(), workers=1)
    client = redis.Redis.from_url(SHARED_REDIS)
    seconds, micros = client.time()
    ten_years_ahead = (seconds + 10 * 365 * 86_400) * 1_000_000 + micros
    client.set(limiter.prefix + key, str(ten_years_ahead), px=60_000)

    async def hits() -> list[bool]:
        first = await limiter.hit(key, POLICY)
        assert first.retry_after_seconds <= 60 / POLICY.per_minute + 0.01
        await asyncio.sleep(60 / POLICY.per_minute * 2)
        second = await limiter.hit(key, POLICY)
        return [first.allowed, second.allowed]

    assert asyncio.run(hits()) == [False, True]
