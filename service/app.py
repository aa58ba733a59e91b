"""The PokeWatch BentoML service: a thin class over `Serving` (what to answer from) and
`Answers` (predictor, cache, metrics).

The class declares the model BentoML's own store holds at import time (`model_ref`): the one
`bentoml build` packs into the Bento and the one a new deployment serves first. While it
runs, each worker follows the shared store (`service.store`): the newest production model
and its newest published day, swapped in without a restart.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from typing import Annotated, Any

import bentoml
import orjson
from pydantic import Field
from starlette.responses import Response

from model.settings import load_settings
from service.answers import Answers, Body, build_cache
from service.connections import guard_connections
from service.dashboard import build_dashboard
from service.direct import DirectApiMiddleware
from service.errors import error_body
from service.logs import configure_worker_logging
from service.middleware import (
    DASHBOARD_PATH,
    DASHBOARD_PREFIX,
    DOCS_PATHS,
    METRICS_PATHS,
    PROBE_PATHS,
    AuthMiddleware,
    EdgeMiddleware,
    RateLimitMiddleware,
    RequestCheckMiddleware,
    RouteMethods,
    build_security,
    redis_guard,
)
from service.openapi import OpenAPIMiddleware
from service.patches import apply_patches, patches_enabled
from service.ratelimit import RedisLimiter
from service.serving import Serving
from service.settings import CorsConfig, ServiceSettings
from service.store import Store, declared_model_tag
from service.v1 import build_v1

logger = logging.getLogger("pokewatch.service")

# Fixes to BentoML 1.4.39 (service/patches.py), installed before any app is built.
apply_patches()

# Read at import: workers and timeouts are fixed when the service class is declared,
# and a bad configuration must stop the server before it starts.
SETTINGS = load_settings(ServiceSettings)
guard_connections(
    SETTINGS.security.request_read_seconds,
    SETTINGS.security.max_connections,
    SETTINGS.security.max_header_bytes,
)
STORE = Store.from_settings(SETTINGS.store, SETTINGS.service.model_tag.partition(":")[0])
DECLARED_MODEL = declared_model_tag(SETTINGS.service.model_tag)

CardId = Annotated[str, Field(min_length=1, max_length=128, examples=["tcg-133777"])]
IsoDate = Annotated[
    str | None,
    Field(
        default=None,
        description="YYYY-MM-DD; the last observation on or before it. Omit for the latest.",
        examples=["2025-06-01"],
    ),
]


SECURITY = build_security(SETTINGS)
# The REST API v1 (service/v1.py) answers from this worker's service instance.
V1_APP = build_v1(SETTINGS, lambda: bentoml.get_current_service().serving)


CORS_METHODS = ["GET", "POST", "DELETE", "OPTIONS"]
CORS_HEADERS = ["Content-Type", "X-API-Key", "Authorization", "X-Request-ID", "If-None-Match"]
CORS_EXPOSED = ["X-Request-ID", "ETag", "RateLimit", "RateLimit-Policy", "Retry-After"]


def cors_config(cors: CorsConfig) -> dict[str, Any]:
    """BentoML's CORS middleware, from the explicit allowlist (off when it is empty)."""
    return {
        "enabled": bool(cors.allow_origins),
        "access_control_allow_origins": cors.allow_origins,
        "access_control_allow_credentials": cors.allow_credentials,
        "access_control_allow_methods": CORS_METHODS,
        "access_control_allow_headers": CORS_HEADERS,
        "access_control_expose_headers": CORS_EXPOSED,
        "access_control_max_age": cors.max_age_seconds,
    }


def direct_cors(cors: CorsConfig) -> dict[str, Any] | None:
    """The same policy for the directly answered APIs (`service.direct`), which answer
    before BentoML's CORS middleware (None: CORS is off)."""
    if not cors.allow_origins:
        return None
    return {
        "allow_origins": cors.allow_origins,
        "allow_credentials": cors.allow_credentials,
        "allow_methods": CORS_METHODS,
        "allow_headers": CORS_HEADERS,
        "expose_headers": CORS_EXPOSED,
        "max_age": cors.max_age_seconds,
    }


def running_service() -> object | None:
    try:
        return bentoml.get_current_service()  # type: ignore[no-any-return]
    except bentoml.exceptions.BentoMLException:
        return None


@bentoml.service(
    name="pokewatch",
    workers=SETTINGS.service.workers,
    traffic={"timeout": SETTINGS.service.timeout_seconds},
    http={"cors": cors_config(SETTINGS.security.cors)},
    # The edge middleware writes the access log, with the request ID and key id.
    logging={"access": {"enabled": False}},
)
@bentoml.asgi_app(V1_APP, path="/v1")
@bentoml.asgi_app(build_dashboard(), path="/ui")
class PokeWatch:
    # None when BentoML's store has no production model: the service still starts (so
    # /livez answers) and /readyz fails until the shared store has one.
    model_ref = bentoml.models.BentoModel(DECLARED_MODEL) if DECLARED_MODEL else None

    def __init__(self) -> None:
        configure_worker_logging()
        self.settings = SETTINGS
        self.serving = Serving(
            SETTINGS, STORE, build_cache(SETTINGS.cache, redis_guard(SETTINGS, "cache"))
        )
        self.serving.start()
        self.watch_task: asyncio.Task[None] | None = None

    @property
    def answers(self) -> Answers | None:
        return self.serving.answers

    @bentoml.on_startup
    async def _connect_shared_state(self) -> None:
        SECURITY.keys.report()
        if isinstance(SECURITY.limiter, RedisLimiter):
            await SECURITY.limiter.warm_up()
        every = SETTINGS.service.reload_seconds
        if every > 0:
            self.watch_task = asyncio.create_task(self.serving.run(every))

    @bentoml.on_shutdown
    async def _disconnect_shared_state(self) -> None:
        if self.watch_task is not None:
            self.watch_task.cancel()
        if isinstance(SECURITY.limiter, RedisLimiter):
            await SECURITY.limiter.close()
        cache = self.serving.cache
        if cache is not None and cache.redis is not None:
            await cache.redis.guard.close()

    def __is_ready__(self) -> bool:
        return self.serving.ready

    @bentoml.api(route="/fair_price")
    async def fair_price(self, card_id: CardId, date: IsoDate = None) -> Any:
        """Market price, fair price, deviation and BUY/HOLD/SELL signal of one card."""
        if self.answers is None:
            return unavailable()
        return json_response(await self.answers.fair_price(card_id, date))

    @bentoml.api(route="/batch_predict")
    async def batch_predict(self, items: Annotated[list[Any], Field(min_length=1)]) -> Any:
        """Up to `max_batch_size` queries like /fair_price's; answers in request order.

        An item that fails gets `{"index", "card_id"?, "status", "error", "detail"}` in its
        place.
        """
        limit = self.settings.service.max_batch_size
        if len(items) > limit:
            detail = f"items: {len(items)} items, at most {limit} allowed"
            return json_response((413, orjson.dumps(error_body("batch_too_large", detail))))
        if self.answers is None:
            return unavailable()
        return json_response(await self.answers.batch(items))

    @bentoml.api(route="/cards")
    async def cards(
        self,
        limit: Annotated[int, Field(ge=1, le=10_000, strict=True)] = 100,
        offset: Annotated[int, Field(ge=0, le=1_000_000_000, strict=True)] = 0,
    ) -> Any:
        """The priced cards and products: id, name, set, latest date and price."""
        if self.answers is None:
            return unavailable()
        return json_response(
            self.answers.cards(min(limit, self.settings.service.max_page_size), offset)
        )

    @bentoml.api(route="/admin/reload")
    async def admin_reload(self) -> Any:
        """Load the newest production model and published day now (admin scope); other
        workers follow within `service.reload_seconds`."""
        reloaded = await self.serving.check()
        if self.answers is None:
            return unavailable()
        return {
            "model_version": self.answers.model_version,
            "published": self.serving.published,
            "reloaded": reloaded,
        }

    @bentoml.api(route="/health")
    async def health(self) -> Any:
        """Model, data window, freshness, the jobs' last runs and cache statistics (503
        without a model)."""
        if self.answers is None:
            return unavailable()
        return self.serving.health()


def route_methods(apis: Iterable[Any]) -> RouteMethods:
    """Every route's methods: the APIs take POST, BentoML's probes, metrics and docs and
    the dashboard GET, the v1 routes what they declare."""
    reads = ("GET", "HEAD")
    exact = dict.fromkeys(PROBE_PATHS | METRICS_PATHS | DOCS_PATHS, reads)
    exact |= {api.route: ("POST",) for api in apis}
    exact[DASHBOARD_PATH] = reads
    return RouteMethods(exact, prefixes={DASHBOARD_PREFIX: reads}, mounts={"/v1": V1_APP.routes})


# The first added is the outermost: request ID → size limit → auth → rate limit →
# OpenAPI document → the hot APIs answered directly (service/direct.py) → BentoML's app.
# (mypy ignores class decorators: it cannot see that PokeWatch is a bentoml.Service.)
PokeWatch.add_asgi_middleware(EdgeMiddleware)  # type: ignore[attr-defined]
PokeWatch.add_asgi_middleware(  # type: ignore[attr-defined]
    RequestCheckMiddleware,
    limit=SETTINGS.security.max_body_bytes,
    methods=route_methods(PokeWatch.apis.values()),  # type: ignore[attr-defined]
)
PokeWatch.add_asgi_middleware(AuthMiddleware, security=SECURITY)  # type: ignore[attr-defined]
PokeWatch.add_asgi_middleware(RateLimitMiddleware, security=SECURITY)  # type: ignore[attr-defined]
PokeWatch.add_asgi_middleware(  # type: ignore[attr-defined]
    OpenAPIMiddleware,
    generated=lambda: PokeWatch.openapi_spec.asdict(),  # type: ignore[attr-defined]
    max_page_size=SETTINGS.service.max_page_size,
)
PokeWatch.add_asgi_middleware(  # type: ignore[attr-defined]
    DirectApiMiddleware,
    apis=[PokeWatch.apis["fair_price"], PokeWatch.apis["batch_predict"]],  # type: ignore[attr-defined]
    service=running_service,
    enabled=patches_enabled(),
    mounts={"/v1": V1_APP},
    cors=direct_cors(SETTINGS.security.cors),
)


def json_response(body: Body) -> Response:
    """An already-encoded JSON answer (BentoML passes a Response through untouched)."""
    status, content = body
    return Response(content, status_code=status, media_type="application/json")


def unavailable() -> Response:
    return json_response(
        (503, orjson.dumps(error_body("model_unavailable", "no fair-price model is loaded")))
    )
