"""PokeWatch's Prometheus metrics, served by BentoML's /metrics.

Created on first use, inside a worker: BentoML sets PROMETHEUS_MULTIPROC_DIR in each
worker after importing the service, and metrics created before that would be invisible
to its multiprocess collector (so counts add up across workers only this way).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

from prometheus_client import Counter, Gauge


@dataclass(frozen=True)
class ServiceMetrics:
    rate_limit_decisions: Counter
    redis_degraded: Gauge


@cache
def service_metrics() -> ServiceMetrics:
    return ServiceMetrics(
        rate_limit_decisions=Counter(
            "pokewatch_rate_limit_decisions_total",
            "Rate-limit decisions on authenticated requests.",
            ["decision"],
        ),
        redis_degraded=Gauge(
            "pokewatch_redis_degraded",
            "1 while a Redis-backed component runs on its local fallback.",
            ["component"],
            multiprocess_mode="livemax",
        ),
    )
