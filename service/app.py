"""The PokeWatch BentoML service: a thin class over `Predictor`."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated, Any

import bentoml
from pydantic import Field
from starlette.responses import JSONResponse

from model.artifact import load_trained_model
from model.predictor import Predictor, QueryError
from model.settings import load_settings
from service.logs import configure_worker_logging
from service.middleware import (
    AuthMiddleware,
    BodyLimitMiddleware,
    EdgeMiddleware,
    RateLimitMiddleware,
    build_security,
)
from service.openapi import OpenAPIMiddleware
from service.ratelimit import RedisLimiter
from service.settings import CorsConfig, ServiceSettings

logger = logging.getLogger("pokewatch.service")

# Read at import: workers and timeouts are fixed when the service class is declared,
# and a bad configuration must stop the server before it starts.
SETTINGS = load_settings(ServiceSettings)

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


def cors_config(cors: CorsConfig) -> dict[str, Any]:
    """BentoML's CORS middleware, from the explicit allowlist (off when it is empty)."""
    return {
        "enabled": bool(cors.allow_origins),
        "access_control_allow_origins": cors.allow_origins,
        "access_control_allow_credentials": cors.allow_credentials,
        "access_control_allow_methods": ["GET", "POST", "OPTIONS"],
        "access_control_allow_headers": [
            "Content-Type",
            "X-API-Key",
            "Authorization",
            "X-Request-ID",
        ],
        "access_control_expose_headers": [
            "X-Request-ID",
            "RateLimit",
            "RateLimit-Policy",
            "Retry-After",
        ],
        "access_control_max_age": cors.max_age_seconds,
    }


@bentoml.service(
    name="pokewatch",
    workers=SETTINGS.service.workers,
    traffic={"timeout": SETTINGS.service.timeout_seconds},
    http={"cors": cors_config(SETTINGS.security.cors)},
    # The edge middleware writes the access log, with the request ID and key id.
    logging={"access": {"enabled": False}},
)
class PokeWatch:
    model_ref = bentoml.models.BentoModel(SETTINGS.service.model_tag)

    def __init__(self) -> None:
        configure_worker_logging()
        self.settings = SETTINGS
        self.predictor: Predictor | None = None
        try:
            stored = self.model_ref
            trained = load_trained_model(Path(stored.path))
        except Exception:
            # A pod without a model must start (so /livez answers) and fail /readyz.
            logger.exception("no fair-price model loaded; /readyz will fail until one is")
            return
        self.predictor = Predictor(trained, str(stored.tag), SETTINGS.model.thresholds)
        logger.info("loaded %s (%d items)", stored.tag, len(self.predictor.table))

    @bentoml.on_startup
    async def _connect_shared_state(self) -> None:
        if isinstance(SECURITY.limiter, RedisLimiter):
            await SECURITY.limiter.warm_up()

    @bentoml.on_shutdown
    async def _disconnect_shared_state(self) -> None:
        if isinstance(SECURITY.limiter, RedisLimiter):
            await SECURITY.limiter.close()

    def __is_ready__(self) -> bool:
        return self.predictor is not None

    def _ready_predictor(self) -> Predictor:
        if self.predictor is None:
            raise QueryError(503, "model_unavailable", "no fair-price model is loaded")
        return self.predictor

    @bentoml.api(route="/fair_price")
    async def fair_price(self, card_id: CardId, date: IsoDate = None) -> dict[str, Any]:
        """Market price, fair price, deviation and BUY/HOLD/SELL signal of one card."""
        try:
            return self._ready_predictor().fair_price(card_id, date)
        except QueryError as error:
            return error_response(error)  # type: ignore[return-value]

    @bentoml.api(route="/batch_predict")
    async def batch_predict(
        self, items: Annotated[list[Any], Field(min_length=1)]
    ) -> dict[str, Any]:
        """Up to `max_batch_size` queries like /fair_price's; answers in request order.

        An item that fails gets `{"index", "status", "error", "detail"}` in its place.
        """
        limit = self.settings.service.max_batch_size
        try:
            if len(items) > limit:
                raise QueryError(
                    413, "batch_too_large", f"items: {len(items)} items, at most {limit} allowed"
                )
            return {"results": self._ready_predictor().fair_prices(items)}
        except QueryError as error:
            return error_response(error)  # type: ignore[return-value]

    @bentoml.api(route="/cards")
    async def cards(
        self,
        limit: Annotated[int, Field(ge=1, le=10_000, strict=True)] = 100,
        offset: Annotated[int, Field(ge=0, strict=True)] = 0,
    ) -> dict[str, Any]:
        """The priced cards and products: id, name, set, latest date and price."""
        try:
            return self._ready_predictor().cards(
                min(limit, self.settings.service.max_page_size), offset
            )
        except QueryError as error:
            return error_response(error)  # type: ignore[return-value]

    @bentoml.api(route="/health")
    async def health(self) -> dict[str, Any]:
        """Model tag, item count and data window (503 when no model is loaded)."""
        try:
            predictor = self._ready_predictor()
        except QueryError as error:
            return error_response(error)  # type: ignore[return-value]
        info = predictor.info
        return {
            "status": "ok",
            "model_version": predictor.model_version,
            "strategy": info["strategy"],
            "horizon": info["horizon"],
            "items": len(predictor.table),
            "data_start": info["data_start"],
            "data_end": info["data_end"],
        }


# The first added is the outermost: request ID → size limit → auth → rate limit → app.
# (mypy ignores class decorators: it cannot see that PokeWatch is a bentoml.Service.)
PokeWatch.add_asgi_middleware(EdgeMiddleware)  # type: ignore[attr-defined]
PokeWatch.add_asgi_middleware(BodyLimitMiddleware, limit=SETTINGS.security.max_body_bytes)  # type: ignore[attr-defined]
PokeWatch.add_asgi_middleware(AuthMiddleware, security=SECURITY)  # type: ignore[attr-defined]
PokeWatch.add_asgi_middleware(RateLimitMiddleware, security=SECURITY)  # type: ignore[attr-defined]
PokeWatch.add_asgi_middleware(  # type: ignore[attr-defined]
    OpenAPIMiddleware,
    generated=lambda: PokeWatch.openapi_spec.asdict(),  # type: ignore[attr-defined]
)


def error_response(error: QueryError) -> JSONResponse:
    return JSONResponse(error.body(), status_code=error.status)
