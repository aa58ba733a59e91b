"""GCRA arithmetic against a pure model with an injected clock."""

import math

import hypothesis.strategies as st
from hypothesis import settings
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from service.ratelimit import MemoryLimiter, Policy, gcra

POLICY = Policy("test", per_minute=60, burst=5)


class FakeClock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def test_burst_then_refill() -> None:
    clock = FakeClock()
    limiter = MemoryLimiter(clock)
    decisions = [limiter.hit_now("k", POLICY) for _ in range(6)]
    assert [decision.allowed for decision in decisions] == [True] * 5 + [False]
    assert [decision.remaining for decision in decisions[:5]] == [4, 3, 2, 1, 0]
    assert decisions[5].retry_after_header == 1
    clock.now += 1.0
    assert limiter.hit_now("k", POLICY).allowed
    assert not limiter.hit_now("k", POLICY).allowed


def test_cost_and_keys_are_separate() -> None:
    limiter = MemoryLimiter(FakeClock())
    assert limiter.hit_now("a", POLICY, cost=5).allowed
    assert not limiter.hit_now("a", POLICY).allowed
    assert limiter.hit_now("b", POLICY).allowed


def test_denied_cost_larger_than_burst_never_passes() -> None:
    allowed, _, retry = gcra(0.0, 0.0, 6, POLICY)
    assert (allowed, retry > 0) == (False, True)


class BucketMachine(RuleBasedStateMachine):
    """Never more than burst + rate·Δt granted, Δt the span of clock readings seen: a clock
    going backwards grants nothing beyond what that span already allows."""

    @initialize(per_minute=st.integers(1, 600), burst=st.integers(1, 20))
    def start(self, per_minute: int, burst: int) -> None:
        self.policy = Policy("p", per_minute, burst)
        self.clock = FakeClock()
        self.earliest_time = self.latest_time = self.clock.now
        self.limiter = MemoryLimiter(self.clock)
        self.granted = 0

    @rule(seconds=st.floats(0, 30))
    def advance(self, seconds: float) -> None:
        self.clock.now += seconds
        self.latest_time = max(self.latest_time, self.clock.now)

    @rule(seconds=st.floats(0, 30))
    def go_back(self, seconds: float) -> None:
        before = self.granted
        self.clock.now -= seconds
        self.earliest_time = min(self.earliest_time, self.clock.now)
        for _ in range(self.policy.burst + 1):
            if self.limiter.hit_now("k", self.policy).allowed:
                self.granted += 1
        # Going back may not grant more than the time already seen allows.
        assert self.granted - before <= self.policy.burst

    @rule(cost=st.integers(1, 3))
    def hit(self, cost: int) -> None:
        decision = self.limiter.hit_now("k", self.policy, cost)
        if decision.allowed:
            self.granted += cost
            assert decision.remaining >= 0
        else:
            assert decision.retry_after_seconds > 0
            assert decision.retry_after_header >= 1

    @invariant()
    def never_more_than_burst_plus_refill(self) -> None:
        if not hasattr(self, "policy"):
            return
        elapsed = self.latest_time - self.earliest_time
        refilled = elapsed * self.policy.per_minute / 60
        assert self.granted <= self.policy.burst + math.floor(refilled + 1e-6)


TestBucketMachine = BucketMachine.TestCase
TestBucketMachine.settings = settings(max_examples=60, stateful_step_count=30, deadline=None)


def test_a_clock_jumping_back_years_limits_a_key_for_one_token_not_for_years() -> None:
    clock = FakeClock()
    limiter = MemoryLimiter(clock)
    assert all(limiter.hit_now("k", POLICY).allowed for _ in range(5))
    clock.now -= 10 * 365 * 86_400
    refused = limiter.hit_now("k", POLICY)
    assert not refused.allowed
    assert refused.retry_after_header == 1  # one interval (60/min), not ten years
    clock.now += 1.0
    assert limiter.hit_now("k", POLICY).allowed


def test_the_in_process_limiters_run_on_the_monotonic_clock() -> None:
    import time

    assert MemoryLimiter().clock is time.monotonic
