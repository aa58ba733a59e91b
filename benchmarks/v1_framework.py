"""What the v1 app's framework costs per request: Starlette (what `service.v1` is) against
FastAPI, the same route and answer, called in-process over ASGI.

Both answer `GET /v1/cards/{card_id}` with the bytes of `Catalog.detail` for the bundled
sample (a `mean3` model trained here, in memory); nothing else differs. Rounds alternate
between the two so machine noise hits both alike; the table gives the median round.

    .venv/bin/python -m benchmarks.v1_framework [--requests 20000] [--rounds 7]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from collections.abc import Callable
from typing import Any

import orjson
from fastapi import FastAPI
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message

from model.artifact import price_table
from model.catalog import Catalog
from model.data import load_prices
from model.predictor import Predictor
from model.settings import ModelSettings
from model.training import train


def catalog() -> Catalog:
    settings = ModelSettings(strategy="mean3")
    trained = train(load_prices().valid, settings).trained
    return Catalog(Predictor(price_table(trained), "bench", settings.thresholds))


def apps(answer: Callable[[str], bytes]) -> dict[str, ASGIApp]:
    async def starlette_card(request: Request) -> Response:
        return Response(answer(request.path_params["card_id"]), media_type="application/json")

    fastapi = FastAPI()

    @fastapi.get("/v1/cards/{card_id}")
    async def fastapi_card(card_id: str) -> Response:
        return Response(answer(card_id), media_type="application/json")

    starlette = Starlette(routes=[Route("/v1/cards/{card_id}", starlette_card, methods=["GET"])])
    return {"starlette": starlette, "fastapi": fastapi}


async def call(app: ASGIApp, path: str) -> int:
    scope: dict[str, Any] = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": [(b"host", b"bench"), (b"accept", b"application/json")],
        "client": ("127.0.0.1", 1),
        "server": ("127.0.0.1", 3000),
    }
    status = 0

    async def receive() -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Message) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]

    await app(scope, receive, send)
    return status


async def round_seconds(app: ASGIApp, paths: list[str]) -> float:
    started = time.perf_counter()
    for path in paths:
        if await call(app, path) != 200:
            raise SystemExit(f"{path}: not 200")
    return time.perf_counter() - started


async def main(requests: int, rounds: int) -> None:
    items = catalog()
    paths = [f"/v1/cards/{items.ids[n % len(items)]}" for n in range(requests)]

    def answer(card_id: str) -> bytes:
        return orjson.dumps(items.detail(card_id, False))

    frameworks = apps(answer)
    timings: dict[str, list[float]] = {name: [] for name in frameworks}
    for app in frameworks.values():  # warm-up
        await round_seconds(app, paths[:1000])
    for _ in range(rounds):
        for name, app in frameworks.items():
            timings[name].append(await round_seconds(app, paths))
    median = {
        name: statistics.median(seconds) * 1e6 / requests for name, seconds in timings.items()
    }
    print(f"{requests} requests x {rounds} rounds, in-process ASGI, median round")
    print("| framework | µs/request | vs Starlette |")
    print("|---|---:|---:|")
    for name, micros in median.items():
        print(f"| {name} | {micros:.1f} | {micros / median['starlette']:.2f}x |")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=7)
    arguments = parser.parse_args()
    asyncio.run(main(arguments.requests, arguments.rounds))
