"""The OpenAPI document at /docs.json, corrected to what the service really answers.

BentoML 1.4.39 derives request schemas well but describes every 200 as a free-form
object, errors in its own shapes, and no authentication. `pokewatch_openapi` replaces
those parts with the models below; `OpenAPIMiddleware` serves the result (built once).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, Literal

from pydantic import BaseModel
from starlette.types import ASGIApp, Receive, Scope, Send

from service.errors import send_json


class FairPriceAnswer(BaseModel):
    card_id: str
    name: str
    date: str
    price_date: str
    market_price: float
    fair_price: float | None
    fair_low: float | None
    fair_high: float | None
    deviation_pct: float | None
    # null with a `reason` when the model gives no fair price for the row
    signal: Literal["BUY", "HOLD", "SELL"] | None
    reason: Literal["insufficient_history", "not_scored"] | None
    history_days: int
    data_as_of: str
    stale: bool
    model_version: str


class BatchItemError(BaseModel):
    index: int
    card_id: str | None = None
    status: int
    error: str
    detail: str


class BatchAnswer(BaseModel):
    results: list[FairPriceAnswer | BatchItemError]


class CardSummary(BaseModel):
    card_id: str
    name: str
    set_code: str | None
    latest_date: str
    latest_price: float


class CardsPage(BaseModel):
    data_as_of: str
    stale: bool
    total: int
    limit: int
    offset: int
    cards: list[CardSummary]


class JobRunAnswer(BaseModel):
    last_success: str | None
    last_failure: str | None
    detail: str | None


class HealthAnswer(BaseModel):
    status: Literal["ok"]
    model_version: str
    published: str | None
    strategy: str
    horizon: int
    items: int
    data_start: str
    data_end: str
    data_as_of: str
    data_age_hours: float
    stale: bool
    jobs: dict[str, JobRunAnswer]
    cache: dict[str, dict[str, float]] | None = None


class ReloadAnswer(BaseModel):
    model_version: str
    published: str | None
    reloaded: bool


class ErrorBody(BaseModel):
    error: str
    detail: str
    request_id: str


class RateLimited(ErrorBody):
    type: str
    title: str
    status: Literal[429]


ANSWERS: dict[str, type[BaseModel]] = {
    "/fair_price": FairPriceAnswer,
    "/batch_predict": BatchAnswer,
    "/cards": CardsPage,
    "/health": HealthAnswer,
    "/admin/reload": ReloadAnswer,
}
BODY_REQUIRED = frozenset({"/fair_price", "/batch_predict"})
ERRORS = {
    "400": "Malformed body or invalid field (the detail names it)",
    "401": "Missing, unknown, expired or revoked API key",
    "403": "The key lacks the scope this endpoint needs (admin for /admin/...)",
    "404": "Unknown card, or a date outside the available range",
    "405": "Wrong method",
    "413": "Body too large, or too many batch items",
    "415": "Body is not application/json",
    "500": "Unexpected error (the request ID helps find it in the logs)",
    "503": "No model loaded",
}
SCHEMA_REF = "#/components/schemas/{model}"


def pokewatch_openapi(spec: dict[str, Any]) -> dict[str, Any]:
    """BentoML's generated document with PokeWatch's answers, errors and auth."""
    document: dict[str, Any] = json.loads(json.dumps(spec))
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    models: list[type[BaseModel]] = [*ANSWERS.values(), ErrorBody, RateLimited]
    for model in models:
        generated = model.model_json_schema(ref_template=SCHEMA_REF)
        schemas.update(generated.pop("$defs", {}))
        schemas[model.__name__] = generated
    document["components"]["securitySchemes"] = {
        "ApiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
        "Bearer": {"type": "http", "scheme": "bearer"},
    }
    for path, answer in ANSWERS.items():
        operation = document["paths"][path]["post"]
        operation["security"] = [{"ApiKey": []}, {"Bearer": []}]
        if path in BODY_REQUIRED:
            operation["requestBody"]["required"] = True
        body = operation["requestBody"]["content"]["application/json"]["schema"]
        if "date" in body.get("properties", {}):
            # BentoML flattens `str | None` to a plain string and drops the form.
            body["properties"]["date"].update(nullable=True, format="date")
        operation["responses"] = {
            "200": _json_response("Successful Response", answer.__name__),
            **{status: _json_response(text, "ErrorBody") for status, text in ERRORS.items()},
            "429": _json_response(
                "Over this key's quota (see Retry-After)",
                "RateLimited",
                media_type="application/problem+json",
            ),
        }
    return document


def _json_response(
    description: str, model: str, media_type: str = "application/json"
) -> dict[str, Any]:
    return {
        "description": description,
        "content": {media_type: {"schema": {"$ref": SCHEMA_REF.format(model=model)}}},
    }


class OpenAPIMiddleware:
    """Answers GET /docs.json with the corrected document (inside auth: policy applies)."""

    def __init__(self, app: ASGIApp, generated: Callable[[], dict[str, Any]]) -> None:
        self.app = app
        self.generated = generated
        self.document: dict[str, Any] | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] != "/docs.json" or scope["method"] != "GET":
            await self.app(scope, receive, send)
            return
        if self.document is None:
            self.document = pokewatch_openapi(self.generated())
        await send_json(send, 200, self.document)
