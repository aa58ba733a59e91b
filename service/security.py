"""Who may call what: the public paths, the scope each route needs, where a key is read
from, and one worker's key store and rate limiter (`Security`, built by `build_security`).

The middleware of `service.edge` applies these rules; nothing here sends a response.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from starlette.types import Scope

from service.keys import KeyStore
from service.keys import Scope as KeyScope
from service.ratelimit import LeasedLimiter, Limiter, MemoryLimiter, RedisLimiter
from service.redis_guard import RedisGuard
from service.settings import AuthMode, CorsSettings, ServiceSettings

# BentoML's probes: never authenticated, rate limited or reshaped.
PROBE_PATHS = frozenset({"/livez", "/readyz", "/healthz"})
METRICS_PATHS = frozenset({"/metrics"})
DOCS_PATHS = frozenset({"/docs.json", "/"})
DOCS_PREFIXES = ("/static_content/",)
# The dashboard's static files (service/dashboard.py): public, with a strict policy.
DASHBOARD_PATH = "/ui"
DASHBOARD_PREFIX = f"{DASHBOARD_PATH}/"
# Routes not listed need the predict scope; bulk answers (many items at once) need batch.
ROUTE_SCOPES = {
    "/batch_predict": KeyScope.BATCH,
    "/v1/portfolio/valuate": KeyScope.BATCH,
}
BATCH_PREFIXES = ("/v1/export/",)
ADMIN_PREFIX = "/admin/"
CORS_METHODS = ["GET", "POST", "DELETE", "OPTIONS"]
CORS_HEADERS = ["Content-Type", "X-API-Key", "Authorization", "X-Request-ID", "If-None-Match"]
CORS_EXPOSED = ["X-Request-ID", "ETag", "RateLimit", "RateLimit-Policy", "Retry-After"]


def header(scope: Scope, name: bytes) -> bytes | None:
    for key, value in scope["headers"]:
        if key == name:
            return bytes(value)
    return None


def is_dashboard(path: str) -> bool:
    return path == DASHBOARD_PATH or path.startswith(DASHBOARD_PREFIX)


def required_scope(path: str) -> KeyScope:
    if path.startswith(ADMIN_PREFIX):
        return KeyScope.ADMIN
    if path.startswith(BATCH_PREFIXES):
        return KeyScope.BATCH
    return ROUTE_SCOPES.get(path, KeyScope.PREDICT)


def presented_key(scope: Scope) -> str:
    """The key from X-API-Key, else `Authorization: Bearer`; never from the query string."""
    key = header(scope, b"x-api-key")
    if key is None:
        authorization = header(scope, b"authorization") or b""
        scheme, _, token = authorization.partition(b" ")
        key = token.strip() if scheme.lower() == b"bearer" else b""
    return key.decode("latin-1")


@dataclass
class Security:
    """Per-process security state shared by the middleware of one worker."""

    settings: ServiceSettings
    keys: KeyStore
    limiter: Limiter

    def is_public(self, scope: Scope) -> bool:
        path: str = scope["path"]
        if path in PROBE_PATHS:
            return True
        if scope["method"] == "OPTIONS" and header(scope, b"access-control-request-method"):
            return True  # CORS preflight: browsers never send credentials with it
        config = self.settings.security
        if path in METRICS_PATHS:
            return config.metrics_public
        if path in DOCS_PATHS or path.startswith(DOCS_PREFIXES):
            return config.docs_public
        if is_dashboard(path):
            return True
        return config.auth_mode == AuthMode.OFF and not presented_key(scope)

    def client_address(self, scope: Scope) -> str:
        if self.settings.security.trust_forwarded_for:
            forwarded = header(scope, b"x-forwarded-for")
            if forwarded:
                return forwarded.split(b",")[0].strip().decode("latin-1")
        client = scope.get("client")
        return str(client[0]) if client else "unknown"

    async def start(self) -> None:
        """In the worker, before it serves: report the keys; warm the Redis limiter up."""
        self.keys.report()
        if isinstance(self.limiter, RedisLimiter):
            await self.limiter.warm_up()

    async def close(self) -> None:
        if isinstance(self.limiter, RedisLimiter):
            await self.limiter.close()


def cors_policy(cors: CorsSettings) -> dict[str, Any] | None:
    """Starlette's `CORSMiddleware` arguments from the explicit allowlist (None: CORS off)."""
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


def bentoml_cors(cors: CorsSettings) -> dict[str, Any]:
    """The same policy in BentoML's `http.cors` terms (its middleware answers what the
    directly answered routes of `service.edge` do not)."""
    policy = cors_policy(cors)
    if policy is None:
        return {"enabled": False}
    return {"enabled": True} | {f"access_control_{name}": value for name, value in policy.items()}


def build_security(settings: ServiceSettings) -> Security:
    config = settings.security
    limiter: Limiter
    guard = RedisGuard.from_settings(settings.redis, "ratelimit")
    if config.rate_limit.backend == "redis" and guard is not None:
        workers = settings.service.workers
        lease = config.rate_limit.lease_tokens
        limiter = (
            LeasedLimiter(guard, workers, lease) if lease > 1 else RedisLimiter(guard, workers)
        )
    else:
        limiter = MemoryLimiter()
    return Security(settings, KeyStore(Path(config.keys_file), config.keys_reload_seconds), limiter)


__all__ = [
    "DASHBOARD_PATH",
    "DASHBOARD_PREFIX",
    "DOCS_PATHS",
    "METRICS_PATHS",
    "PROBE_PATHS",
    "Security",
    "bentoml_cors",
    "build_security",
    "cors_policy",
    "header",
    "is_dashboard",
    "presented_key",
    "required_scope",
]
