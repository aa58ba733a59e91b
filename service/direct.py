"""HTTP calls of the hot JSON APIs and of mounted apps answered without BentoML's
per-call machinery.

BentoML 1.4.39 answers an API call through `ContextMiddleware` (a `Request` per call),
its router, `api_endpoint_wrapper` (dependency injection per call) and `APIMethod`
(`inspect.signature` per call, a pydantic deprecation warning per call): about 17 % of a
worker's CPU on a cached `/fair_price` (docs/performance.md). For the routes given, this
innermost middleware does what BentoML's `api_endpoint` does for a JSON body, and nothing
else: the API's own input model validates the body (`input_spec.model_validate_json`, an
empty body read as `{}`), a validation error is the same 400, and the method's own
function is called with the fields. The `@bentoml.api` declaration stays the one
definition: its signature is the input model and the OpenAPI schema, its body the answer.

A mounted ASGI app (the REST API v1) is called the way BentoML's router would call it
(the `Mount` scope: `root_path` extended by the prefix), without the `ContextMiddleware`
and the router's walk over every route before it.

It mirrors BentoML 1.4.39's endpoint, so it serves only on that version and while the
patches are on (`service.patches.patches_enabled`); otherwise every call takes BentoML's
own path. Only APIs whose function is a coroutine returning a `Response` may be named.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from pydantic import ValidationError
from starlette.middleware.cors import CORSMiddleware
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from service.errors import send_json

logger = logging.getLogger("pokewatch.direct")
UNEXPECTED = "An unexpected error has occurred, please check the server log."


class DirectApi:
    """One API answered directly: its input model and its function."""

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
    """`POST` to one of the `apis`' routes answered by `DirectApi`, a path under one of the
    `mounts` prefixes by that app; everything else passes on.

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
            logger.exception("%s failed", scope["path"])
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


__all__ = ["DirectApi", "DirectApiMiddleware", "read_body", "with_cors"]
