"""Per-key rate limiting: GCRA (a token bucket kept as one timestamp per key).

A policy grants `burst` requests at once and refills at `per_minute`. The state of a key
is its theoretical arrival time (TAT): the moment its bucket would be full again. Deciding
is one comparison, so the Redis backend does it in one Lua script (atomic, on Redis's own
clock): the limit holds exactly across every worker and replica sharing that Redis.

When Redis fails or is slow, decisions fall back to a local bucket holding the policy
divided by the number of workers, Redis is skipped for a cool-down, and the degraded state
is exposed; shared limiting resumes on the first success after the cool-down.

`LeasedLimiter` trades exactness for round trips (`rate_limit.lease_tokens` > 1): a worker
takes up to that many tokens of a key's shared bucket in one script call and spends them
locally. Tokens leave the shared bucket before they are spent, so the long-run rate is
exact; what a worker still holds can be spent after the bucket refilled, so over any
period a key is granted at most what the exact limit grants plus `(lease_tokens - 1)` per
worker process (all replicas' workers), and refused at most that many requests the exact
limit would grant (tokens held by an idle worker). tests/service/test_leased_limiter.py
checks both bounds against Redis.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Protocol

from service.redis_guard import RedisGuard

MICROSECONDS = 1_000_000


@dataclass(frozen=True)
class Policy:
    name: str
    per_minute: int
    burst: int

    @property
    def interval_us(self) -> float:
        """Microseconds one request's token takes to refill."""
        return 60 * MICROSECONDS / self.per_minute

    def scaled(self, share: int) -> Policy:
        """This policy split `share` ways (at least one request each)."""
        return Policy(self.name, max(1, self.per_minute // share), max(1, self.burst // share))


@dataclass(frozen=True)
class Decision:
    allowed: bool
    policy: Policy
    remaining: int
    retry_after_seconds: float
    reset_seconds: float

    @property
    def retry_after_header(self) -> int:
        """`Retry-After` in whole seconds, at least 1."""
        return max(1, math.ceil(self.retry_after_seconds))


def gcra(tat_us: float, now_us: float, cost: int, policy: Policy) -> tuple[bool, float, float]:
    """`(allowed, new_tat, retry_after_us)`; the Lua script below is its twin on Redis.

    A clock that goes backwards only makes `now` smaller, which never frees tokens. A TAT
    more than one burst ahead of `now` cannot come from a steady clock (the clock jumped
    back): it counts as a full bucket, so a jump of years limits a key for one burst's time,
    not for years.
    """
    span = policy.interval_us * policy.burst
    base = max(min(tat_us, now_us + span), now_us)
    new_tat = base + policy.interval_us * cost
    if new_tat - now_us > span:
        return False, base, new_tat - now_us - span
    return True, new_tat, 0.0


def decision_from(allowed: bool, occupied_us: float, retry_us: float, policy: Policy) -> Decision:
    """A decision from the bucket's occupancy (TAT - now) after the request."""
    span = policy.interval_us * policy.burst
    remaining = max(0, math.floor((span - occupied_us) / policy.interval_us + 1e-9))
    return Decision(
        allowed=allowed,
        policy=policy,
        remaining=remaining,
        retry_after_seconds=retry_us / MICROSECONDS,
        reset_seconds=max(0.0, occupied_us) / MICROSECONDS,
    )


class Limiter(Protocol):
    async def hit(self, key: str, policy: Policy, cost: int = 1) -> Decision: ...


class MemoryLimiter:
    """One process's buckets (the default; with N workers each holds its own)."""

    # The monotonic clock: a process's own buckets never see a wall-clock jump.
    def __init__(
        self, clock: Callable[[], float] = time.monotonic, max_keys: int = 100_000
    ) -> None:
        self.clock = clock
        self.max_keys = max_keys
        self.tats: dict[str, float] = {}

    async def hit(self, key: str, policy: Policy, cost: int = 1) -> Decision:
        return self.hit_now(key, policy, cost)

    def hit_now(self, key: str, policy: Policy, cost: int = 1) -> Decision:
        now = self.clock() * MICROSECONDS
        stored = self.tats.get(key)
        allowed, tat, retry = gcra(now if stored is None else stored, now, cost, policy)
        if allowed or (stored is not None and tat < stored):  # granted, or clamped
            if len(self.tats) >= self.max_keys:
                self._forget_full_buckets(now)
            self.tats[key] = tat
        return decision_from(allowed, tat - now, retry, policy)

    def _forget_full_buckets(self, now: float) -> None:
        self.tats = {key: tat for key, tat in self.tats.items() if tat > now}


# Takes up to ARGV[3] tokens, at least ARGV[4] (else none): {granted, occupancy, retry}.
# The exact limiter asks for exactly its cost; the leased one for a lease.
GCRA_SCRIPT = """
local interval = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local want = tonumber(ARGV[3])
local need = tonumber(ARGV[4])
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000000 + tonumber(clock[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
local span = interval * burst
local base = math.max(math.min(tat, now + span), now)
local grant = math.min(want, math.floor((span - (base - now)) / interval + 1e-9))
if grant < need then
  if tat > base then
    redis.call('SET', KEYS[1], tostring(base), 'PX', math.ceil((base - now) / 1000) + 1)
  end
  return {0, tostring(base - now), tostring(base + interval * need - now - span)}
end
local new_tat = base + interval * grant
redis.call('SET', KEYS[1], tostring(new_tat), 'PX', math.ceil((new_tat - now) / 1000) + 1)
return {grant, tostring(new_tat - now), '0'}
"""


class RedisLimiter:
    """Shared buckets in Redis, falling back to a local share when Redis fails."""

    prefix = "pokewatch:rl:"

    def __init__(self, guard: RedisGuard, workers: int) -> None:
        self.guard = guard
        self.workers = workers
        self.fallback = MemoryLimiter()
        self.script = guard.client.register_script(GCRA_SCRIPT)

    @property
    def degraded(self) -> bool:
        return self.guard.degraded

    async def warm_up(self) -> None:
        """Connect and load the script before traffic, so no request pays for it."""
        await self.guard.call(
            lambda: self.guard.client.script_load(GCRA_SCRIPT),
            timeout=max(1.0, self.guard.timeout_seconds * 10),
        )

    async def hit(self, key: str, policy: Policy, cost: int = 1) -> Decision:
        answer = await self.guard.call(
            lambda: self.script(
                keys=[self.prefix + key], args=[policy.interval_us, policy.burst, cost, cost]
            )
        )
        if answer is None:
            return self.fallback.hit_now(key, policy.scaled(self.workers), cost)
        allowed, occupied, retry = answer
        return decision_from(bool(allowed), float(occupied), float(retry), policy)

    async def close(self) -> None:
        await self.guard.close()


@dataclass
class Lease:
    """Tokens of one key this worker holds, and the shared bucket's occupancy when Redis
    last answered (for the RateLimit headers)."""

    tokens: int
    occupied_us: float
    at_us: float


class LeasedLimiter(RedisLimiter):
    """Shared buckets in Redis, taken `lease_tokens` at a time (see the module docstring
    for the bounds); the same fallback as `RedisLimiter` when Redis fails."""

    def __init__(
        self,
        guard: RedisGuard,
        workers: int,
        lease_tokens: int,
        clock: Callable[[], float] = time.monotonic,
        max_keys: int = 100_000,
    ) -> None:
        super().__init__(guard, workers)
        self.lease_tokens = lease_tokens
        self.clock = clock
        self.max_keys = max_keys
        self.leases: dict[str, Lease] = {}

    async def hit(self, key: str, policy: Policy, cost: int = 1) -> Decision:
        now = self.clock() * MICROSECONDS
        lease = self.leases.get(key)
        if lease is not None and lease.tokens >= cost:
            lease.tokens -= cost
            occupied = lease.occupied_us - (now - lease.at_us)
            return self._decision(True, occupied, 0.0, policy, lease.tokens)
        need = cost - (lease.tokens if lease else 0)
        answer = await self.guard.call(
            lambda: self.script(
                keys=[self.prefix + key],
                args=[policy.interval_us, policy.burst, max(self.lease_tokens, need), need],
            )
        )
        if answer is None:
            return self.fallback.hit_now(key, policy.scaled(self.workers), cost)
        granted, occupied, retry = int(answer[0]), float(answer[1]), float(answer[2])
        # Read again after the round trip: other requests of this key may have changed it.
        lease = self._lease(key)
        lease.tokens += granted
        lease.occupied_us, lease.at_us = occupied, self.clock() * MICROSECONDS
        if lease.tokens < cost:
            return self._decision(False, occupied, retry, policy, lease.tokens)
        lease.tokens -= cost
        return self._decision(True, occupied, 0.0, policy, lease.tokens)

    def _lease(self, key: str) -> Lease:
        lease = self.leases.get(key)
        if lease is None:
            if len(self.leases) >= self.max_keys:
                # Empty leases hold nothing: forgetting them changes no decision.
                self.leases = {name: held for name, held in self.leases.items() if held.tokens}
            lease = self.leases[key] = Lease(0, 0.0, 0.0)
        return lease

    @staticmethod
    def _decision(
        allowed: bool, occupied_us: float, retry_us: float, policy: Policy, held: int
    ) -> Decision:
        decision = decision_from(allowed, occupied_us, retry_us, policy)
        return replace(decision, remaining=min(policy.burst, decision.remaining + held))
