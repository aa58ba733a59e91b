"""Service settings: the `service`, `security`, `cache`, `redis`, `store`, `schedule` and
`alerts` sections of configuration.yaml (`store`, `schedule` and `alerts` are shared with
the jobs: they write where the service reads, when the schedule says)."""

from __future__ import annotations

from datetime import date
from enum import StrEnum
from ipaddress import IPv4Network, IPv6Network
from pathlib import Path
from typing import Literal

from croniter import croniter
from pydantic import Field, field_validator, model_validator

from model.artifact import MODEL_NAME
from model.frozen import FrozenSettings
from model.settings import ConfigFileSettings, ModelSettings


class ServingSettings(FrozenSettings):
    model_tag: str = f"{MODEL_NAME}:latest"
    workers: int = Field(default=1, ge=1, le=64)
    timeout_seconds: int = Field(default=10, ge=1, le=600)
    max_batch_size: int = Field(default=1000, ge=1, le=100_000)
    max_page_size: int = Field(default=500, ge=1, le=10_000)
    # How often each worker looks for a newly promoted model or published day (0: never).
    reload_seconds: float = Field(default=30, ge=0)
    # Answers say `stale: true` once the newest collected day is older than this.
    stale_after_hours: float = Field(default=36, gt=0)
    # The workers' log lines: `text`, or `json` (one object a line, for a log collector).
    log_format: Literal["text", "json"] = "text"


class RateLimitSettings(FrozenSettings):
    enabled: bool = True
    backend: str = Field(default="memory", pattern="^(memory|redis)$")
    per_minute: int = Field(default=600, ge=1)
    burst: int = Field(default=60, ge=1)
    # A request in a scope costs this many tokens (scopes not listed cost 1).
    scope_costs: dict[str, int] = Field(default_factory=lambda: {"batch": 10})
    # Redis backend: tokens a worker takes from a key's shared bucket per round trip. 1 is
    # exact (one round trip per request); more saves round trips, with the bounded overshoot
    # of service.ratelimit.LeasedLimiter.
    lease_tokens: int = Field(default=1, ge=1, le=1000)
    auth_failures_per_minute: int = Field(default=10, ge=1)
    auth_failures_burst: int = Field(default=20, ge=1)

    @model_validator(mode="after")
    def _costs_fit_in_a_burst(self) -> RateLimitSettings:
        too_dear = {scope: cost for scope, cost in self.scope_costs.items() if cost > self.burst}
        if too_dear:
            raise ValueError(f"scope costs {too_dear} exceed the burst {self.burst}")
        return self


class CorsSettings(FrozenSettings):
    allow_origins: list[str] = Field(default_factory=list)
    allow_credentials: bool = False
    max_age_seconds: int = 600

    @model_validator(mode="after")
    def _no_wildcard_with_credentials(self) -> CorsSettings:
        if self.allow_credentials and "*" in self.allow_origins:
            raise ValueError("allow_origins '*' cannot be combined with allow_credentials")
        return self


class AuthMode(StrEnum):
    """How requests without a valid key are treated (a wrong key is refused in every mode)."""

    ENFORCE = "enforce"  # 401
    WARN = "warn"  # served with a Warning header, logged, counted, limited per address
    OFF = "off"  # served (a trusted network only)


class SecuritySettings(FrozenSettings):
    auth_mode: AuthMode = AuthMode.ENFORCE
    # In `warn` mode, the day keys become required (named in the Warning and Sunset headers).
    enforce_from: date | None = None
    keys_file: str = "data/keys.json"
    key_env: str = Field(default="dev", pattern=r"^[a-z0-9]{1,16}$")
    keys_reload_seconds: float = Field(default=1.0, ge=0)
    # Who may read BentoML's /metrics and the OpenAPI document (/docs.json and the UI at /).
    metrics_public: bool = True
    docs_public: bool = True
    max_body_bytes: int = Field(default=1_048_576, ge=1024)
    # A request's headers and body must arrive within this many seconds (408, then closed),
    # and a worker holds at most this many connections (service.connections).
    request_read_seconds: float = Field(default=15, gt=0, le=600)
    max_connections: int = Field(default=1000, ge=1, le=1_000_000)
    # The request line and headers: 431 above this.
    max_header_bytes: int = Field(default=65_536, ge=1024, le=16_777_216)
    # Take the client address from X-Forwarded-For (only behind a trusted proxy).
    trust_forwarded_for: bool = False
    rate_limit: RateLimitSettings = RateLimitSettings()
    cors: CorsSettings = CorsSettings()


class CacheSettings(FrozenSettings):
    enabled: bool = True
    max_items: int = Field(default=100_000, ge=1)  # per worker
    ttl_seconds: float = Field(default=3600, gt=0)
    jitter: float = Field(default=0.1, ge=0, lt=1)
    # Share answers through Redis too, when redis.url is set.
    use_redis: bool = True


class RedisSettings(FrozenSettings):
    # None: no Redis (in-memory cache and limiter). Secrets belong in POKEWATCH_REDIS__URL.
    url: str | None = None
    timeout_ms: int = Field(default=50, ge=1, le=5000)
    cool_down_seconds: float = Field(default=2.0, ge=0)


class StoreSettings(FrozenSettings):
    """Where trained models, published answers and the jobs' status live (`service.store`)."""

    # None: BentoML's home (BENTOML_HOME, ~/bentoml by default). Deployments point the jobs
    # and the API at one shared directory.
    path: Path | None = None
    # Published days kept for the production model (older models keep their newest one).
    keep_published: int = Field(default=7, ge=1)


class ScheduleSettings(FrozenSettings):
    """When the jobs run: cron expressions in UTC (the crontab, compose and the CronJobs).

    The service reads it too: a v1 answer may be cached until the next run can change it."""

    daily: str = "0 3 * * *"  # collect, score and publish
    retrain: str = "0 4 * * 0"  # the training pipeline, weekly

    @field_validator("daily", "retrain")
    @classmethod
    def _cron(cls, expression: str) -> str:
        if not croniter.is_valid(expression):
            raise ValueError(
                f"{expression!r} is not a cron expression (minute hour day month weekday)"
            )
        return expression


class DeliverySettings(FrozenSettings):
    """How webhook events are delivered (`pipelines.alerts`, docs/alerts.md)."""

    # One attempt: connect, send and read the answer's status within this.
    timeout_seconds: float = Field(default=10, gt=0, le=60)
    # Attempts before a delivery is dead-lettered (redeliver it by hand).
    max_attempts: int = Field(default=8, ge=1, le=50)
    # Full-jitter backoff: the wait before attempt n+1 is uniform in
    # [0, min(max_wait_seconds, initial_wait_seconds * 2^n)].
    initial_wait_seconds: float = Field(default=10, ge=0)
    max_wait_seconds: float = Field(default=3600, ge=0)
    # A receiver's Retry-After is honoured up to this.
    max_retry_after_seconds: float = Field(default=3600, ge=0)
    # Of a receiver's answer, this much is read and kept in the delivery log.
    max_response_bytes: int = Field(default=2048, ge=0, le=65536)
    # A run waits this long for retries that are due; later ones are left to the next run.
    run_seconds: float = Field(default=900, ge=0)


class AlertsSettings(FrozenSettings):
    """Watchlists and webhooks: where they are kept and what a webhook may target."""

    # SQLAlchemy URL; None: SQLite (WAL) in the store's state directory. PostgreSQL:
    # postgresql+psycopg://user@host/db (a password belongs in POKEWATCH_ALERTS__DATABASE_URL).
    database_url: str | None = None
    # Webhook URLs must be https; false only for a development receiver.
    require_https: bool = True
    # Private, loopback, link-local and other non-public targets are refused unless they lie
    # in one of these networks (e.g. 127.0.0.0/8 for a receiver on this machine).
    allowed_networks: list[IPv4Network | IPv6Network] = Field(default_factory=list)
    max_items_per_key: int = Field(default=1000, ge=1, le=100_000)
    max_webhooks_per_key: int = Field(default=10, ge=1, le=100)
    delivery: DeliverySettings = DeliverySettings()


class ServiceSettings(ConfigFileSettings):
    model: ModelSettings = ModelSettings()
    store: StoreSettings = StoreSettings()
    schedule: ScheduleSettings = ScheduleSettings()
    service: ServingSettings = ServingSettings()
    security: SecuritySettings = SecuritySettings()
    cache: CacheSettings = CacheSettings()
    redis: RedisSettings = RedisSettings()
    alerts: AlertsSettings = AlertsSettings()

    @model_validator(mode="after")
    def _redis_backend_needs_a_url(self) -> ServiceSettings:
        if self.security.rate_limit.backend == "redis" and not self.redis.url:
            raise ValueError("security.rate_limit.backend is redis but redis.url is not set")
        return self
