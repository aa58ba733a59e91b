"""The FastAPI peer: what a user would write with PokeWatch's own library pieces.

Same work per request as the BentoML service: the API key checked against the keys file
(`KeyStore`), the key's quota decided by the Redis GCRA script (`RedisLimiter` behind a
`RedisGuard`), the answer from `Answers` (per-worker LRU, then Redis, then the model).
Wired the FastAPI way: a dependency for auth and rate limit, a pydantic body, a `Response`
with the bytes `Answers` already encoded. `GET /v1/cards/{card_id}` answers the card's
detail the way PokeWatch's v1 route does (`Catalog.detail`, its ETag and Cache-Control).
Run: `uvicorn benchmarks.peer_fastapi:app`.
"""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated, Any

import orjson
from fastapi import Depends, FastAPI, Header, HTTPException, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field

from benchmarks.common import load_predictor
from model.catalog import Catalog
from model.settings import load_settings
from service.answers import Answers, build_cache
from service.keys import KeyRecord, KeyStore, Scope
from service.ratelimit import Policy, RedisLimiter
from service.redis_guard import RedisGuard
from service.settings import ServiceSettings
from service.v1 import VARY, CachePolicy, entity_tag

SETTINGS = load_settings(ServiceSettings)
LIMITS = SETTINGS.security.rate_limit


def guard(component: str) -> RedisGuard:
    found = RedisGuard.from_settings(SETTINGS.redis, component)
    assert found is not None, "the peer needs POKEWATCH_REDIS__URL"
    return found


KEYS = KeyStore(Path(SETTINGS.security.keys_file), SETTINGS.security.keys_reload_seconds)
LIMITER = RedisLimiter(guard("ratelimit"), workers=SETTINGS.service.workers)
POLICY = Policy("default", LIMITS.per_minute, LIMITS.burst)
ANSWERS: dict[str, Answers] = {}
CACHE_POLICY = CachePolicy(SETTINGS.schedule)


@asynccontextmanager
async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
    predictor = load_predictor(SETTINGS)
    ANSWERS["answers"] = Answers(
        predictor,
        Catalog(predictor),
        build_cache(SETTINGS.cache, guard("cache")),
        SETTINGS.service.stale_after_hours,
    )
    await LIMITER.warm_up()
    gc.collect()
    gc.freeze()
    yield
    await LIMITER.close()


app = FastAPI(lifespan=lifespan)


def authorized(scope: Scope, cost: int) -> Any:
    async def dependency(x_api_key: Annotated[str | None, Header()] = None) -> KeyRecord:
        record = KEYS.verify(x_api_key) if x_api_key else None
        if record is None:
            raise HTTPException(401, "a valid API key is required (X-API-Key header)")
        if scope not in record.scopes:
            raise HTTPException(403, f"this key lacks the {scope.value!r} scope")
        decision = await LIMITER.hit(f"key:{record.key_id}", POLICY, cost)
        if not decision.allowed:
            raise HTTPException(
                429, "rate limited", headers={"Retry-After": str(decision.retry_after_header)}
            )
        return record

    return Depends(dependency)


class Query(BaseModel):
    card_id: str = Field(min_length=1, max_length=128)
    date: str | None = None


class Batch(BaseModel):
    items: list[Any] = Field(min_length=1)


def answer(body: tuple[int, bytes]) -> Response:
    return Response(body[1], status_code=body[0], media_type="application/json")


@app.post("/fair_price", dependencies=[authorized(Scope.PREDICT, 1)])
async def fair_price(query: Query) -> Response:
    return answer(await ANSWERS["answers"].fair_price(query.card_id, query.date))


@app.post("/batch_predict", dependencies=[authorized(Scope.BATCH, LIMITS.scope_costs["batch"])])
async def batch_predict(batch: Batch) -> Response:
    if len(batch.items) > SETTINGS.service.max_batch_size:
        return JSONResponse({"error": "batch_too_large"}, status_code=413)
    return answer(await ANSWERS["answers"].batch(batch.items))


@app.get("/v1/cards/{card_id}", dependencies=[authorized(Scope.PREDICT, 1)])
async def card(card_id: str, request: Request) -> Response:
    answers = ANSWERS["answers"]
    stale = answers.stale()
    tag = entity_tag(answers.version, stale, request, "application/json")
    headers = {
        "etag": tag,
        "cache-control": f"private, max-age={CACHE_POLICY.max_age(None)}",
        "vary": VARY,
    }
    if request.headers.get("if-none-match") == tag:
        return Response(status_code=304, headers=headers)
    detail = answers.catalog.detail(card_id, stale)
    return Response(orjson.dumps(detail), media_type="application/json", headers=headers)
