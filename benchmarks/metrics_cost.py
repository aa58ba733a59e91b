"""What PokeWatch's per-request metric work costs: prometheus_client as `service.metrics`
uses it, against BentoML 1.4.39's `bentoml.metrics`, in the multiprocess mode of a worker.

The work is what one cached `POST /fair_price` records (`service.answers`): one counter
increment with a label (`pokewatch_signals_total{signal}`) and one histogram observation
with a label (`pokewatch_prediction_seconds{endpoint}`). Variants:

- **prometheus_client**: `service.metrics` itself (`service_metrics()`, children cached
  by `labelled()`), what the service runs;
- **bentoml.metrics, labelled()**: the same two metrics made by `bentoml.metrics.Counter`
  and `bentoml.metrics.Histogram`, children cached the same way (the like-for-like switch);
- **bentoml.metrics, labels()**: the same without the cache (`metric.labels(...)` on
  every request).

Set up like a BentoML worker: `PROMETHEUS_MULTIPROC_DIR` (a temporary directory) is set
before prometheus_client is imported and before any metric is made, so every value is an
mmapped file value (the run checks the files appear). `bentoml.metrics` needs no running
server: it resolves its names on first access, in whatever process asks. Rounds alternate
between the variants (the order rotating) and each figure is the median round, less the
cost of calling an empty function the same way.

    .venv/bin/python -m benchmarks.metrics_cost [--calls 20000] [--rounds 15]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import timeit
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

SIGNAL = "HOLD"
ENDPOINT = "fair_price"
SECONDS = 0.0002  # a cached answer's time: it lands in the third latency bucket


@dataclass(frozen=True)
class Setup:
    variants: dict[str, Callable[[], None]]
    same_classes: bool  # bentoml.metrics.Counter is prometheus_client.Counter
    deprecation: str  # the warning the first access to bentoml.metrics gave, if any


def multiprocess_mode(directory: Path) -> None:
    """A worker's state: the directory set before prometheus_client is first imported."""
    if "prometheus_client" in sys.modules:
        raise SystemExit("prometheus_client was imported before PROMETHEUS_MULTIPROC_DIR was set")
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(directory)


def service_variant() -> Callable[[], None]:
    from service.metrics import labelled, service_metrics

    metrics = service_metrics()

    def record() -> None:
        labelled(metrics.signals, SIGNAL).inc()
        labelled(metrics.prediction_seconds, ENDPOINT).observe(SECONDS)

    return record


def bentoml_variants() -> tuple[dict[str, Callable[[], None]], bool, str]:
    """The bentoml.metrics variants, whether its classes are prometheus_client's, and the
    warning its first access gave."""
    import bentoml
    import prometheus_client

    from service.metrics import LATENCY_BUCKETS, labelled

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        counter_class, histogram_class = bentoml.metrics.Counter, bentoml.metrics.Histogram
    signals = counter_class("bench_bentoml_signals", "Signals answered, by type.", ["signal"])
    seconds = histogram_class(
        "bench_bentoml_prediction_seconds",
        "Time to answer an API call inside the service (cache and model).",
        ["endpoint"],
        buckets=LATENCY_BUCKETS,
    )

    def cached() -> None:
        labelled(signals, SIGNAL).inc()
        labelled(seconds, ENDPOINT).observe(SECONDS)

    def documented() -> None:
        signals.labels(SIGNAL).inc()
        seconds.labels(ENDPOINT).observe(SECONDS)

    same = counter_class is prometheus_client.Counter
    same = same and histogram_class is prometheus_client.Histogram
    deprecation = "; ".join(sorted({str(warning.message) for warning in caught}))
    variants = {"bentoml.metrics, labelled()": cached, "bentoml.metrics, labels()": documented}
    return variants, same, deprecation


def setup() -> Setup:
    def empty() -> None:
        return None

    variants = {"empty call": empty, "prometheus_client (service.metrics)": service_variant()}
    more, same, deprecation = bentoml_variants()
    return Setup({**variants, **more}, same, deprecation)


def ns_per_call(work: Callable[[], None], calls: int) -> float:
    return timeit.Timer(work).timeit(number=calls) / calls * 1e9


def median_ns(variants: dict[str, Callable[[], None]], calls: int, rounds: int) -> dict[str, float]:
    """Each variant's median round (ns a call), the variants alternating, the order rotating."""
    names = list(variants)
    for name in names:  # warm-up: children made, files mapped
        ns_per_call(variants[name], calls // 10 or 1)
    timings: dict[str, list[float]] = {name: [] for name in names}
    for round_number in range(rounds):
        shift = round_number % len(names)
        for name in names[shift:] + names[:shift]:
            timings[name].append(ns_per_call(variants[name], calls))
    return {name: statistics.median(found) for name, found in timings.items()}


def report(found: dict[str, float], prepared: Setup, calls: int, rounds: int) -> list[str]:
    baseline = found.pop("empty call")
    ours = found["prometheus_client (service.metrics)"] - baseline
    lines = [
        f"{calls:,} requests x {rounds} rounds, multiprocess mode, median round, less the "
        f"empty call ({baseline:.0f} ns)",
        "",
        "| metrics per cached /fair_price | ns/request | vs prometheus_client |",
        "|---|---:|---:|",
    ]
    for name, ns in found.items():
        lines.append(f"| {name} | {ns - baseline:,.0f} | {(ns - baseline) / ours:.2f}x |")
    lines += [
        "",
        "bentoml.metrics.Counter/Histogram are prometheus_client's classes: "
        + ("yes" if prepared.same_classes else "no"),
        f"bentoml.metrics warns: {prepared.deprecation or '(nothing)'}",
    ]
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=20_000, help="requests a round")
    parser.add_argument("--rounds", type=int, default=15)
    options = parser.parse_args()
    directory = Path(tempfile.mkdtemp(prefix="pokewatch-metrics-cost-"))
    try:
        multiprocess_mode(directory)
        prepared = setup()
        found = median_ns(prepared.variants, options.calls, options.rounds)
        if not any(directory.glob("*.db")):
            raise SystemExit(f"no multiprocess files in {directory}: not multiprocess mode")
        print("\n".join(report(found, prepared, options.calls, options.rounds)))
    finally:
        shutil.rmtree(directory, ignore_errors=True)


if __name__ == "__main__":
    main()
