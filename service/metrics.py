"""PokeWatch's Prometheus metrics, served by BentoML's /metrics.

Created on first use, inside a worker: BentoML sets PROMETHEUS_MULTIPROC_DIR in each
worker after importing the service, and metrics created before that would be invisible
to its multiprocess collector (so counts add up across workers only this way).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import TypeVar

from prometheus_client import Counter, Gauge, Histogram

# Latency buckets for an in-memory lookup answered in microseconds to milliseconds.
LATENCY_BUCKETS = (0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.05, 0.25)
BATCH_BUCKETS = (1, 10, 50, 100, 250, 500, 1000, 5000)


Metric = TypeVar("Metric", Counter, Gauge, Histogram)
_children: dict[tuple[int, tuple[str, ...]], object] = {}


def labelled(metric: Metric, *values: str) -> Metric:
    """`metric.labels(*values)`, looked up once per label values: `labels()` takes a lock
    and checks the values on every call (2-3 µs, the increment itself under 1 µs; the
    per-request metrics use this). Only for label values from a small fixed set."""
    key = (id(metric), values)
    child = _children.get(key)
    if child is None:
        child = _children[key] = metric.labels(*values)
    return child  # type: ignore[return-value]


@dataclass(frozen=True)
class ServiceMetrics:
    rate_limit_decisions: Counter
    redis_degraded: Gauge
    prediction_seconds: Histogram
    cache_lookups: Counter
    batch_size: Histogram
    signals: Counter
    data_as_of: Gauge
    data_age: Gauge
    job_last_success: Gauge
    job_last_failure: Gauge
    model_fallback: Gauge
    serving: Gauge
    keyless_requests: Counter
    connections_closed: Counter
    keys_file_unusable: Gauge


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
        prediction_seconds=Histogram(
            "pokewatch_prediction_seconds",
            "Time to answer an API call inside the service (cache and model).",
            ["endpoint"],
            buckets=LATENCY_BUCKETS,
        ),
        cache_lookups=Counter(
            "pokewatch_cache_lookups_total",
            "Prediction cache lookups by tier and result.",
            ["tier", "result"],
        ),
        batch_size=Histogram(
            "pokewatch_batch_size", "Items per /batch_predict call.", buckets=BATCH_BUCKETS
        ),
        signals=Counter("pokewatch_signals_total", "Signals answered, by type.", ["signal"]),
        data_as_of=Gauge(
            "pokewatch_data_as_of_timestamp_seconds",
            "End (UTC) of the newest collected day the answers are about.",
            multiprocess_mode="livemax",
        ),
        data_age=Gauge(
            "pokewatch_data_age_seconds",
            "Seconds since the end of the newest collected day the answers are about.",
            multiprocess_mode="livemax",
        ),
        job_last_success=Gauge(
            "pokewatch_job_last_success_timestamp_seconds",
            "When each job (daily, collect, score, retrain) last succeeded.",
            ["job"],
            multiprocess_mode="livemax",
        ),
        job_last_failure=Gauge(
            "pokewatch_job_last_failure_timestamp_seconds",
            "When each job (daily, collect, score, retrain) last failed.",
            ["job"],
            multiprocess_mode="livemax",
        ),
        model_fallback=Gauge(
            "pokewatch_model_fallback",
            "1 while the newest production model cannot be used and an older one is served.",
            multiprocess_mode="livemax",
        ),
        serving=Gauge(
            "pokewatch_serving_info",
            "1 for the model a worker answers from (0 once replaced).",
            ["model_version"],
            multiprocess_mode="livemax",
        ),
        keyless_requests=Counter(
            "pokewatch_keyless_requests_total",
            "Requests served without an API key (security.auth_mode: warn), by route.",
            ["route"],
        ),
        connections_closed=Counter(
            "pokewatch_connections_closed_total",
            "Connections the worker closed itself: a request not received in time "
            "(read_timeout) or one connection over the cap (over_capacity).",
            ["reason"],
        ),
        keys_file_unusable=Gauge(
            "pokewatch_keys_file_unusable",
            "1 while the keys file cannot be used and the last good keys stay in force.",
            multiprocess_mode="livemax",
        ),
    )
