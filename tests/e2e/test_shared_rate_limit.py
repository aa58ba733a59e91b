"""The per-key limit holds exactly across two replicas x two workers sharing one Redis."""

import asyncio
import os
from collections import Counter
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import httpx
import pytest

from service.keys import KeysFile, Scope
from tests.e2e.conftest import bentoml_serve

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

BURST = 30
SHARED_REDIS = "redis://127.0.0.1:6379/0"


@pytest.fixture(scope="module")
def replicas(model_tag: str) -> Iterator[list[str]]:
    env = {
        "POKEWATCH_SERVICE__WORKERS": "2",
        "POKEWATCH_SECURITY__RATE_LIMIT__BACKEND": "redis",
        "POKEWATCH_REDIS__URL": SHARED_REDIS,
        "POKEWATCH_SECURITY__RATE_LIMIT__BURST": str(BURST),
        # One token a minute: nothing refills while the test runs.
        "POKEWATCH_SECURITY__RATE_LIMIT__PER_MINUTE": "1",
        "POKEWATCH_SECURITY__RATE_LIMIT__SCOPE_COSTS": "{}",
        # 90 requests at once saturate this 2-core machine: event-loop delay counts against
        # the Redis timeout, and a timed-out call falls back to local buckets (by design,
        # see test_redis_faults.py). Exactness is the claim here, so no fallback may happen.
        "POKEWATCH_REDIS__TIMEOUT_MS": "2000",
    }
    with ExitStack() as stack:
        yield [stack.enter_context(bentoml_serve("service:PokeWatch", env=env)) for _ in range(2)]


def fresh_key() -> str:
    keys = KeysFile(Path(os.environ["POKEWATCH_SECURITY__KEYS_FILE"]))
    return keys.create("shared-limit", frozenset(Scope), "test")[0]


async def fire(bases: list[str], key: str, count: int) -> list[httpx.Response]:
    limits = httpx.Limits(max_connections=64)
    async with httpx.AsyncClient(limits=limits, timeout=10) as client:
        return await asyncio.gather(
            *(
                client.post(
                    f"{bases[n % len(bases)]}/fair_price",
                    json={"card_id": "tcg-133777"},
                    headers={"X-API-Key": key},
                )
                for n in range(count)
            )
        )


def test_exactly_the_burst_succeeds_across_replicas_and_workers(replicas: list[str]) -> None:
    key, other_key = fresh_key(), fresh_key()
    responses = asyncio.run(fire(replicas, key, 3 * BURST))
    statuses = Counter(response.status_code for response in responses)
    assert statuses == {200: BURST, 429: 2 * BURST}
    served_by = Counter(response.url.port for response in responses if response.status_code == 200)
    assert len(served_by) == 2  # both replicas granted part of the one shared quota
    limited = next(response for response in responses if response.status_code == 429)
    assert int(limited.headers["retry-after"]) >= 1
    assert limited.headers["content-type"] == "application/problem+json"
    assert limited.json()["type"].endswith("/rate-limited")
    assert limited.headers["x-ratelimit-remaining"] == "0"
    assert limited.headers["ratelimit-policy"].startswith(f'"default";q={BURST}')
    # Another key has its own, untouched bucket.
    other = Counter(r.status_code for r in asyncio.run(fire(replicas, other_key, 5)))
    assert other == {200: 5}
