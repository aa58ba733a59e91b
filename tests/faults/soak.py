"""The soak (`make soak`, not in `make test`): `python -m tests.faults.soak --minutes 30`.

One `bentoml serve` (2 workers, Redis limiter and cache on a private redis-server, a private
store and keys file) under a steady moderate load for `--minutes`, while the real commands
change everything around it:

- every 2 minutes a model promotion (`pokewatch promote`, alternating two stored versions;
  each promotion is a new production version, published);
- every minute a key created (`pokewatch keys create`) and the previous one revoked
  (`pokewatch keys revoke`), then probed until every worker refuses it;
- every 5 minutes Redis killed and restarted empty;
- every 10 minutes the daily scoring (`pokewatch score`).

It reports requests, 5xx (must be 0), p50/p99 per 5-minute window (flat: no window's p99
over 3x the first's), RSS per worker after the warm-up and at the end (within 10 %), that
every answer came from a production model, and how long each revoked key took to be
refused (within `keys_reload_seconds` plus one second of slack). Exit 1 when a check fails.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import numpy as np
import psutil

from model.data import load_prices
from model.settings import ModelSettings
from model.training import train
from service.store import JobsFile, ModelRegistry, Publications, Stage, Store
from tests.e2e.conftest import bentoml_serve, free_port
from tests.faults.conftest import LOAD_CARDS, mixed_request
from tests.service.test_redis_faults import RedisServer, launch

POKEWATCH = Path(sys.executable).with_name("pokewatch")
WINDOW_SECONDS = 300
KEYS_RELOAD_SECONDS = 1.0
REVOCATION_SLACK_SECONDS = 1.0
WARM_UP_SECONDS = 60
MAX_P99_GROWTH = 3.0
MAX_RSS_GROWTH = 0.10


@dataclass
class Record:
    started: float
    statuses: Counter[int] = field(default_factory=Counter)
    failures: list[str] = field(default_factory=list)
    latencies: dict[int, list[float]] = field(default_factory=dict)  # window -> seconds
    versions: Counter[str] = field(default_factory=Counter)
    revocations: list[float] = field(default_factory=list)
    events: Counter[str] = field(default_factory=Counter)

    def add(self, at: float, seconds: float, response: httpx.Response) -> None:
        self.statuses[response.status_code] += 1
        window = int((at - self.started) // WINDOW_SECONDS)
        self.latencies.setdefault(window, []).append(seconds)
        if response.status_code >= 500:
            self.failures.append(f"{response.status_code} {response.text[:200]}")
        elif response.status_code == 200 and response.request.method == "POST":
            self.versions[response.json()["model_version"]] += 1


def command(env: dict[str, str], *args: str) -> str:
    done = subprocess.run(
        [str(POKEWATCH), *args], env=env, capture_output=True, text=True, timeout=600, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"pokewatch {' '.join(args)} failed: {done.stderr[-2000:]}")
    return done.stdout.strip()


def worker_rss(server_pid: int) -> dict[int, int]:
    """RSS of each BentoML worker process (the children that run the service)."""
    children = psutil.Process(server_pid).children(recursive=True)
    return {
        child.pid: child.memory_info().rss
        for child in children
        if "_bentoml_impl.worker.service" in " ".join(child.cmdline())
    }


async def load(base: str, key: str, record: Record, until: float, rate: float) -> None:
    """`rate` requests a second in all, on 8 connections, mixed POST and v1 GET."""
    pause = 8 / rate

    async def connection(number: int) -> None:
        rng = random.Random(number)
        async with httpx.AsyncClient(headers={"X-API-Key": key}, timeout=30) as client:
            while time.monotonic() < until:
                sent = time.monotonic()
                try:
                    response = await mixed_request(client, base, rng)
                except httpx.HTTPError as error:
                    record.failures.append(f"{type(error).__name__}: {error}")
                    continue
                record.add(sent, time.monotonic() - sent, response)
                await asyncio.sleep(max(0.0, pause - (time.monotonic() - sent)))

    await asyncio.gather(*(connection(number) for number in range(8)))


async def refused_after(base: str, key: str) -> float:
    """Seconds until 10 requests in a row with `key` are refused (both workers)."""
    started = time.monotonic()
    async with httpx.AsyncClient(headers={"X-API-Key": key}, timeout=30) as client:
        in_a_row = 0
        while in_a_row < 10:
            response = await client.post(base + "/fair_price", json={"card_id": LOAD_CARDS[0]})
            in_a_row = in_a_row + 1 if response.status_code == 401 else 0
            if time.monotonic() - started > 60:
                break
    return time.monotonic() - started


async def changes(
    base: str,
    env: dict[str, str],
    store: Store,
    redis: RedisServer,
    record: Record,
    until: float,
    versions: list[str],
) -> None:
    """The scheduled changes, each at its period from the start."""
    previous_key: str | None = None
    minute = 0
    while (next_at := record.started + 60 * (minute + 1)) < until:
        await asyncio.sleep(max(0.0, next_at - time.monotonic()))
        minute += 1
        raw = await asyncio.to_thread(command, env, "keys", "create", "--name", f"soak-{minute}")
        record.events["key created"] += 1
        if previous_key is not None:
            key_id = previous_key.split("_")[2]
            await asyncio.to_thread(command, env, "keys", "revoke", key_id)
            revoked_at = time.monotonic()
            await refused_after(base, previous_key)
            record.revocations.append(time.monotonic() - revoked_at)
            record.events["key revoked"] += 1
        previous_key = raw
        if minute % 2 == 0:
            await asyncio.to_thread(command, env, "promote", versions[(minute // 2) % 2])
            record.events["promotion"] += 1
        if minute % 5 == 0:
            redis.stop()
            redis.start()
            record.events["redis restart"] += 1
        if minute % 10 == 0:
            await asyncio.to_thread(command, env, "score")
            record.events["daily score"] += 1


def percentiles(seconds: list[float]) -> tuple[float, float]:
    values = np.array(seconds) * 1000
    return float(np.percentile(values, 50)), float(np.percentile(values, 99))


def report(record: Record, rss: tuple[dict[int, int], dict[int, int]], store: Store) -> list[str]:
    """Print the figures; the failed checks."""
    failed: list[str] = []
    total = sum(record.statuses.values())
    fives = sum(count for status, count in record.statuses.items() if status >= 500)
    print(f"requests: {total:,}; statuses {dict(sorted(record.statuses.items()))}; 5xx: {fives}")
    print(f"changes: {dict(record.events)}")
    if fives or record.failures:
        failed.append(f"{fives} 5xx, {len(record.failures)} failures: {record.failures[:5]}")
    windows = sorted(record.latencies)
    first_p99 = percentiles(record.latencies[windows[0]])[1]
    for window in windows:
        p50, p99 = percentiles(record.latencies[window])
        count = len(record.latencies[window])
        print(f"window {window + 1} ({count:,} requests): p50 {p50:.1f} ms, p99 {p99:.1f} ms")
        if p99 > MAX_P99_GROWTH * max(first_p99, 5.0):
            failed.append(f"window {window + 1}: p99 {p99:.1f} ms > {MAX_P99_GROWTH}x the first")
    start, end = rss
    for pid, before in start.items():
        after = end.get(pid)
        if after is None:
            failed.append(f"worker {pid} is gone (restarted?)")
            continue
        growth = after / before - 1
        print(
            f"worker {pid}: RSS {before / 2**20:.0f} MB -> {after / 2**20:.0f} MB ({growth:+.1%})"
        )
        if growth > MAX_RSS_GROWTH:
            failed.append(f"worker {pid} RSS grew {growth:.1%}")
    production = {model.tag for model in store.registry.production()}
    print(f"answers by model: {len(record.versions)} versions, all production: "
          f"{set(record.versions) <= production}")  # fmt: skip
    if not set(record.versions) <= production:
        failed.append(f"answers from non-production models: {set(record.versions) - production}")
    if record.revocations:
        worst = max(record.revocations)
        print(f"{len(record.revocations)} revoked keys, each refused within {worst:.2f} s")
        if worst > KEYS_RELOAD_SECONDS + REVOCATION_SLACK_SECONDS:
            failed.append(f"a revoked key was served {worst:.2f} s after its revocation")
    return failed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=30)
    parser.add_argument("--rate", type=float, default=100, help="requests a second in all")
    options = parser.parse_args()
    home = Path(tempfile.mkdtemp(prefix="pokewatch-soak-"))
    keys_file = home / "keys.json"
    port = free_port()
    redis = RedisServer(port, launch(port))
    env = {
        **os.environ,
        "BENTOML_HOME": str(home),
        "POKEWATCH_MODEL__STRATEGY": "last",
        "POKEWATCH_SECURITY__KEYS_FILE": str(keys_file),
        "POKEWATCH_SECURITY__KEYS_RELOAD_SECONDS": str(KEYS_RELOAD_SECONDS),
        "POKEWATCH_SECURITY__RATE_LIMIT__BACKEND": "redis",
        "POKEWATCH_SECURITY__RATE_LIMIT__PER_MINUTE": "1000000",
        "POKEWATCH_SECURITY__RATE_LIMIT__BURST": "100000",
        "POKEWATCH_REDIS__URL": redis.url,
        "POKEWATCH_SERVICE__WORKERS": "2",
        "POKEWATCH_SERVICE__RELOAD_SECONDS": "5",
        "OTEL_SDK_DISABLED": "true",
        "BENTOML_DO_NOT_TRACK": "true",
    }
    store = Store(
        ModelRegistry.at(home / "models"),
        Publications(home / "pokewatch" / "published"),
        JobsFile(home / "pokewatch" / "jobs.json"),
    )
    trained = train(load_prices().valid, ModelSettings(strategy="last")).trained
    versions = [store.registry.save(trained, Stage.PRODUCTION) for _ in range(2)]
    key = command(env, "keys", "create", "--name", "soak-load")
    os.environ.update(
        {name: env[name] for name in env if name.startswith(("POKEWATCH", "BENTOML"))}
    )
    print(f"soak: {options.minutes:g} min at {options.rate:g} req/s; store {home}", flush=True)
    try:
        with bentoml_serve("service:PokeWatch", env=env) as base:
            server_pid = next(
                process.pid
                for process in psutil.process_iter(["cmdline"])
                if "serve" in (process.info["cmdline"] or [])
                and base.rsplit(":", 1)[1] in (process.info["cmdline"] or [])
            )
            record = Record(time.monotonic())
            until = record.started + options.minutes * 60

            async def soak() -> tuple[dict[int, int], dict[int, int]]:
                running = asyncio.gather(
                    load(base, key, record, until, options.rate),
                    changes(base, env, store, redis, record, until, versions),
                )
                await asyncio.sleep(min(WARM_UP_SECONDS, options.minutes * 30))
                start = worker_rss(server_pid)
                await running
                return start, worker_rss(server_pid)

            rss = asyncio.run(soak())
    finally:
        redis.stop()
    failed = report(record, rss, store)
    for failure in failed:
        print(f"FAILED: {failure}")
    print("soak passed" if not failed else f"soak failed: {len(failed)} checks")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
