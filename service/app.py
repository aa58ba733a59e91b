"""The PokeWatch BentoML service: a thin class over `Serving` (what to answer from) and
`Answers` (predictor, cache, metrics).

The class declares the model BentoML's own store holds at import time (`model_ref`): the one
`bentoml build` packs into the Bento and the one a new deployment serves first. While it
runs, each worker follows the shared store (`service.store`): the newest production model
and its newest published day, swapped in without a restart.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from typing import Annotated, Any

import bentoml
import orjson
from pydantic import Field
from starlette.responses import Response

from model.settings import load_settings
from service.answers import Answers, Body, build_cache
from service.connections import guard_connections
from service.dashboard import build_dashboard
from service.edge import add_edge
from service.errors import ApiError, error_body
from service.logs import configure_worker_logging
from service.patches import apply_patches
from service.redis_guard import RedisGuard
from service.security import bentoml_cors, build_security
from service.serving import Serving
from service.settings import ServiceSettings
from service.store import Store, declared_model_tag
from service.v1 import build_v1

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


@bentoml.service(
    name="pokewatch",
    workers=SETTINGS.service.workers,
    traffic={"timeout": SETTINGS.service.timeout_seconds},
    http={"cors": bentoml_cors(SETTINGS.security.cors)},
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
        configure_worker_logging(SETTINGS.service.log_format)
        self.settings = SETTINGS
        cache = build_cache(SETTINGS.cache, RedisGuard.from_settings(SETTINGS.redis, "cache"))
        self.serving = Serving(SETTINGS, STORE, cache)
        self.serving.start()

    @bentoml.on_startup
    async def _connect_shared_state(self) -> None:
        await SECURITY.start()
        self.serving.watch(SETTINGS.service.reload_seconds)

    @bentoml.on_shutdown
    async def _disconnect_shared_state(self) -> None:
        await self.serving.close()
        await SECURITY.close()

    def __is_ready__(self) -> bool:
        return self.serving.ready

    @bentoml.api(route="/fair_price")
    async def fair_price(self, card_id: CardId, date: IsoDate = None) -> Any:
        """Market price, fair price, deviation and BUY/HOLD/SELL signal of one card."""
        return await self._answer(lambda answers: answers.fair_price(card_id, date))

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
        return await self._answer(lambda answers: answers.batch(items))

    @bentoml.api(route="/cards")
    async def cards(
        self,
        limit: Annotated[int, Field(ge=1, le=10_000, strict=True)] = 100,
        offset: Annotated[int, Field(ge=0, le=1_000_000_000, strict=True)] = 0,
    ) -> Any:
        """The priced cards and products: id, name, set, latest date and price (at most
        `service.max_page_size` a page, whatever `limit` asks)."""
        page = min(limit, self.settings.service.max_page_size)
        return await self._answer(lambda answers: answers.cards(page, offset))

    @bentoml.api(route="/admin/reload")
    async def admin_reload(self) -> Any:
        """Load the newest production model and published day now (admin scope); other
        workers follow within `service.reload_seconds`."""
        reloaded = await self.serving.check()
        return await self._answer(
            lambda answers: ok(
                {
                    "model_version": answers.model_version,
                    "published": self.serving.published,
                    "reloaded": reloaded,
                }
            )
        )

    @bentoml.api(route="/health")
    async def health(self) -> Any:
        """Model, data window, freshness, the jobs' last runs and cache statistics (503
        without a model)."""
        return await self._answer(lambda _answers: ok(self.serving.health()))

    async def _answer(self, answer: Callable[[Answers], Awaitable[Body] | Body]) -> Response:
        """The answer from the model served now; 503 until one is loaded."""
        try:
            answers = self.serving.current()
        except ApiError as error:
            return json_response((error.status, orjson.dumps(error.body)))
        body = answer(answers)
        return json_response(await body if inspect.isawaitable(body) else body)


# The request path's middleware (service/edge.py); mypy ignores class decorators, so it
# cannot see that PokeWatch is a bentoml.Service.
add_edge(
    PokeWatch,
    SETTINGS,
    SECURITY,
    mounts={"/v1": V1_APP},
    direct=("fair_price", "batch_predict"),
)


def ok(content: object) -> Body:
    return 200, orjson.dumps(content)


def json_response(body: Body) -> Response:
    """An already-encoded JSON answer (BentoML passes a Response through untouched)."""
    status, content = body
    return Response(content, status_code=status, media_type="application/json")
