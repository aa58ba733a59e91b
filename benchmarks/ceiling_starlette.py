"""The ceiling: bare Starlette answering every benchmark query from a precomputed dict.

No auth, no rate limit, no cache, no model call: the JSON body is parsed and the answer
bytes (computed at start-up by the same `Predictor`, and for `GET /v1/cards/{card_id}` by
the same `Catalog`) are sent. Run:
`uvicorn benchmarks.ceiling_starlette:app`.
"""

from __future__ import annotations

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from benchmarks.common import load_predictor, parse, query_bodies
from model.catalog import Catalog
from model.predictor import QueryError, parse_query
from model.settings import load_settings
from service.settings import ServiceSettings

PREDICTOR = load_predictor(load_settings(ServiceSettings))


def precompute() -> dict[tuple[str, str | None], bytes]:
    latest = {(card_id, None) for card_id in PREDICTOR.table.item_ids}
    queries = sorted({parse(body) for body in query_bodies()} | latest, key=str)
    parsed = [parse_query({"card_id": card_id, "date": on}) for card_id, on in queries]
    return {
        query: orjson.dumps(found)
        for query, found in zip(queries, PREDICTOR.answer(parsed), strict=True)
        if not isinstance(found, QueryError)
    }


ANSWERS = precompute()
CATALOG = Catalog(PREDICTOR)
DETAILS = {
    card_id: orjson.dumps(CATALOG.detail(card_id, False)) for card_id in PREDICTOR.table.item_ids
}
MISSING = orjson.dumps({"error": "card_not_found"})


async def fair_price(request: Request) -> Response:
    found = ANSWERS.get(parse(await request.body()))
    if found is None:
        return Response(MISSING, status_code=404, media_type="application/json")
    return Response(found, media_type="application/json")


async def card(request: Request) -> Response:
    found = DETAILS.get(request.path_params["card_id"])
    if found is None:
        return Response(MISSING, status_code=404, media_type="application/json")
    return Response(found, media_type="application/json")


app = Starlette(
    routes=[
        Route("/fair_price", fair_price, methods=["POST"]),
        Route("/v1/cards/{card_id}", card, methods=["GET"]),
    ]
)
