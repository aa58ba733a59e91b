"""Per-layer CPU of a PokeWatch worker under load, from py-spy samples (`make bench
BENCH_ARGS=--profile`).

py-spy (the `bench` extra) records each worker (`--nonblocking`, idle samples left out, so
every sample is CPU spent) while wrk drives one workload. A sample belongs to the layer of
its innermost frame that is in a known layer's code: library internals (asyncio, redis-py,
numpy, logging...) count for the PokeWatch or framework code that called them, so the
limiter's Redis round trip counts as "rate limit", the access-log line as "edge".
"""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from collections import Counter
from collections.abc import Iterable
from functools import cache
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
FRAME = re.compile(r"^(?P<function>.*) \((?P<file>[^():]+):(?P<line>\d+)\)$")
# The middleware module's classes, each its own layer.
MIDDLEWARE_LAYERS = {
    "EdgeMiddleware": "edge: request ID, security headers, access log",
    "RequestCheckMiddleware": "request checks",
    "AuthMiddleware": "auth (key hash, compare)",
    "RateLimitMiddleware": "rate limit",
    "OpenAPIMiddleware": "OpenAPI pass-through",
    "DirectApiMiddleware": "direct API (input model, call)",
    "DirectApi": "direct API (input model, call)",
}
# The project's files (path from the repository root starts with it), then libraries (the
# path contains it); first match wins, checked from the innermost frame out.
PROJECT_LAYERS = [
    ("service/ratelimit.py", "rate limit"),
    ("service/keys.py", "auth (key hash, compare)"),
    ("service/cache.py", "answers, cache"),
    ("service/answers.py", "answers, cache"),
    ("service/metrics.py", "PokeWatch metrics"),
    ("service/v1.py", "v1 app (routes, ETag)"),
    ("service/openapi.py", "OpenAPI pass-through"),
    ("service/patches.py", "BentoML timeout, concurrency"),
    ("model/", "model lookup"),
]
METRICS = "PokeWatch metrics"
BENTOML_METRICS = "BentoML metrics middleware"
LIBRARY_LAYERS = [
    # prometheus_client counts for the metrics of whoever called it (`sample_layer`).
    ("/prometheus_client/", METRICS),
    ("/bentoml/_internal/server/http/instruments.py", BENTOML_METRICS),
    ("/bentoml/_internal/server/http/traffic.py", "BentoML timeout, concurrency"),
    ("/_bentoml_impl/server/", "BentoML endpoint machinery"),
    ("/_bentoml_sdk/", "BentoML endpoint machinery"),
    ("/simple_di/", "BentoML endpoint machinery"),
    ("/pydantic", "input validation (pydantic)"),
    ("/starlette/", "Starlette routing, requests, responses"),
    ("/uvicorn/", "uvicorn protocol (httptools, transport)"),
]
OTHER = "event loop, tasks, other"


@cache
def class_spans(relative: str) -> list[tuple[int, int, str]]:
    """(first line, last line, class name) of each class of a project file."""
    try:
        tree = ast.parse((REPO / relative).read_text())
    except (OSError, SyntaxError):
        return []
    return [
        (node.lineno, node.end_lineno or node.lineno, node.name)
        for node in ast.walk(tree)
        if isinstance(node, ast.ClassDef)
    ]


def frame_layer(frame: str) -> str | None:
    found = FRAME.match(frame)
    if found is None:
        return None
    file, line = found["file"], int(found["line"])
    relative = file.removeprefix(f"{REPO}/")
    if relative == "service/edge.py":
        for first, last, name in class_spans(relative):
            if first <= line <= last and name in MIDDLEWARE_LAYERS:
                return MIDDLEWARE_LAYERS[name]
        return None
    for prefix, layer in PROJECT_LAYERS:
        if relative.startswith(prefix):
            return layer
    for fragment, layer in LIBRARY_LAYERS:
        if fragment in file:
            return layer
    return None


def sample_layer(stack: str) -> str:
    """The layer of one sample (frames outermost first, `;`-separated). Time in
    prometheus_client is BentoML's metrics when BentoML's metrics middleware called it,
    else PokeWatch's."""
    in_metrics = False
    for frame in reversed(stack.split(";")):
        layer = frame_layer(frame.strip())
        if layer == METRICS:
            in_metrics = True
        elif layer is not None:
            if not in_metrics:
                return layer
            return BENTOML_METRICS if layer == BENTOML_METRICS else METRICS
    return METRICS if in_metrics else OTHER


def layers(raw_lines: Iterable[str]) -> Counter[str]:
    """Samples per layer from py-spy's raw format (`stack count` per line)."""
    counts: Counter[str] = Counter()
    for line in raw_lines:
        stack, _, count = line.rstrip().rpartition(" ")
        if stack and count.isdigit():
            counts[sample_layer(stack)] += int(count)
    return counts


def worker_pids(root: int) -> list[int]:
    """The BentoML workers under a `bentoml serve` process."""
    workers = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            command = cmdline.read_bytes().replace(b"\0", b" ")
            parent = int((cmdline.parent / "stat").read_text().rpartition(")")[2].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        if parent == root and b"_bentoml_impl.worker.service" in command:
            workers.append(int(cmdline.parent.name))
    return sorted(workers)


def record(pids: list[int], seconds: float, out: Path) -> list[subprocess.Popen[bytes]]:
    """Start py-spy on each worker (raw samples into `out`.<pid>)."""
    py_spy = str(Path(sys.executable).parent / "py-spy")
    return [
        subprocess.Popen(
            [
                py_spy,
                "record",
                "--nonblocking",
                "--full-filenames",
                "--rate",
                "200",
                "--format",
                "raw",
                "--duration",
                str(max(1, round(seconds))),
                "--pid",
                str(pid),
                "--output",
                f"{out}.{pid}",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for pid in pids
    ]


def collected(pids: list[int], out: Path) -> Counter[str]:
    counts: Counter[str] = Counter()
    for pid in pids:
        path = Path(f"{out}.{pid}")
        if path.exists():
            counts += layers(path.read_text().splitlines())
    return counts


def layers_table(profiles: dict[str, Counter[str]]) -> list[str]:
    """One column per profiled workload: each layer's share of the samples."""
    names = list(profiles)
    # Layers by their mean share over the workloads.
    order: dict[str, float] = {}
    for counts in profiles.values():
        total = sum(counts.values()) or 1
        for layer, count in counts.items():
            order[layer] = order.get(layer, 0.0) + count / total
    lines = [
        "| layer | " + " | ".join(names) + " |",
        "|---|" + "---:|" * len(names),
    ]
    for layer in sorted(order, key=order.__getitem__, reverse=True):
        cells = []
        for name in names:
            total = sum(profiles[name].values()) or 1
            cells.append(f"{100 * profiles[name][layer] / total:.1f} %")
        lines.append(f"| {layer} | " + " | ".join(cells) + " |")
    lines.append(
        "| samples | " + " | ".join(f"{sum(profiles[name].values())}" for name in names) + " |"
    )
    return lines


__all__ = ["collected", "layers", "layers_table", "record", "sample_layer", "worker_pids"]
