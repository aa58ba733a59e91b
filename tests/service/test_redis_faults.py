"""Redis stopped, paused or slowed under the rate limiter: no 5xx, no hang, degraded state.

Each test runs its own redis-server on a free port (never the shared one).
"""

import asyncio
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import redis
from prometheus_client import REGISTRY
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route

from model.settings import load_settings
from service.edge import AuthMiddleware, RateLimitMiddleware
from service.keys import KeysFile, KeyStore, Scope
from service.metrics import service_metrics
from service.ratelimit import Policy, RedisLimiter
from service.redis_guard import RedisGuard, degraded_metric
from service.security import Security
from service.settings import RedisSettings, ServiceSettings

pytestmark = pytest.mark.skipif(shutil.which("redis-server") is None, reason="needs redis-server")

TIMEOUT = 0.05
COOL_DOWN = 0.5
# A decision may take the command timeout and the outer guard (2x), plus scheduling slack.
BOUND_SECONDS = 0.5


@dataclass
class RedisServer:
    port: int
    process: subprocess.Popen[bytes]

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def client(self) -> redis.Redis:
        return redis.Redis(port=self.port, socket_timeout=5)

    def stop(self) -> None:
        self.process.kill()
        self.process.wait()

    def start(self) -> None:
        self.process = launch(self.port)


def launch(port: int) -> subprocess.Popen[bytes]:
    process = subprocess.Popen(
        [
            "redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
            "--appendonly", "no", "--enable-debug-command", "yes",
        ],
        stdout=subprocess.DEVNULL,
    )  # fmt: skip
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            if redis.Redis(port=port, socket_timeout=0.2).ping():
                return process
        except redis.ConnectionError:
            time.sleep(0.05)
    process.kill()
    raise RuntimeError(f"redis-server did not start on port {port}")


@pytest.fixture
def private_redis() -> Iterator[RedisServer]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = RedisServer(port, launch(port))
    yield server
    server.process.kill()
    server.process.wait()


def degraded_gauge() -> float:
    value = REGISTRY.get_sample_value("pokewatch_redis_degraded", {"component": "ratelimit"})
    return value or 0.0


def limiter_for(server: RedisServer) -> RedisLimiter:
    service_metrics()  # registers the gauge in this process
    guard = RedisGuard(
        "ratelimit",
        RedisSettings(
            url=server.url, timeout_ms=round(TIMEOUT * 1000), cool_down_seconds=COOL_DOWN
        ),
        on_degraded=degraded_metric("ratelimit"),
    )
    return RedisLimiter(guard, workers=2)


POLICY = Policy("p", per_minute=600, burst=10)


async def timed_hit(limiter: RedisLimiter, key: str = "k") -> float:
    started = time.perf_counter()
    await limiter.hit(key, POLICY)
    return time.perf_counter() - started


def test_stopped_redis_falls_back_and_recovers(private_redis: RedisServer) -> None:
    async def scenario() -> None:
        limiter = limiter_for(private_redis)
        await limiter.warm_up()
        await limiter.hit("k", POLICY)
        assert private_redis.client().exists("pokewatch:rl:k")
        assert not limiter.degraded
        private_redis.stop()
        latencies = [await timed_hit(limiter) for _ in range(20)]
        assert max(latencies) < BOUND_SECONDS
        assert limiter.degraded
        assert degraded_gauge() == 1
        # The local share: burst 10 over 2 workers.
        local = [(await limiter.hit("fresh", POLICY)).allowed for _ in range(8)]
        assert local == [True] * 5 + [False] * 3
        private_redis.start()
        await asyncio.sleep(COOL_DOWN + 0.1)
        await limiter.hit("k", POLICY)
        assert not limiter.degraded
        assert degraded_gauge() == 0
        await limiter.close()

    asyncio.run(scenario())


@pytest.mark.parametrize("fault", ["CLIENT PAUSE 2000 ALL", "DEBUG SLEEP 1"])
def test_paused_or_slow_redis_never_hangs(private_redis: RedisServer, fault: str) -> None:
    async def scenario() -> None:
        limiter = limiter_for(private_redis)
        await limiter.warm_up()
        assert (await limiter.hit("k", POLICY)).allowed
        blocker = subprocess.Popen(
            ["redis-cli", "-p", str(private_redis.port), *fault.split()],
            stdout=subprocess.DEVNULL,
        )
        await asyncio.sleep(0.1)
        latencies = [await timed_hit(limiter) for _ in range(10)]
        assert max(latencies) < BOUND_SECONDS
        assert limiter.degraded
        blocker.wait()
        await limiter.close()

    asyncio.run(scenario())


def test_service_answers_no_5xx_while_redis_is_down(
    private_redis: RedisServer, tmp_path: Path
) -> None:
    keys = KeysFile(tmp_path / "keys.json")
    raw, _ = keys.create("fault", frozenset(Scope), "test")
    security = Security(
        load_settings(ServiceSettings), KeyStore(keys.path, 0), limiter_for(private_redis)
    )

    async def ok(_: object) -> JSONResponse:
        return JSONResponse({"ok": True})

    app = AuthMiddleware(
        RateLimitMiddleware(
            Starlette(routes=[Route("/fair_price", ok, methods=["POST"])]), security
        ),
        security,
    )

    async def scenario() -> list[int]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            statuses = []
            for index in range(40):
                if index == 10:
                    private_redis.stop()
                if index == 30:
                    private_redis.start()
                    await asyncio.sleep(COOL_DOWN + 0.1)
                response = await client.post("/fair_price", headers={"X-API-Key": raw})
                statuses.append(response.status_code)
            return statuses

    statuses = asyncio.run(scenario())
    assert set(statuses) <= {200, 429}
    assert statuses[:10] == [200] * 10
