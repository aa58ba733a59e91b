"""The OpenAPI document at /docs.json, corrected to what the service really answers.

BentoML 1.4.39 derives request schemas of the `@bentoml.api` routes (the compatibility
API) well but describes every 200 as a free-form object, errors in its own shapes, and no
authentication; it does not describe mounted apps at all. `pokewatch_openapi` replaces
those parts with the models below and adds the v1 routes (`service.v1`), with their
parameters, answers, examples and headers; `service.edge.OpenAPIMiddleware` serves
the result (built once).
"""

from __future__ import annotations

import json
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic.config import JsonDict

from model.alerts import Rule
from model.catalog import MAX_ID_LENGTH, MAX_PORTFOLIO_LINES, MAX_QUANTITY, SortKey
from service.alerts.routes import MAX_DELIVERIES_PAGE, WatchRequest, WebhookRequest

Signal = Literal["BUY", "HOLD", "SELL"]
Reason = Literal["insufficient_history", "not_scored"]


class PricedDay(BaseModel):
    """One day of an item as the model prices it: what every answer about a day holds."""

    market_price: float
    # the lowest listing: what a buyer pays (null where the source sends no listings)
    buy_price: float | None
    fair_price: float | None
    fair_low: float | None
    fair_high: float | None
    deviation_pct: float | None
    # null with a `reason` when the model gives no fair price for the row
    signal: Signal | None
    reason: Reason | None


class FairPriceAnswer(PricedDay):
    card_id: str
    name: str
    date: str
    price_date: str
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


CHARIZARD: JsonDict = {
    "card_id": "sv2a_151_charizard_ex___201_165",
    "name": "Charizard ex - 201/165",
    "set_code": "sv2a",
    "number": "201/165",
    "rarity": "Special Art Rare",
    "printing": None,
    "price_date": "2025-11-29",
    "market_price": 253.55,
    "buy_price": None,
    "fair_price": 253.52,
    "fair_low": 250.77,
    "fair_high": 266.93,
    "deviation_pct": 0.0001,
    "signal": "HOLD",
    "reason": None,
    "edge_pct": None,
    "history_days": 3,
    "data_as_of": "2025-11-29",
}


class CardEntry(PricedDay):
    """An item's latest answer, as the v1 lists show it."""

    # `example`, not `examples`: the document is OpenAPI 3.0 (BentoML's).
    model_config = ConfigDict(json_schema_extra={"example": CHARIZARD})

    card_id: str
    name: str
    set_code: str | None
    number: str | None
    rarity: str | None
    # TCGplayer printing (Normal, Holofoil, Reverse Holofoil...); null for other sources
    printing: str | None
    price_date: str
    # how far a BUY or SELL is past its threshold, as a fraction; null for HOLD
    edge_pct: float | None
    history_days: int
    data_as_of: str


class CardDetail(CardEntry):
    stale: bool
    model_version: str


class CardList(BaseModel):
    items: list[CardEntry]
    data_as_of: str
    stale: bool
    model_version: str
    total: int  # matches in all
    limit: int
    next: str | None  # the next page's URL (null on the last page)
    next_cursor: str | None


class Backtest(BaseModel):
    """How the signal did out of sample when the model was trained."""

    horizon_days: int
    count: int
    hit_rate: float | None
    mean_forward_return: float | None
    median_forward_return: float | None


class SignalList(CardList):
    signal: Literal["BUY", "SELL"]
    backtest: Backtest | None


class HistoryRow(PricedDay):
    date: str


class History(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    card_id: str
    name: str
    since: str | None = Field(alias="from")
    to: str | None
    data_as_of: str
    stale: bool
    model_version: str
    rows: list[HistoryRow]


class SetSummary(BaseModel):
    set_code: str | None
    set_name: str | None  # where the prices came with set names (TCGCSV price files)
    items: int
    latest_date: str
    buy: int
    sell: int
    buy_share: float
    sell_share: float


class SetList(BaseModel):
    data_as_of: str
    stale: bool
    model_version: str
    sets: list[SetSummary]


# A portfolio line as `model.catalog.parse_holdings` accepts it, written for OpenAPI 3.0
# (pydantic's schema says `exclusiveMinimum: 0` and `type: null`, which 3.0 has not).
HOLDING_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["card_id", "quantity"],
    "properties": {
        "card_id": {"type": "string", "minLength": 1, "maxLength": MAX_ID_LENGTH},
        "quantity": {
            "type": "number",
            "minimum": 0,
            "exclusiveMinimum": True,
            "maximum": MAX_QUANTITY,
        },
        "cost_basis": {
            "type": "number",
            "minimum": 0,
            "nullable": True,
            "description": "What the whole line cost (not per unit)",
        },
    },
    "example": {"card_id": "tcg-133777", "quantity": 2, "cost_basis": 15.0},
}


class ValuedLine(BaseModel):
    index: int
    card_id: str
    name: str
    quantity: float
    price_date: str
    market_price: float
    fair_price: float | None
    market_value: float
    fair_value: float | None
    cost_basis: float | None
    pnl: float | None
    pnl_pct: float | None
    signal: Signal | None


class UnknownLine(BaseModel):
    index: int
    card_id: str
    error: Literal["card_not_found"]
    detail: str


class PortfolioTotals(BaseModel):
    lines: int
    priced_lines: int
    unknown_lines: int
    market_value: float
    fair_value: float  # of the lines with a fair price (fair_value_lines)
    fair_value_lines: int
    cost_basis: float  # of the lines with a cost
    pnl: float


class Valuation(BaseModel):
    lines: list[ValuedLine | UnknownLine]
    totals: PortfolioTotals
    data_as_of: str
    stale: bool
    model_version: str


class ExportRow(PricedDay):
    card_id: str
    name: str
    set_code: str | None
    date: str
    price_date: str
    history_days: int


class Export(BaseModel):
    date: str
    data_as_of: str
    stale: bool
    model_version: str
    rows: list[ExportRow]


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


class WatchedItem(BaseModel):
    card_id: str
    name: str | None
    rules: list[Rule]
    created: str
    updated: str


class Watchlist(BaseModel):
    items: list[WatchedItem]
    total: int
    max_items: int


class WatchlistWritten(BaseModel):
    items: list[WatchedItem]  # the items the request added or changed


class WebhookInfo(BaseModel):
    id: str
    url: str
    events: list[str]  # rule kinds, or ["*"] for every alert
    created: str


class WebhookCreated(WebhookInfo):
    secret: str  # shown this once: it signs every delivery (docs/alerts.md)


class WebhookList(BaseModel):
    webhooks: list[WebhookInfo]
    max_webhooks: int


class DeliveryAttempt(BaseModel):
    number: int
    at: str
    duration_ms: float
    status_code: int | None  # null: no answer (timeout, refused connection, SSRF check)
    error: str | None
    response: str | None  # the start of the receiver's answer


class Delivery(BaseModel):
    id: str
    event_id: str
    event_type: str
    card_id: str | None
    date: str | None
    status: Literal["pending", "delivered", "dead"]
    created: str
    delivered: str | None
    next_attempt: str | None
    attempts: list[DeliveryAttempt]


class DeliveryList(BaseModel):
    webhook_id: str
    deliveries: list[Delivery]


class Redelivery(BaseModel):
    id: str
    status: Literal["pending"]
    detail: str


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
V1_MODELS: list[type[BaseModel]] = [
    CardDetail,
    CardList,
    SignalList,
    History,
    SetList,
    Valuation,
    Export,
    Watchlist,
    WatchlistWritten,
    WebhookCreated,
    WebhookList,
    DeliveryList,
    Redelivery,
    WatchRequest,
    WebhookRequest,
]
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
V1_ERRORS = {
    "400": "Invalid parameter or body (the detail names it: bad cursor, bad date, limit out "
    "of range, unknown sort or parameter)",
    "401": ERRORS["401"],
    "403": "The key lacks the scope this route needs (batch for portfolio and export)",
    "404": "Unknown card, or no price on or before the date",
    "406": "The Accept header allows none of the media types this route answers",
    "500": ERRORS["500"],
    "503": ERRORS["503"],
}
SCHEMA_REF = "#/components/schemas/{model}"
TAGS = {"v1": "REST API v1", "compat": "Compatibility API (POST, as since 0.1)"}


def _header(description: str, schema: dict[str, Any], required: bool = False) -> dict[str, Any]:
    return {"description": description, "required": required, "schema": schema}


RATE_LIMIT_HEADERS = {
    "RateLimit": _header(
        'This key\'s remaining requests and seconds to a full quota, e.g. `"default";r=59;t=1`',
        {"type": "string"},
    ),
    "RateLimit-Policy": _header(
        'The quota: burst and window, e.g. `"default";q=60;w=6`', {"type": "string"}
    ),
}
CACHING_HEADERS = {
    "ETag": _header(
        "A strong validator: send it back in If-None-Match to get 304 while the answer is "
        "unchanged",
        {"type": "string"},
        required=True,
    ),
    "Cache-Control": _header(
        "`private, max-age=<seconds until the next scheduled job run>` (60 at most while a "
        "run may still publish)",
        {"type": "string"},
        required=True,
    ),
}
IF_NONE_MATCH = {
    "name": "If-None-Match",
    "in": "header",
    "required": False,
    "description": "An ETag of an earlier answer: 304 without a body while it is current",
    "schema": {"type": "string"},
}


def _parameter(
    name: str,
    where: str,
    schema: dict[str, Any],
    description: str,
    example: Any = None,
    required: bool = False,
) -> dict[str, Any]:
    parameter = {
        "name": name,
        "in": where,
        "required": required or where == "path",
        "description": description,
        "schema": schema,
    }
    if example is not None:
        parameter["example"] = example
    return parameter


def _ref(model: str) -> dict[str, str]:
    return {"$ref": SCHEMA_REF.format(model=model)}


def _v1_operation(
    summary: str,
    answers: dict[str, dict[str, Any]],
    parameters: list[dict[str, Any]],
    errors: tuple[str, ...] = (),
    cached: bool = True,
    status: str = "200",
) -> dict[str, Any]:
    """An operation of the v1 API: its answers by media type (none: an empty answer), and
    the errors every route can give plus `errors`."""
    headers = {**RATE_LIMIT_HEADERS, **(CACHING_HEADERS if cached else {})}
    statuses = ("400", "401", "403", "406", "500", "503", *errors)
    answer: dict[str, Any] = {"description": V1_SUCCESS[status], "headers": headers}
    if answers:
        answer["content"] = {media: {"schema": schema} for media, schema in answers.items()}
    responses: dict[str, Any] = {status: answer}
    if cached:
        responses["304"] = {
            "description": "Not modified: the If-None-Match ETag is current (no body)",
            "headers": CACHING_HEADERS,
        }
    for status in sorted(statuses):
        description = V1_ERRORS.get(status) or V1_EXTRA_ERRORS[status]
        responses[status] = _json_response(description, "ErrorBody")
    responses["429"] = {
        **_json_response(
            "Over this key's quota", "RateLimited", media_type="application/problem+json"
        ),
        "headers": {
            "Retry-After": _header(
                "Seconds until a request may succeed", {"type": "integer"}, required=True
            ),
            **RATE_LIMIT_HEADERS,
        },
    }
    return {
        "tags": [TAGS["v1"]],
        "summary": summary,
        "security": [{"ApiKey": []}, {"Bearer": []}],
        "parameters": [*parameters, *([IF_NONE_MATCH] if cached else [])],
        "responses": responses,
    }


V1_SUCCESS = {
    "200": "The answer",
    "201": "Created",
    "202": "Accepted: queued",
    "204": "Done (no body)",
}
V1_EXTRA_ERRORS = {
    "404": V1_ERRORS["404"],
    "409": "Over this key's limit of watched items or webhooks",
    "410": "The cursor's table is no longer served: start again without a cursor",
    "413": "Body too large, or more portfolio lines than allowed",
    "415": ERRORS["415"],
}


def v1_paths(max_page_size: int) -> dict[str, Any]:
    """The v1 routes of `service.v1`."""
    card_id = _parameter(
        "card_id",
        "path",
        {"type": "string", "minLength": 1, "maxLength": 128},
        "The item id (see /v1/cards)",
        "tcg-133777",
    )
    set_code = _parameter(
        "set", "query", {"type": "string", "maxLength": 200}, "Only this set code", "23237"
    )
    min_price = _parameter(
        "min_price",
        "query",
        {"type": "number", "minimum": 0},
        "Only items whose latest market price is at least this (USD)",
        5,
    )
    limit = _parameter(
        "limit",
        "query",
        {"type": "integer", "minimum": 1, "maximum": max_page_size, "default": 50},
        "Items per page",
        20,
    )
    cursor = _parameter(
        "cursor",
        "query",
        {"type": "string", "minLength": 1},
        "Where the page starts: the `next_cursor` of the previous page (the `next` link "
        "carries it with the same query)",
    )
    json_of = {"application/json": _ref("CardList")}
    sort_values = [value for key in SortKey for value in (key.value, f"-{key.value}")]
    cards = _v1_operation(
        "Search the items: name tokens, set, signal, price; sorted; keyset paging",
        json_of,
        [
            _parameter(
                "q",
                "query",
                {"type": "string", "maxLength": 200},
                "Words of the name (or number), in any order, case- and accent-insensitive",
                "pokemon 151",
            ),
            set_code,
            _parameter(
                "signal",
                "query",
                {"type": "string", "enum": ["BUY", "HOLD", "SELL"]},
                "Only items with this latest signal",
                "BUY",
            ),
            min_price,
            _parameter(
                "sort",
                "query",
                {"type": "string", "enum": sort_values, "default": "name"},
                "Order: name, latest market price, deviation or signal strength (edge_pct); "
                "a leading - descends; missing values last",
                "-price",
            ),
            limit,
            cursor,
        ],
        ("410",),
    )
    signals = _v1_operation(
        "The screener: items whose latest signal is BUY (or SELL), strongest first, with "
        "the signal's backtested hit rate",
        {"application/json": _ref("SignalList")},
        [
            _parameter(
                "signal",
                "query",
                {"type": "string", "enum": ["BUY", "SELL"], "default": "BUY"},
                "The signal to list",
                "BUY",
            ),
            set_code,
            min_price,
            limit,
            cursor,
        ],
        ("410",),
    )
    date_schema = {"type": "string", "format": "date"}
    export = {
        "application/json": _ref("Export"),
        "text/csv": {"type": "string"},
        "application/vnd.apache.parquet": {"type": "string", "format": "binary"},
    }
    export_format = _parameter(
        "format",
        "path",
        {"type": "string", "enum": ["parquet", "csv", "json"]},
        "The file format",
        "csv",
    )
    return {
        "/v1/cards": {"get": cards},
        "/v1/cards/{card_id}": {
            "get": _v1_operation(
                "One item's latest answer",
                {"application/json": _ref("CardDetail")},
                [card_id],
                ("404",),
            )
        },
        "/v1/cards/{card_id}/fair-price": {
            "get": _v1_operation(
                "The fair-price answer for a date (as POST /fair_price answers it)",
                {"application/json": _ref("FairPriceAnswer")},
                [
                    card_id,
                    _parameter(
                        "date",
                        "query",
                        date_schema,
                        "The last observation on or before this day; omit for the latest",
                        "2025-06-01",
                    ),
                ],
                ("404",),
            )
        },
        "/v1/cards/{card_id}/history": {
            "get": _v1_operation(
                "One row per observed day: market price, fair price, band, signal",
                {
                    "application/json": _ref("History"),
                    "text/csv": {"type": "string"},
                },
                [
                    card_id,
                    _parameter("from", "query", date_schema, "First day (inclusive)", "2025-01-01"),
                    _parameter("to", "query", date_schema, "Last day (inclusive)", "2025-06-30"),
                ],
                ("404",),
            )
        },
        "/v1/sets": {
            "get": _v1_operation(
                "Sets with item counts, latest day and the share of BUY and SELL signals",
                {"application/json": _ref("SetList")},
                [],
            )
        },
        "/v1/signals": {"get": signals},
        "/v1/portfolio/valuate": {
            "post": {
                **_v1_operation(
                    "Value holdings at the latest market and fair prices, with P/L against "
                    "the cost given (batch scope); unknown ids are reported in place",
                    {"application/json": _ref("Valuation")},
                    [],
                    ("413", "415"),
                    cached=False,
                ),
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {
                            "schema": {
                                "type": "array",
                                "minItems": 1,
                                "maxItems": MAX_PORTFOLIO_LINES,
                                "items": HOLDING_SCHEMA,
                            },
                            "example": [
                                {"card_id": "tcg-133777", "quantity": 2, "cost_basis": 15.0},
                                {"card_id": "sv2a_151_charizard_ex___201_165", "quantity": 1},
                            ],
                        }
                    },
                },
            }
        },
        "/v1/export/{day}.{format}": {
            "get": _v1_operation(
                "Every item's answer on a day: its last price on or before it (batch scope)",
                export,
                [
                    _parameter("day", "path", date_schema, "YYYY-MM-DD", "2025-10-01"),
                    export_format,
                ],
                ("404",),
            )
        },
        "/v1/export/latest.{format}": {
            "get": _v1_operation(
                "Every item's latest answer (batch scope)", export, [export_format], ("404",)
            )
        },
        **alert_paths(card_id),
    }


def _body(model: str, example: Any) -> dict[str, Any]:
    return {
        "required": True,
        "content": {"application/json": {"schema": _ref(model), "example": example}},
    }


def alert_paths(card_id: dict[str, Any]) -> dict[str, Any]:
    """The watchlist and webhook routes of `service.alerts.routes` (docs/alerts.md)."""
    webhook_id = _parameter(
        "webhook_id", "path", {"type": "string"}, "The webhook's id", "wh_0123456789abcdef01234567"
    )
    delivery_id = _parameter(
        "delivery_id", "path", {"type": "string"}, "The delivery's id", "dlv_0123456789abcdef0123"
    )

    def operation(
        summary: str,
        answer: str | None,
        parameters: list[dict[str, Any]],
        errors: tuple[str, ...] = (),
        status: str = "200",
    ) -> dict[str, Any]:
        answers = {"application/json": _ref(answer)} if answer else {}
        return _v1_operation(summary, answers, parameters, errors, cached=False, status=status)

    return {
        "/v1/watchlist": {
            "get": operation("This key's watched items and their rules", "Watchlist", []),
            "post": {
                **operation(
                    "Watch items, or replace the rules of items already watched (no rules: "
                    "tell when the signal becomes BUY or SELL)",
                    "WatchlistWritten",
                    [],
                    ("404", "409", "413"),
                ),
                "requestBody": _body(
                    "WatchRequest",
                    {
                        "items": [
                            {
                                "card_id": "tcg-133777",
                                "rules": [
                                    {"kind": "price_below", "value": 20},
                                    {"kind": "signal_buy"},
                                ],
                            },
                            {"card_id": "sv2a_151_charizard_ex___201_165"},
                        ]
                    },
                ),
            },
        },
        "/v1/watchlist/{card_id}": {
            "delete": operation("Stop watching an item", None, [card_id], ("404",), "204")
        },
        "/v1/webhooks": {
            "get": operation("This key's webhooks (never their secrets)", "WebhookList", []),
            "post": {
                **operation(
                    "Add a webhook: the answer shows its signing secret, this once",
                    "WebhookCreated",
                    [],
                    ("409", "413"),
                    "201",
                ),
                "requestBody": _body(
                    "WebhookRequest",
                    {"url": "https://hooks.example.com/pokewatch", "events": ["signal_buy"]},
                ),
            },
        },
        "/v1/webhooks/{webhook_id}": {
            "get": operation("One webhook", "WebhookInfo", [webhook_id], ("404",)),
            "delete": operation(
                "Delete a webhook and its deliveries", None, [webhook_id], ("404",), "204"
            ),
        },
        "/v1/webhooks/{webhook_id}/deliveries": {
            "get": operation(
                "The webhook's deliveries, newest first, each with its attempts",
                "DeliveryList",
                [
                    webhook_id,
                    _parameter(
                        "status",
                        "query",
                        {"type": "string", "enum": ["pending", "delivered", "dead"]},
                        "Only deliveries in this state",
                        "dead",
                    ),
                    _parameter(
                        "limit",
                        "query",
                        {
                            "type": "integer",
                            "minimum": 1,
                            "maximum": MAX_DELIVERIES_PAGE,
                            "default": 50,
                        },
                        "How many",
                        20,
                    ),
                ],
                ("404",),
            )
        },
        "/v1/webhooks/{webhook_id}/deliveries/{delivery_id}/redeliver": {
            "post": operation(
                "Queue a delivery again (a dead-lettered one, say); the next alerts run sends it",
                "Redelivery",
                [webhook_id, delivery_id],
                ("404",),
                "202",
            )
        },
    }


def pokewatch_openapi(spec: dict[str, Any], max_page_size: int) -> dict[str, Any]:
    """BentoML's generated document with PokeWatch's answers, errors, auth and the v1
    routes."""
    document: dict[str, Any] = json.loads(json.dumps(spec))
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    models: list[type[BaseModel]] = [*ANSWERS.values(), *V1_MODELS, ErrorBody, RateLimited]
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
        operation["tags"] = [TAGS["compat"]]
        operation["security"] = [{"ApiKey": []}, {"Bearer": []}]
        if path in BODY_REQUIRED:
            operation["requestBody"]["required"] = True
        body = operation["requestBody"]["content"]["application/json"]["schema"]
        if "date" in body.get("properties", {}):
            # BentoML flattens `str | None` to a plain string and drops the form.
            body["properties"]["date"].update(nullable=True, format="date")
        operation["responses"] = {
            "200": {
                **_json_response("Successful Response", answer.__name__),
                "headers": RATE_LIMIT_HEADERS,
            },
            **{status: _json_response(text, "ErrorBody") for status, text in ERRORS.items()},
            "429": _json_response(
                "Over this key's quota (see Retry-After)",
                "RateLimited",
                media_type="application/problem+json",
            ),
        }
    document["paths"].update(v1_paths(max_page_size))
    document["tags"] = [
        *document.get("tags", []),
        {"name": TAGS["v1"], "description": "GET reads, search, history, screener (docs/api.md)"},
        {"name": TAGS["compat"], "description": "The seed's POST routes, answers unchanged"},
    ]
    return document


def _json_response(
    description: str, model: str, media_type: str = "application/json"
) -> dict[str, Any]:
    return {
        "description": description,
        "content": {media_type: {"schema": {"$ref": SCHEMA_REF.format(model=model)}}},
    }
