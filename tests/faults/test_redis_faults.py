"""Redis failing under load, for the shared rate limiter and the shared prediction cache:
two `bentoml serve` replicas x two workers on a private redis-server, 16 connections of
mixed requests the whole time, while Redis is killed, paused (SIGSTOP), slowed (DEBUG
SLEEP), restarted empty and filled to `maxmemory`. Not one 5xx, not one failed connection,
and the shared limit works again afterwards."""

import asyncio
import os
import random
import signal
import socket
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field

import httpx
import pytest

from tests.e2e.conftest import bentoml_serve
from tests.faults.conftest import mixed_request
from tests.service.test_redis_faults import RedisServer, launch

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.faults]

CONNECTIONS = 16


@pytest.fixture(scope="module")
def redis_server() -> Iterator[RedisServer]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = RedisServer(port, launch(port))
    yield server
    server.stop()


@pytest.fixture(scope="module")
def replicas(model_tag: str, redis_server: RedisServer) -> Iterator[list[str]]:
    env = {
        "POKEWATCH_SERVICE__WORKERS": "2",
        "POKEWATCH_SECURITY__RATE_LIMIT__BACKEND": "redis",
        "POKEWATCH_REDIS__URL": redis_server.url,
        "POKEWATCH_REDIS__COOL_DOWN_SECONDS": "0.5",
    }
    with ExitStack() as stack:
        yield [stack.enter_context(bentoml_serve("service:PokeWatch", env=env)) for _ in range(2)]


@dataclass
class Load:
    """Mixed requests on `CONNECTIONS` connections until stopped; every outcome counted."""

    bases: list[str]
    key: str
    statuses: Counter[int] = field(default_factory=Counter)
    failures: list[str] = field(default_factory=list)
    running: bool = True

    async def connection(self, number: int) -> None:
        rng = random.Random(number)
        headers = {"X-API-Key": self.key}
        async with httpx.AsyncClient(headers=headers, timeout=20) as client:
            while self.running:
                base = self.bases[rng.randrange(len(self.bases))]
                try:
                    response = await mixed_request(client, base, rng)
                except httpx.HTTPError as error:
                    self.failures.append(f"{type(error).__name__}: {error}")
                    continue
                self.statuses[response.status_code] += 1
                if response.status_code >= 500:
                    self.failures.append(f"{response.status_code} {response.text[:300]}")

    async def run_while(self, faults: Callable[[], None]) -> None:
        tasks = [asyncio.create_task(self.connection(n)) for n in range(CONNECTIONS)]
        await asyncio.to_thread(faults)
        self.running = False
        await asyncio.gather(*tasks)


def degraded(base: str) -> float:
    text = httpx.get(base + "/metrics", timeout=10).text
    values = [
        float(line.split()[-1])
        for line in text.splitlines()
        if line.startswith("pokewatch_redis_degraded{")
    ]
    return max(values, default=0.0)


def test_no_5xx_while_redis_is_killed_paused_slowed_emptied_and_full(
    replicas: list[str], redis_server: RedisServer, api_key: str
) -> None:
    log: list[str] = []
    seen_degraded: list[float] = []  # the faults reached the service: it fell back

    def faults() -> None:
        client = redis_server.client()
        time.sleep(2)
        log.append("paused (SIGSTOP) for 3 s")
        os.kill(redis_server.process.pid, signal.SIGSTOP)
        time.sleep(1.5)
        seen_degraded.append(max(degraded(base) for base in replicas))
        time.sleep(1.5)
        os.kill(redis_server.process.pid, signal.SIGCONT)
        time.sleep(2)
        log.append("slowed: DEBUG SLEEP 2")
        client.execute_command("DEBUG", "SLEEP", "2")  # type: ignore[no-untyped-call]
        time.sleep(2)
        log.append("killed for 3 s, restarted empty")
        redis_server.stop()
        time.sleep(3)
        redis_server.start()
        time.sleep(2)
        log.append("maxmemory full (noeviction) for 3 s")
        client = redis_server.client()
        used = int(client.info("memory")["used_memory"])
        client.config_set("maxmemory-policy", "noeviction")
        client.config_set("maxmemory", str(used))
        time.sleep(3)
        client.config_set("maxmemory", "0")
        time.sleep(2)

    load = Load(replicas, api_key)
    started = time.monotonic()
    asyncio.run(load.run_while(faults))
    seconds = time.monotonic() - started
    total = sum(load.statuses.values())
    print(f"{total} requests in {seconds:.0f} s through {log}: {dict(load.statuses)}")
    assert seen_degraded == [1.0]
    assert load.failures == []
    assert set(load.statuses) <= {200, 404}, load.statuses
    assert total > 500
    # Back on the shared Redis: no worker is degraded any more.
    deadline = time.monotonic() + 10
    while any(degraded(base) for base in replicas):
        assert time.monotonic() < deadline, "still degraded after the faults ended"
        time.sleep(0.5)
