"""The middleware chain every request passes, outermost first (`add_edge` installs it;
docs/security.md):

1. `EdgeMiddleware`: request ID, security headers, uniform error bodies, access log.
2. `RequestCheckMiddleware`: 405 for a method the route does not take (whatever the
   body); 413 on declared or streamed bytes over the limit; 415 non-JSON.
3. `AuthMiddleware`: API key → key record in the scope; 401/403; brute-force guard.
4. `RateLimitMiddleware`: per-key quota; RateLimit headers; 429 with Retry-After.
5. `OpenAPIMiddleware`: GET /docs.json, the corrected document (`service.openapi`).
6. `DirectApiMiddleware`: the hot JSON APIs and the mounted REST API v1 answered without
   BentoML's per-call machinery (below); everything else goes on to BentoML's app.

All are plain ASGI (no BaseHTTPMiddleware, 0.4-0.8 ms a request): they touch only the
response start, except the edge, which buffers error bodies (never successful ones) to
rewrite them. Who may call what is decided in `service.security`.
"""

from __future__ import annotations

import inspect
import logging
import re
import time
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, date, datetime
from email.utils import format_datetime
from typing import Any

import bentoml
from pydantic import ValidationError
from starlette.middleware.cors import CORSMiddleware
from starlette.responses import Response
from starlette.routing import BaseRoute, Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.errors import error_body, send_json, uniform_body
from service.keys import KeyRecord
from service.keys import Scope as KeyScope
from service.metrics import labelled, service_metrics
from service.openapi import pokewatch_openapi
from service.patches import patches_enabled
from service.ratelimit import Policy
from service.security import (
    DASHBOARD_PATH,
    DASHBOARD_PREFIX,
    DOCS_PATHS,
    METRICS_PATHS,
    PROBE_PATHS,
    Security,
    cors_policy,
    header,
    is_dashboard,
    presented_key,
    required_scope,
)
from service.settings import AuthMode, ServiceSettings

access_log = logging.getLogger("pokewatch.access")
auth_log = logging.getLogger("pokewatch.auth")
direct_log = logging.getLogger("pokewatch.direct")

REQUEST_ID_PATTERN = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
DASHBOARD_CSP = (
    b"default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    b"connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
SECURITY_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"content-security-policy", b"frame-ancestors 'none'"),
]
DASHBOARD_HEADERS = [
    (name, DASHBOARD_CSP if name == b"content-security-policy" else value)
    for name, value in SECURITY_HEADERS
]
NO_STORE = (b"cache-control", b"no-store")
# Kept only on successful answers that set them (the v1 GET answers): errors are never cached.
CACHING_HEADERS = frozenset({b"cache-control", b"etag", b"vary"})
HSTS = (b"strict-transport-security", b"max-age=31536000; includeSubDomains")
PROBLEM_JSON = b"application/problem+json"
BODILESS_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# The access log's status for a request whose client left (or was cut by the read
# deadline) before its body arrived: nothing was answered (nginx's convention).
CLIENT_CLOSED_REQUEST = 499
RATE_LIMITED_TYPE = "https://pokewatch.dev/problems/rate-limited"
UNEXPECTED = "An unexpected error has occurred, please check the server log."


def add_edge(
    service: Any,
    settings: ServiceSettings,
    security: Security,
    mounts: Mapping[str, Any],
    direct: Iterable[str],
) -> None:
    """Install the chain on the service class, in order (BentoML: the first added is the
    outermost). `mounts` are the service's mounted apps by path (their routes' methods
    are checked, and they are called directly); `direct` names the APIs answered
    directly."""
    add = service.add_asgi_middleware
    add(EdgeMiddleware)
    add(
        RequestCheckMiddleware,
        limit=settings.security.max_body_bytes,
        methods=route_methods(service.apis.values(), mounts),
    )
    add(AuthMiddleware, security=security)
    add(RateLimitMiddleware, security=security)
    add(
        OpenAPIMiddleware,
        generated=lambda: service.openapi_spec.asdict(),
        max_page_size=settings.service.max_page_size,
    )
    add(
        DirectApiMiddleware,
        apis=[service.apis[name] for name in direct],
        service=running_service,
        enabled=patches_enabled(),
        mounts=mounts,
        cors=cors_policy(settings.security.cors),
    )


def running_service() -> object | None:
    try:
        return bentoml.get_current_service()  # type: ignore[no-any-return]
    except bentoml.exceptions.BentoMLException:
        return None


def state(scope: Scope) -> dict[str, Any]:
    return scope.setdefault("state", {})  # type: ignore[no-any-return]


def security_headers(path: str) -> list[tuple[bytes, bytes]]:
    """The security headers of every answer; the dashboard's with its script policy."""
    return DASHBOARD_HEADERS if is_dashboard(path) else SECURITY_HEADERS


class EdgeMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        request_id = request_id_of(scope)
        request_state = state(scope)
        request_state["request_id"] = request_id
        added = [*security_headers(scope["path"]), (b"x-request-id", request_id.encode())]
        if scope.get("scheme") == "https" or header(scope, b"x-forwarded-proto") == b"https":
            added.append(HSTS)
        reshape = scope["path"] not in PROBE_PATHS
        start: Message | None = None
        chunks: list[bytes] = []
        status = 500

        async def send_with_headers(message: Message) -> None:
            nonlocal start, status
            if message["type"] == "http.response.start":
                status = message["status"]
                message = {**message, "headers": _with_headers(message, status, added)}
                if status >= 400 and reshape:
                    start = message
                    return
                await send(message)
                return
            if start is None:
                await send(message)
                return
            chunks.append(message.get("body", b""))
            if message.get("more_body", False):
                return
            uniform_start, body = uniform_error(start, status, b"".join(chunks), request_id)
            await send(uniform_start)
            await send({"type": "http.response.body", "body": body})

        try:
            await self.app(scope, receive, send_with_headers)
        finally:
            if scope["path"] not in PROBE_PATHS:
                log_access(scope, request_state, status, time.perf_counter() - started)


def request_id_of(scope: Scope) -> str:
    """The client's X-Request-ID when it is a safe token, else a new one."""
    offered = header(scope, b"x-request-id")
    if offered and REQUEST_ID_PATTERN.fullmatch(offered.decode("latin-1")):
        return offered.decode()
    return uuid.uuid4().hex


def uniform_error(
    start: Message, status: int, body: bytes, request_id: str
) -> tuple[Message, bytes]:
    """An error answer's start and body with the uniform error body (`service.errors`)."""
    uniform, was_uniform = uniform_body(status, body, request_id)
    keep = (b"content-length",) if was_uniform else (b"content-length", b"content-type")
    headers = [(name, value) for name, value in start["headers"] if name.lower() not in keep]
    if not was_uniform:
        headers.append((b"content-type", b"application/json"))
    headers.append((b"content-length", str(len(uniform)).encode()))
    return {**start, "headers": headers}, uniform


def log_access(scope: Scope, request_state: dict[str, Any], status: int, seconds: float) -> None:
    """One access line: the text log has the line, the JSON log (`service.logs`) the fields."""
    fields = {
        "request_id": request_state["request_id"],
        "method": scope["method"],
        "path": scope["path"],
        "status": CLIENT_CLOSED_REQUEST if request_state.get("client_gone") else status,
        "duration_ms": round(seconds * 1000, 1),
        "key_id": request_state.get("key_id", "-"),
    }
    access_log.info("%s %s %s %d %.1fms key=%s", *fields.values(), extra={"fields": fields})


def _with_headers(
    start: Message, status: int, added: list[tuple[bytes, bytes]]
) -> list[tuple[bytes, bytes]]:
    """The response's headers and the edge's; `no-store` unless a successful answer says
    how it may be cached (an error never carries the app's caching headers)."""
    headers: list[tuple[bytes, bytes]] = list(start.get("headers", []))
    if status >= 400:
        headers = [(name, value) for name, value in headers if name.lower() not in CACHING_HEADERS]
    if not any(name.lower() == b"cache-control" for name, _ in headers):
        headers.append(NO_STORE)
    return [*headers, *added]


class RouteMethods:
    """The methods each known route takes. `allowed(path)` is None for a path it does not
    know: the app answers that one (404, or its own routes)."""

    def __init__(
        self,
        exact: Mapping[str, Iterable[str]],
        prefixes: Mapping[str, Iterable[str]] | None = None,
        mounts: Mapping[str, Sequence[BaseRoute]] | None = None,
    ) -> None:
        self.exact = {path: frozenset(methods) for path, methods in exact.items()}
        self.prefixes = {prefix: frozenset(m) for prefix, m in (prefixes or {}).items()}
        self.mounts = dict(mounts or {})

    def allowed(self, path: str) -> frozenset[str] | None:
        if path in self.exact:
            return self.exact[path]
        for prefix, methods in self.prefixes.items():
            if path.startswith(prefix):
                return methods
        for prefix, routes in self.mounts.items():
            if path.startswith(prefix + "/"):
                return self._mounted(routes, path[len(prefix) :])
        return None

    @staticmethod
    def _mounted(routes: Sequence[BaseRoute], path: str) -> frozenset[str] | None:
        methods: set[str] = set()
        for route in routes:
            if isinstance(route, Route) and route.methods and route.path_regex.match(path):
                methods |= route.methods
        return frozenset(methods) if methods else None


def route_methods(apis: Iterable[Any], mounts: Mapping[str, Any]) -> RouteMethods:
    """Every route's methods: the APIs take POST, BentoML's probes, metrics and docs and
    the dashboard GET, the mounted apps what their routes declare."""
    reads = ("GET", "HEAD")
    exact = dict.fromkeys(PROBE_PATHS | METRICS_PATHS | DOCS_PATHS, reads)
    exact |= {api.route: ("POST",) for api in apis}
    exact[DASHBOARD_PATH] = reads
    routed = {path: app.routes for path, app in mounts.items() if hasattr(app, "routes")}
    return RouteMethods(exact, prefixes={DASHBOARD_PREFIX: reads}, mounts=routed)


# An answer given before the app: status, error body, extra headers.
Refusal = tuple[int, dict[str, Any], list[tuple[bytes, bytes]]]


class RequestCheckMiddleware:
    """405 (with `Allow`) for a method the route does not take, before anything reads
    or judges the body; 413 when the declared or the streamed body exceeds the limit;
    415 for non-JSON; then the app gets the whole body at once. OPTIONS (CORS preflight,
    answered further in) and paths that are no route (404) pass."""

    def __init__(self, app: ASGIApp, limit: int, methods: RouteMethods) -> None:
        self.app = app
        self.limit = limit
        self.methods = methods

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        method: str = scope.get("method", "")
        # Reads carry no body: the routers answer a wrong one themselves (405 with Allow).
        if scope["type"] != "http" or method in BODILESS_METHODS:
            await self.app(scope, receive, send)
            return
        allowed = self.methods.allowed(scope["path"])
        if allowed is None:  # no route: the app's 404 never reads the body
            await self.app(scope, receive, send)
            return
        refusal = self._refusal(scope, method, allowed)
        if refusal is not None:
            await send_json(send, *refusal)
            return
        body = await self._whole_body(scope, receive, send)
        if body is None:
            return
        pending: Message | None = {"type": "http.request", "body": body}

        async def replay() -> Message:
            nonlocal pending
            if pending is not None:
                message, pending = pending, None
                return message
            return await receive()  # after the body: the disconnect, when it comes

        await self.app(scope, replay, send)

    def _refusal(self, scope: Scope, method: str, allowed: frozenset[str]) -> Refusal | None:
        """What the request's line and headers alone are refused with, if anything."""
        if method not in allowed:
            allow = ", ".join(sorted(allowed))
            detail = f"{method} {scope['path']}: use {allow}"
            return 405, error_body("method_not_allowed", detail), [(b"allow", allow.encode())]
        declared = header(scope, b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.limit):
            return self._too_large()
        media_type = (header(scope, b"content-type") or b"application/json").split(b";")[0]
        if media_type.strip().lower() != b"application/json" and declared != b"0":
            detail = f"Content-Type {media_type.decode('latin-1')!r}: send application/json"
            return 415, error_body("unsupported_media_type", detail), []
        return None

    async def _whole_body(self, scope: Scope, receive: Receive, send: Send) -> bytes | None:
        """The whole body before the app is called (at most `limit` bytes), or None when
        the request was answered (413) or the client left: one that leaves or is cut by
        the read deadline half-way (service.connections) never reaches an app, which would
        fail on the missing body and log and count a 500."""
        chunks: list[bytes] = []
        received = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                state(scope)["client_gone"] = True
                return None
            chunk = message.get("body", b"")
            received += len(chunk)
            if received > self.limit:
                await send_json(send, *self._too_large())
                return None
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)

    def _too_large(self) -> Refusal:
        detail = f"request body over {self.limit} bytes"
        return 413, error_body("payload_too_large", detail), [(b"connection", b"close")]


class AuthMiddleware:
    def __init__(self, app: ASGIApp, security: Security) -> None:
        self.app = app
        self.security = security
        config = security.settings.security
        limits = config.rate_limit
        self.failure_policy = Policy(
            "auth-failures", limits.auth_failures_per_minute, limits.auth_failures_burst
        )
        self.warns = config.auth_mode == AuthMode.WARN
        self.warning = keyless_warning(config.enforce_from)

    async def _serve_keyless(self, scope: Scope, receive: Receive, send: Send) -> None:
        """`warn` mode: the request is served, limited by its address, logged and counted,
        and its answer says that keys will be required."""
        address = self.security.client_address(scope)
        state(scope)["client_address"] = address
        auth_log.warning("request without an API key from %s: %s", address, scope["path"])
        service_metrics().keyless_requests.labels(route_label(scope["path"])).inc()

        async def send_with_warning(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), *self.warning]}
            await send(message)

        await self.app(scope, receive, send_with_warning)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or self.security.is_public(scope):
            await self.app(scope, receive, send)
            return
        presented = presented_key(scope)
        record = self.security.keys.verify(presented) if presented else None
        needed = required_scope(scope["path"])
        if record is None and not presented and self.warns and needed != KeyScope.ADMIN:
            await self._serve_keyless(scope, receive, send)
            return
        if record is None:
            await self._reject(scope, send, guessed=bool(presented))
            return
        if needed not in record.scopes:
            await send_json(
                send,
                403,
                error_body("forbidden", f"this key lacks the {needed.value!r} scope"),
            )
            return
        request_state = state(scope)
        request_state["key_id"] = record.key_id
        request_state["key"] = record
        await self.app(scope, receive, send)

    async def _reject(self, scope: Scope, send: Send, guessed: bool) -> None:
        """401, or 429 once this address has presented wrong keys too often (a brute-force
        guard; requests without any key are not guesses and always get 401)."""
        if guessed:
            address = self.security.client_address(scope)
            guard = await self.security.limiter.hit(f"authfail:{address}", self.failure_policy)
            if not guard.allowed:
                await send_rate_limited(send, guard.retry_after_header, "too many failed API keys")
                return
        await send_json(
            send,
            401,
            error_body("unauthorized", "a valid API key is required (X-API-Key header)"),
            headers=[(b"www-authenticate", b'Bearer realm="pokewatch"')],
        )


def keyless_warning(enforce_from: date | None) -> list[tuple[bytes, bytes]]:
    """The headers of an answer served without a key in `warn` mode: a Warning (and the
    Sunset of keyless access, RFC 8594, when the day is set)."""
    when = f"from {enforce_from.isoformat()}" if enforce_from else "soon"
    headers = [
        (
            b"warning",
            f'299 pokewatch "requests without an API key will be refused {when}"'.encode(),
        )
    ]
    if enforce_from is not None:
        sunset = datetime.combine(enforce_from, datetime.min.time(), tzinfo=UTC)
        headers.append((b"sunset", format_datetime(sunset, usegmt=True).encode()))
    return headers


def route_label(path: str) -> str:
    """A bounded metric label: the route's first segment (`/v1/cards/x` is `/v1/cards`)."""
    parts = path.split("/")
    return "/".join(parts[:3]) if path.startswith("/v1/") else "/".join(parts[:2])


class RateLimitMiddleware:
    def __init__(self, app: ASGIApp, security: Security) -> None:
        self.app = app
        limits = security.settings.security.rate_limit
        self.enabled = limits.enabled
        self.security = security
        self.policy = Policy("default", limits.per_minute, limits.burst)
        self.costs = limits.scope_costs
        self.policy_header = (
            f'"default";q={limits.burst};w={max(1, round(60 * limits.burst / limits.per_minute))}'
        ).encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        request_state = state(scope) if scope["type"] == "http" else {}
        record: KeyRecord | None = request_state.get("key")
        # A key's quota; in `warn` mode a request without a key has its address's.
        address: str | None = request_state.get("client_address")
        if (record is None and address is None) or not self.enabled:
            await self.app(scope, receive, send)
            return
        bucket = f"key:{record.key_id}" if record is not None else f"address:{address}"
        cost = self.costs.get(required_scope(scope["path"]).value, 1)
        decision = await self.security.limiter.hit(bucket, self.policy, cost)
        labelled(
            service_metrics().rate_limit_decisions, "allowed" if decision.allowed else "limited"
        ).inc()
        reset = max(0, round(decision.reset_seconds))
        headers = [
            (b"ratelimit-policy", self.policy_header),
            (b"ratelimit", f'"default";r={decision.remaining};t={reset}'.encode()),
            (b"x-ratelimit-limit", str(self.policy.burst).encode()),
            (b"x-ratelimit-remaining", str(decision.remaining).encode()),
            (b"x-ratelimit-reset", str(reset).encode()),
        ]
        if not decision.allowed:
            await send_rate_limited(
                send, decision.retry_after_header, "this key's request quota is used up", headers
            )
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), *headers]}
            await send(message)

        await self.app(scope, receive, send_with_headers)


async def send_rate_limited(
    send: Send, retry_after: int, detail: str, headers: list[tuple[bytes, bytes]] | None = None
) -> None:
    await send_json(
        send,
        429,
        error_body(
            "rate_limited",
            f"{detail}; retry after {retry_after} s",
            type=RATE_LIMITED_TYPE,
            title="Too Many Requests",
            status=429,
        ),
        headers=[(b"retry-after", str(retry_after).encode()), *(headers or [])],
        content_type=PROBLEM_JSON,
    )


class OpenAPIMiddleware:
    """Answers GET /docs.json with the corrected document (inside auth: policy applies)."""

    def __init__(
        self, app: ASGIApp, generated: Callable[[], dict[str, Any]], max_page_size: int
    ) -> None:
        self.app = app
        self.generated = generated
        self.max_page_size = max_page_size
        self.document: dict[str, Any] | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] != "/docs.json" or scope["method"] != "GET":
            await self.app(scope, receive, send)
            return
        if self.document is None:
            self.document = pokewatch_openapi(self.generated(), self.max_page_size)
        await send_json(send, 200, self.document)


class DirectApi:
    """One API answered directly, as BentoML 1.4.39's `api_endpoint` does for a JSON body
    and nothing else: its own input model validates the body (`{}` when empty), a
    validation error is the same 400, and its function is called with the fields.

    BentoML answers a call through `ContextMiddleware` (a `Request` per call), its router,
    dependency injection and `inspect.signature` per call: about 17 % of a worker's CPU on a
    cached `/fair_price` (docs/performance.md). The `@bentoml.api` declaration stays the one
    definition (its signature is the input model and the OpenAPI schema). It mirrors
    1.4.39's endpoint, so it serves only while the patches are on
    (`service.patches.patches_enabled`); otherwise every call takes BentoML's own path."""

    def __init__(self, method: Any) -> None:
        if not inspect.iscoroutinefunction(method.func):
            raise TypeError(f"{method.name}: only coroutine APIs are answered directly")
        self.input_model = method.input_spec
        self.fields = tuple(self.input_model.model_fields)
        self.function: Callable[..., Any] = method.func

    async def answer(self, instance: object, body: bytes) -> Response:
        model = self.input_model.model_validate_json(body or b"{}")
        response = await self.function(
            instance, **{name: getattr(model, name) for name in self.fields}
        )
        if not isinstance(response, Response):
            raise TypeError("an API answered directly must return a Response")
        return response


class DirectApiMiddleware:
    """`POST` to one of the `apis`' routes answered by `DirectApi`; a path under one of the
    `mounts` prefixes called the way BentoML's router would (the `Mount` scope: `root_path`
    extended by the prefix), without its walk over every route; everything else passes on.

    `service` gives the running service instance (None before it exists: BentoML answers).
    """

    def __init__(
        self,
        app: ASGIApp,
        apis: Iterable[Any],
        service: Callable[[], object | None],
        enabled: bool,
        mounts: Mapping[str, ASGIApp] | None = None,
        cors: dict[str, Any] | None = None,
    ) -> None:
        self.app = app
        self.routes = {api.route: DirectApi(api) for api in apis} if enabled else {}
        self.service = service
        # Direct answers pass before BentoML's CORS middleware: they get the same policy.
        self.answer = with_cors(self._answer, cors)
        self.mounts = (
            {prefix: with_cors(mounted, cors) for prefix, mounted in (mounts or {}).items()}
            if enabled
            else {}
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or self.service() is None:
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        if path in self.routes and scope["method"] == "POST":
            await self.answer(scope, receive, send)
            return
        prefix = "/" + path.split("/", 2)[1]
        mounted = self.mounts.get(prefix) if path.startswith(prefix + "/") else None
        if mounted is None:
            await self.app(scope, receive, send)
            return
        root_path = scope.get("root_path", "")
        child = {
            **scope,
            "app_root_path": scope.get("app_root_path", root_path),
            "root_path": root_path + prefix,
        }
        await mounted(child, receive, send)

    async def _answer(self, scope: Scope, receive: Receive, send: Send) -> None:
        api = self.routes[scope["path"]]
        instance = self.service()
        body = await read_body(receive)
        if body is None:
            return  # the client left (or the body limit answered already)
        try:
            response = await api.answer(instance, body)
        except ValidationError as error:
            # BentoML's own answers (the edge makes them the uniform error body).
            await send_json(
                send,
                400,
                {
                    "error": f"{error.error_count()} validation error for {error.title}",
                    "detail": error.errors(include_context=False, include_input=False),
                },
            )
            return
        except Exception:
            direct_log.exception("%s failed", scope["path"])
            await send_json(send, 500, {"error": UNEXPECTED})
            return
        await response(scope, receive, send)


def with_cors(app: ASGIApp, cors: dict[str, Any] | None) -> ASGIApp:
    return app if cors is None else CORSMiddleware(app, **cors)


async def read_body(receive: Receive) -> bytes | None:
    """The whole request body, or None when the client disconnects first."""
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)
