"""`make bench`: PokeWatch against the FastAPI peer and the bare Starlette ceiling.

One run, on loopback, with bounded durations, one app at a time:

1. a private BENTOML_HOME with a model trained by `pokewatch train` (the fast `mean3`
   strategy: serving speed does not depend on the strategy), a private keys file with one
   key from `pokewatch keys create`, and the benchmark queries (every card x every day of
   its price history, shuffled);
2. PokeWatch (`bentoml serve service:PokeWatch`, 2 workers, auth on, Redis rate limiter
   and Redis cache on, quotas too high to ever answer 429), the FastAPI peer
   (`benchmarks/peer_fastapi.py`, uvicorn, 2 workers, the same library pieces) and the
   ceiling (`benchmarks/ceiling_starlette.py`, uvicorn, 2 workers, precomputed answers);
3. for each: a warm-up, then wrk (keep-alive, `benchmarks/requests.lua`) at 8 and 64
   connections on `POST /fair_price` uncached (every request a new card and date: each
   run gets its own slice of the queries) and cached (one query again and again), on
   `GET /v1/cards/{card_id}` over every card and for one card, and 1,000-item
   `/batch_predict` calls;
4. one table: req/s, p50, p99 per app x workload x connections, the ratios PokeWatch/FastAPI
   and PokeWatch/Starlette, batch lookups/s / single-request lookups/s, and which of the
   targets (docs/performance.md) this run met.

Every process it starts runs in its own process group and is killed on the way out, on
failure and on Ctrl-C too. Redis: the shared server on 127.0.0.1:6379 (never stopped); the
apps use their own database numbers (`--redis-db`, `--redis-db`+1), flushed before each app.
Absolute numbers swing between runs on a shared machine: compare the ratios of one run.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from statistics import mean
from types import FrameType
from typing import IO, TYPE_CHECKING

import httpx

from benchmarks import profile, scale

if TYPE_CHECKING:
    from model.lookup import PriceTable

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
LUA = Path(__file__).with_name("requests.lua")
REDIS_HOST, REDIS_PORT = "127.0.0.1", 6379
STARTUP_SECONDS = 120
BATCH_ITEMS = 1000
WRK_THREADS = 2


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class Processes:
    """The servers this run started, each in its own process group."""

    def __init__(self) -> None:
        self.running: list[subprocess.Popen[bytes]] = []

    def start(
        self, command: list[str], env: dict[str, str], output: IO[bytes]
    ) -> subprocess.Popen[bytes]:
        process = subprocess.Popen(
            command,
            cwd=REPO,
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.running.append(process)
        return process

    def stop(self, process: subprocess.Popen[bytes]) -> None:
        if process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        # Workers left behind by a dead parent are in the same group.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        if process in self.running:
            self.running.remove(process)

    def stop_all(self) -> None:
        for process in list(self.running):
            self.stop(process)


def ensure_wrk() -> str:
    found = shutil.which("wrk")
    if found:
        return found
    log("wrk is missing: installing the Debian package")
    if os.geteuid() != 0:
        sys.exit("wrk is not installed and this is not root: apt-get install wrk")
    subprocess.run(["apt-get", "update", "-qq"], check=True)
    subprocess.run(["apt-get", "install", "-y", "-qq", "wrk"], check=True)
    found = shutil.which("wrk")
    if not found:
        sys.exit("wrk did not install")
    return found


def redis_command(db: int, *args: str) -> str:
    """One command on the shared Redis (stdlib socket, RESP inline)."""
    with socket.create_connection((REDIS_HOST, REDIS_PORT), timeout=5) as connection:
        payload = f"SELECT {db}\r\n{' '.join(args)}\r\n".encode()
        connection.sendall(payload)
        time.sleep(0.05)
        return connection.recv(4096).decode(errors="replace")


def tree_cpu_seconds(root: int) -> float:
    """User + system CPU seconds of a process and its live descendants (from /proc).

    By tree, not process group: BentoML's arbiter starts its workers in groups of their own.
    """
    ticks = os.sysconf("SC_CLK_TCK")
    parents: dict[int, int] = {}
    cpu: dict[int, int] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, ValueError, IndexError):
            fields = stat.read_text().rpartition(")")[2].split()
            pid = int(stat.parent.name)
            parents[pid] = int(fields[1])  # ppid
            cpu[pid] = int(fields[11]) + int(fields[12])  # utime, stime
    tree, frontier = {root}, [root]
    while frontier:
        parent = frontier.pop()
        children = [pid for pid, ppid in parents.items() if ppid == parent and pid not in tree]
        tree.update(children)
        frontier.extend(children)
    return sum(cpu.get(pid, 0) for pid in tree) / ticks


@dataclass
class Setup:
    home: Path
    env: dict[str, str]
    key: str
    # The request lines of each workload (`Workload.lines`): JSON bodies for POST, paths
    # for GET.
    lines: dict[str, Path]
    distinct: dict[str, int]  # how many different requests each file holds
    wrk: str  # the wrk binary


@dataclass(frozen=True)
class Workload:
    name: str
    method: str
    route: str  # the POST target; a GET's lines are its paths
    lines: str  # the key of its file in `Setup.lines`
    connections: int

    @property
    def single(self) -> bool:
        """One item per request (the p99 target applies)."""
        return self.lines != "batch"


WORKLOADS = [
    Workload("post uncached", "POST", "/fair_price", "uncached-8", 8),
    Workload("post uncached", "POST", "/fair_price", "uncached-64", 64),
    Workload("post cached", "POST", "/fair_price", "single", 8),
    Workload("post cached", "POST", "/fair_price", "single", 64),
    Workload("get uncached", "GET", "/v1/cards", "cards", 8),
    Workload("get uncached", "GET", "/v1/cards", "cards", 64),
    Workload("get cached", "GET", "/v1/cards", "card", 8),
    Workload("get cached", "GET", "/v1/cards", "card", 64),
    Workload("batch", "POST", "/batch_predict", "batch", 8),
]
WARM_UP_LINES = {"/fair_price": "single", "/v1/cards": "card", "/batch_predict": "batch"}
# What `--profile` records on PokeWatch's workers, after the measured runs.
PROFILED = [
    Workload("post cached", "POST", "/fair_price", "single", 64),
    Workload("post uncached", "POST", "/fair_price", "uncached-profile", 64),
    Workload("get cached", "GET", "/v1/cards", "card", 64),
]
SINGLE_WORKLOADS = ("post uncached", "post cached", "get uncached", "get cached")


def write_lines(path: Path, lines: list[bytes]) -> Path:
    path.write_bytes(b"\n".join(lines) + b"\n")
    return path


def bench_env(work: Path) -> dict[str, str]:
    return {
        **os.environ,
        "PATH": f"{BIN}:{os.environ.get('PATH', '')}",
        "BENTOML_HOME": str(work / "bentoml"),
        "BENTOML_DO_NOT_TRACK": "true",
        "OTEL_SDK_DISABLED": "true",
        "POKEWATCH_SECURITY__KEYS_FILE": str(work / "keys.json"),
        "POKEWATCH_SERVICE__WORKERS": "2",
        "POKEWATCH_SECURITY__RATE_LIMIT__BACKEND": "redis",
        # Quotas no run reaches: the benchmark must never see a 429.
        "POKEWATCH_SECURITY__RATE_LIMIT__PER_MINUTE": "1000000000",
        "POKEWATCH_SECURITY__RATE_LIMIT__BURST": "100000000",
        # Training writes its MLflow run here, not into the project's data/.
        "POKEWATCH_MLFLOW__TRACKING_URI": f"sqlite:///{work / 'mlflow.db'}",
        "POKEWATCH_MLFLOW__ARTIFACT_LOCATION": str(work / "mlruns"),
        # Needed to validate the settings; each app gets its own database (`App.redis_db`).
        "POKEWATCH_REDIS__URL": f"redis://{REDIS_HOST}:{REDIS_PORT}/15",
    }


def train_and_create_key(env: dict[str, str]) -> str:
    log("training the benchmark model (pokewatch train, strategy mean3)")
    subprocess.run(
        [str(BIN / "pokewatch"), "train"],
        cwd=REPO,
        env={
            **env,
            "POKEWATCH_MODEL__STRATEGY": "mean3",
            # The promotion gate judges forecasts, not serving speed.
            "POKEWATCH_MODEL__GATE__MAX_MAPE_RATIO_TO_NAIVE": "1000",
            "POKEWATCH_MODEL__GATE__MAX_MAPE": "1000",
        },
        check=True,
        stdout=subprocess.DEVNULL,
    )
    return subprocess.run(
        [str(BIN / "pokewatch"), "keys", "create", "--name", "bench"],
        cwd=REPO,
        env=env,
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()


def prepare(work: Path, rounds: int, wrk_path: str) -> Setup:
    env = bench_env(work)
    key = train_and_create_key(env)
    # Import late: bentoml reads BENTOML_HOME when it is first imported.
    os.environ.update(env)
    from benchmarks.common import load_predictor
    from model.settings import load_settings
    from service.settings import ServiceSettings

    predictor = load_predictor(load_settings(ServiceSettings))
    queries = all_queries(predictor.table)
    env["BENCH_QUERIES"] = str(write_lines(work / "queries.jsonl", queries))
    uncached, batch_items = queries[:-BATCH_ITEMS], queries[-BATCH_ITEMS:]
    cards = [f"/v1/cards/{card_id}".encode() for card_id in predictor.table.item_ids]
    random.Random(5).shuffle(cards)
    files = {
        "single": [json.dumps({"card_id": str(predictor.table.item_ids[0])}).encode()],
        "batch": [json.dumps({"items": [json.loads(item) for item in batch_items]}).encode()],
        "cards": cards,
        "card": cards[:1],
    }
    # Each uncached run (connections x round) its own slice: the queries are new to it.
    share = len(uncached) // (2 * rounds)
    for index, (connections, round_number) in enumerate(
        (connections, round_number) for connections in (8, 64) for round_number in range(rounds)
    ):
        files[f"uncached-{connections}-r{round_number}"] = uncached[
            index * share : (index + 1) * share
        ]
    # For the profile's uncached run, after the measured ones: the end of a slice those
    # did not reach, first.
    files["uncached-profile"] = files["uncached-8-r0"][::-1]
    lines = {name: write_lines(work / f"{name}.lines", found) for name, found in files.items()}
    distinct = {name: len(found) for name, found in files.items()}
    log(f"{len(queries)} distinct queries, {len(cards)} cards; key {key[:18]}...")
    return Setup(work, env, key, lines, distinct, wrk_path)


def all_queries(table: PriceTable) -> list[bytes]:
    """Every card x every day of its history, as /fair_price bodies, shuffled."""
    last = table.last_date()
    queries: list[bytes] = []
    for position, card_id in enumerate(table.item_ids):
        day = table.first_date(position)
        while day <= last:
            queries.append(json.dumps({"card_id": card_id, "date": day.isoformat()}).encode())
            day = day.fromordinal(day.toordinal() + 1)
    random.Random(4).shuffle(queries)
    return queries


@dataclass
class Result:
    app: str
    workload: str
    connections: int
    requests: int
    seconds: float
    p50_ms: float
    p99_ms: float
    errors: int
    repeats: float  # share of requests that were not new queries (uncached runs)
    cpu_seconds: float  # the server's processes (all workers) during the run

    @property
    def cpu_us(self) -> float:
        """Server CPU per request: steadier than req/s on a shared machine."""
        return self.cpu_seconds / self.requests * 1e6 if self.requests else 0.0

    @property
    def rate(self) -> float:
        return self.requests / self.seconds


def wrk(
    wrk_path: str, base: str, workload: Workload, key: str, lines: Path, seconds: float
) -> dict[str, float]:
    connections = workload.connections
    command = [
        wrk_path,
        f"-t{min(WRK_THREADS, connections)}",
        f"-c{connections}",
        f"-d{round(seconds)}s",
        "--timeout",
        "5s",
        "-s",
        str(LUA),
        base + workload.route,
        "--",
        workload.method,
        workload.route,
        key,
        str(lines),
        str(min(WRK_THREADS, connections)),
    ]
    done = subprocess.run(
        command, capture_output=True, text=True, timeout=seconds + 60, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"wrk failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    for line in done.stdout.splitlines():
        if line.startswith("BENCH "):
            summary: dict[str, float] = json.loads(line[len("BENCH ") :])
            return summary
    raise RuntimeError(f"wrk printed no summary:\n{done.stdout}\n{done.stderr}")


def result(
    app: str,
    workload: Workload,
    summary: dict[str, float],
    distinct: int,
    cpu_seconds: float,
) -> Result:
    requests = int(summary["requests"])
    errors = int(
        summary["connect_errors"]
        + summary["read_errors"]
        + summary["write_errors"]
        + summary["status_errors"]
        + summary["timeouts"]
    )
    return Result(
        app=app,
        workload=workload.name,
        connections=workload.connections,
        requests=requests,
        seconds=summary["duration_us"] / 1e6,
        p50_ms=summary["p50_us"] / 1000,
        p99_ms=summary["p99_us"] / 1000,
        errors=errors,
        repeats=max(0, requests - distinct) / requests if requests and distinct else 0.0,
        cpu_seconds=cpu_seconds,
    )


@dataclass
class App:
    name: str
    command: list[str]
    redis_db: int | None
    batch: bool
    ready: str  # a GET path answering 200 when ready, or "" to count uvicorn workers
    env: dict[str, str] = field(default_factory=dict)


def start(
    app: App,
    setup: Setup,
    processes: Processes,
    port: int,
    probe: str = "single",
    startup_seconds: float = STARTUP_SECONDS,
) -> subprocess.Popen[bytes]:
    """The app started and answering `/fair_price` (the body of the `probe` lines)."""
    env = {**setup.env, **app.env}
    if app.redis_db is not None:
        env["POKEWATCH_REDIS__URL"] = f"redis://{REDIS_HOST}:{REDIS_PORT}/{app.redis_db}"
        redis_command(app.redis_db, "FLUSHDB")
    log_path = setup.home / f"{app.name}.log"
    output = log_path.open("w+b")
    command = [part.replace("{port}", str(port)) for part in app.command]
    process = processes.start(command, env, output)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + startup_seconds
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"{app.name} exited {process.returncode}: see {log_path}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"{app.name} not ready in {startup_seconds} s: see {log_path}")
        if app.ready:
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(base + app.ready, timeout=1).status_code == 200:
                    break
        elif log_path.read_bytes().count(b"Application startup complete") >= 2:
            break
        time.sleep(0.25)
    # Every worker must answer (uvicorn and BentoML workers start independently).
    answer = httpx.post(
        base + "/fair_price",
        content=setup.lines[probe].read_bytes().splitlines()[0],
        headers={"X-API-Key": setup.key, "Content-Type": "application/json"},
        timeout=5,
    )
    if answer.status_code != 200:
        raise RuntimeError(f"{app.name}: /fair_price answered {answer.status_code}: {answer.text}")
    if app.ready:
        log(f"{app.name}: GET /metrics answers {httpx.get(base + '/metrics').status_code}")
    return process


@dataclass
class Running:
    app: App
    process: subprocess.Popen[bytes]
    base: str
    lines_prefix: str = ""  # its requests: the workload's lines of this prefix (`scale-`)


def start_all(
    chosen: list[App], setup: Setup, processes: Processes, warmup: float
) -> list[Running]:
    """Every app started at once (idle ones cost next to nothing) and warmed up on requests
    the cached runs repeat, so the uncached ones stay new."""
    running = []
    for app in chosen:
        port = free_port()
        log(f"starting {app.name} on port {port}")
        running.append(Running(app, start(app, setup, processes, port), f"http://127.0.0.1:{port}"))
    for server in running:
        for route, lines in WARM_UP_LINES.items():
            if route == "/batch_predict" and not server.app.batch:
                continue
            warm = Workload("warm-up", "GET" if route == "/v1/cards" else "POST", route, lines, 64)
            wrk(setup.wrk, server.base, warm, setup.key, setup.lines[lines], warmup)
    return running


def measure(
    running: list[Running],
    setup: Setup,
    rounds: int,
    seconds: float,
    workloads: list[Workload] = WORKLOADS,
) -> list[Result]:
    """Round after round, each workload run on every app in turn: a slow spell of a shared
    machine then hits every app alike, and each figure is the app's median round."""
    runs: dict[tuple[str, str, int], list[Result]] = {}
    for round_number in range(rounds):
        for workload in workloads:
            lines = workload.lines
            if "uncached" in lines:
                lines = f"{lines}-r{round_number}"
            for server in running:
                if workload.lines == "batch" and not server.app.batch:
                    continue
                own = server.lines_prefix + lines
                log(
                    f"round {round_number + 1}/{rounds}: {server.app.name}: {workload.name}, "
                    f"{workload.connections} connections"
                )
                cpu = tree_cpu_seconds(server.process.pid)
                summary = wrk(
                    setup.wrk, server.base, workload, setup.key, setup.lines[own], seconds
                )
                cpu = tree_cpu_seconds(server.process.pid) - cpu
                distinct = setup.distinct[own] if "uncached" in workload.name else 0
                found = result(server.app.name, workload, summary, distinct, cpu)
                runs.setdefault((found.app, found.workload, found.connections), []).append(found)
    apps_order = [server.app.name for server in running]
    workloads_order = [(workload.name, workload.connections) for workload in workloads]
    return sorted(
        (median_round(found) for found in runs.values()),
        key=lambda run: (
            apps_order.index(run.app),
            workloads_order.index((run.workload, run.connections)),
        ),
    )


def median_round(found: list[Result]) -> Result:
    return sorted(found, key=lambda run: run.rate)[len(found) // 2]


def profile_layers(root: int, base: str, setup: Setup, seconds: float) -> dict[str, Counter[str]]:
    """Each `PROFILED` workload run again with py-spy on every worker."""
    pids = profile.worker_pids(root)
    found: dict[str, Counter[str]] = {}
    for workload in PROFILED:
        log(f"profiling {len(pids)} workers: {workload.name}, {workload.connections} connections")
        out = setup.home / f"profile-{workload.lines}"
        recorders = profile.record(pids, seconds - 1, out)
        wrk(setup.wrk, base, workload, setup.key, setup.lines[workload.lines], seconds)
        for recorder in recorders:
            recorder.wait(timeout=60)
        found[f"{workload.name} @{workload.connections}"] = profile.collected(pids, out)
    return found


SCALE_WORKLOADS = [
    Workload("post uncached", "POST", "/fair_price", "uncached-64", 64),
    Workload("post cached", "POST", "/fair_price", "single", 64),
]
SCALE_STARTUP_SECONDS = 1800


def write_scale_lines(setup: Setup, queries: list[bytes], rounds: int) -> None:
    """The big table's own requests (the `scale-` lines): a slice of its queries for each
    round's uncached runs, and its last query for the start-up probe and the cached runs."""
    share = len(queries) // rounds
    for round_number in range(rounds):
        name = f"scale-uncached-64-r{round_number}"
        part = queries[round_number * share : (round_number + 1) * share]
        setup.lines[name] = write_lines(setup.home / f"{name}.lines", part)
        setup.distinct[name] = len(part)
    setup.lines["scale-single"] = write_lines(setup.home / "scale-single.lines", queries[-1:])


def scaled_app(app: App, rows: int, store: Path) -> App:
    """The app serving the big table's store (its own Redis database, its own cache)."""
    return replace(
        app,
        name=f"{app.name}-{rows:,}-rows",
        redis_db=None if app.redis_db is None else app.redis_db + 1,
        env={**app.env, "POKEWATCH_STORE__PATH": str(store)},
    )


def footprints(server: Running) -> list[scale.Footprint]:
    """Each worker's memory (after the lookups touched the table)."""
    return [scale.footprint(pid) for pid in profile.worker_pids(server.process.pid)]


@dataclass(frozen=True)
class ScaleRun:
    """What `scale_run` measured besides the lookups: the benchmark table's app (`small`)
    against the big table's (`large`)."""

    published: scale.Published
    small_startup: float
    startup: float
    small_memory: list[scale.Footprint]
    memory: list[scale.Footprint]

    def summary(self) -> list[str]:
        published = self.published
        return [
            f"Scale: {published.rows:,} rows ({published.rows // scale.DAYS:,} items x "
            f"{scale.DAYS} days), synthesized and published in {published.seconds:.0f} s; "
            f"start-up to ready {self.startup:.1f} s (benchmark table: "
            f"{self.small_startup:.1f} s)",
            "per worker, benchmark table: " + memory_cells(self.small_memory),
            f"per worker, {published.rows:,} rows: " + memory_cells(self.memory),
        ]

    def added_mb(self, size: Callable[[scale.Footprint], float]) -> float:
        """What the big table adds to a worker's mean `size` (RSS or PSS)."""
        return mean(map(size, self.memory)) - mean(map(size, self.small_memory))


def memory_cells(memory: list[scale.Footprint]) -> str:
    return ", ".join(f"RSS {one.rss_mb:,.0f} MB (PSS {one.pss_mb:,.0f})" for one in memory)


def scale_ratios(results: list[Result], small: str, large: str) -> tuple[list[float], list[str]]:
    """Each scale workload's req/s on the big table over the benchmark table's, and its line."""
    ratios: list[float] = []
    lines = []
    for workload in SCALE_WORKLOADS:
        ours = {run.app: run for run in results if run.workload == workload.name}
        if len(ours) == 2:
            big, base = ours[large], ours[small]
            ratios.append(big.rate / base.rate)
            lines.append(
                f"{workload.name} @{workload.connections}: {big.rate:,.0f} req/s on the big "
                f"table / {base.rate:,.0f} on the benchmark table = {ratios[-1]:.2f}x"
            )
    return ratios, lines


def scale_targets(found: ScaleRun, ratios: list[float]) -> list[str]:
    """Which of the scale targets (docs/performance.md) this run met."""
    rss = max(one.rss_mb for one in found.memory)
    added_rss = found.added_mb(lambda one: one.rss_mb)
    added_pss = found.added_mb(lambda one: one.pss_mb)
    startup = found.startup
    return [
        "Scale targets (this run):",
        f"- <= 1 GB RSS per worker: highest {rss:,.0f} MB: {verdict(rss <= 1024)}",
        f"- shared across workers: the big table adds {added_rss:,.0f} MB of RSS and "
        f"{added_pss:,.0f} MB of PSS (a page n processes share counts 1/n) to a worker; "
        f"its row file is {found.published.table_mb:,.0f} MB: "
        f"{verdict(added_pss <= 0.75 * added_rss)}",
        f"- start-up <= 10 s: {startup:.1f} s: {verdict(startup <= 10)}",
        f"- lookups within 10 % of the small table: lowest {min(ratios, default=0):.2f}x: "
        f"{verdict(bool(ratios) and min(ratios) >= 0.9)}",
    ]


def scale_run(
    rows: int, setup: Setup, processes: Processes, app: App, rounds: int, seconds: float
) -> tuple[list[Result], list[str]]:
    """PokeWatch on the benchmark table and, beside it, on a published table of `rows`
    rows (a store of its own): the lookup runs on both in alternation, start-up time, and
    each worker's memory after the lookups touched the table."""
    log(f"synthesizing and publishing {rows:,} rows")
    store = setup.home / "scale-store"
    published = scale.publish_scaled(rows, store)
    write_scale_lines(setup, published.queries, rounds)
    small, small_startup = timed_start(app, setup, processes, "single", STARTUP_SECONDS)
    big_app = scaled_app(app, rows, store)
    large, startup = timed_start(big_app, setup, processes, "scale-single", SCALE_STARTUP_SECONDS)
    # The large table's runs send its own queries (the `scale-` lines).
    large.lines_prefix = "scale-"
    results = measure([small, large], setup, rounds, seconds, SCALE_WORKLOADS)
    found = ScaleRun(published, small_startup, startup, footprints(small), footprints(large))
    ratios, ratio_lines = scale_ratios(results, app.name, big_app.name)
    return results, [*found.summary(), *ratio_lines, "", *scale_targets(found, ratios)]


def timed_start(
    app: App, setup: Setup, processes: Processes, probe: str, limit: float
) -> tuple[Running, float]:
    """The app started (see `start`), and the seconds until it answered."""
    port = free_port()
    started = time.monotonic()
    process = start(app, setup, processes, port, probe, limit)
    return Running(app, process, f"http://127.0.0.1:{port}"), time.monotonic() - started


# PokeWatch with one optimization undone, to measure what it buys (`--variants`).
VARIANTS = {
    # The limiter leasing tokens: one Redis round trip per 50 requests of a key per worker.
    "pokewatch-leased": {"POKEWATCH_SECURITY__RATE_LIMIT__LEASE_TOKENS": "50"},
    "pokewatch-unpatched": {"POKEWATCH_BENTOML_PATCHES": "0"},
    # BentoML's request metrics off: this also removes /metrics, which PokeWatch needs.
    "pokewatch-no-bentoml-metrics": {
        "BENTOML_CONFIG_OPTIONS": "services.pokewatch.metrics.enabled=false"
    },
}


def apps() -> list[App]:
    uvicorn = [
        str(BIN / "uvicorn"),
        "--host",
        "127.0.0.1",
        "--port",
        "{port}",
        "--workers",
        "2",
        "--loop",
        "uvloop",
        "--http",
        "httptools",
        "--no-access-log",
        "--log-level",
        "info",
    ]
    return [
        App(
            "pokewatch",
            [
                str(BIN / "bentoml"),
                "serve",
                "service:PokeWatch",
                "--host",
                "127.0.0.1",
                "--port",
                "{port}",
            ],
            redis_db=None,  # set from --redis-db
            batch=True,
            ready="/readyz",
        ),
        App("fastapi", [*uvicorn, "benchmarks.peer_fastapi:app"], None, batch=True, ready=""),
        App("starlette", [*uvicorn, "benchmarks.ceiling_starlette:app"], None, False, ready=""),
    ]


Runs = dict[tuple[str, str, int], Result]
SINGLE_RUNS = [(workload, connections) for workload in SINGLE_WORKLOADS for connections in (8, 64)]


def table(results: list[Result]) -> str:
    runs: Runs = {(run.app, run.workload, run.connections): run for run in results}
    return "\n".join(
        [
            *runs_table(results),
            "",
            *ratios_table(runs),
            *variants_table(runs),
            "",
            *batch_lines(runs),
            "",
            *targets(runs),
        ]
    )


def runs_table(results: list[Result]) -> list[str]:
    lines = [
        "| app | workload | conns | req/s | p50 ms | p99 ms | server CPU µs/req | errors | notes |",
        "|---|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for run in results:
        notes = []
        if run.workload == "batch":
            notes.append(f"{run.rate * BATCH_ITEMS:,.0f} lookups/s")
        if run.repeats:
            notes.append(f"{run.repeats:.1%} repeated queries")
        lines.append(
            f"| {run.app} | {run.workload} | {run.connections} | {run.rate:,.0f} | "
            f"{run.p50_ms:.2f} | {run.p99_ms:.2f} | {run.cpu_us:,.0f} | {run.errors} | "
            f"{'; '.join(notes)} |"
        )
    return lines


def ratio(ours: Result | None, theirs: Result | None) -> tuple[str, str]:
    """PokeWatch's req/s over the other's, and the other's CPU/request over PokeWatch's."""
    if ours is None or theirs is None:
        return "n/a", "n/a"
    cost = f"{theirs.cpu_us / ours.cpu_us:.2f}x" if ours.cpu_us else "n/a"
    return f"{ours.rate / theirs.rate:.2f}x", cost


def ratios_table(runs: Runs) -> list[str]:
    lines = [
        "req/s ratios (higher is better for PokeWatch), and the same as server CPU per request "
        "(the other's CPU/req over PokeWatch's: steadier on a shared machine)",
        "",
        "| workload | conns | PokeWatch/FastAPI | PokeWatch/Starlette "
        "| CPU: FastAPI/PokeWatch | CPU: Starlette/PokeWatch |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for workload, connections in SINGLE_RUNS:
        ours = runs.get(("pokewatch", workload, connections))
        peer = ratio(ours, runs.get(("fastapi", workload, connections)))
        ceiling = ratio(ours, runs.get(("starlette", workload, connections)))
        lines.append(
            f"| {workload} | {connections} | {peer[0]} | {ceiling[0]} | {peer[1]} | {ceiling[1]} |"
        )
    return lines


def variants_table(runs: Runs) -> list[str]:
    variants = sorted({app for app, _, _ in runs if app in VARIANTS})
    if not variants:
        return []
    lines = [
        "",
        "PokeWatch over each variant (req/s; variant's CPU/req over PokeWatch's in brackets)",
        "",
        "| workload | conns | " + " | ".join(variants) + " |",
        "|---|---:|" + "---:|" * len(variants),
    ]
    for workload, connections in SINGLE_RUNS:
        ours = runs.get(("pokewatch", workload, connections))
        cells = []
        for variant in variants:
            rate, cost = ratio(ours, runs.get((variant, workload, connections)))
            cells.append(f"{rate} ({cost})")
        lines.append(f"| {workload} | {connections} | {' | '.join(cells)} |")
    return lines


def batch_lines(runs: Runs) -> list[str]:
    lines = []
    for app in ("pokewatch", "fastapi"):
        batch = runs.get((app, "batch", 8))
        single = runs.get((app, "post cached", 8))
        if batch and single:
            lookups = batch.rate * BATCH_ITEMS
            lines.append(
                f"{app}: batch {lookups:,.0f} lookups/s / single {single.rate:,.0f} lookups/s "
                f"(cached, 8 connections) = {lookups / single.rate:.0f}x"
            )
    return lines


def verdict(met: bool) -> str:
    return "met" if met else "NOT met"


def targets(runs: Runs) -> list[str]:
    """Which of issue 16's serving targets this run met (the scale ones: `--scale`)."""
    lines = ["Targets (this run):", ""]
    ours = {key[1:]: run for key, run in runs.items() if key[0] == "pokewatch"}
    peer_ratios = [
        (f"{workload} @{connections}", ours[(workload, connections)].rate / peer.rate)
        for (app, workload, connections), peer in runs.items()
        if app == "fastapi" and (workload, connections) in ours
    ]
    if peer_ratios:
        worst = min(peer_ratios, key=lambda item: item[1])
        lines.append(
            f"- >= 1.0x the FastAPI peer's req/s on every workload: lowest {worst[1]:.2f}x "
            f"({worst[0]}): {verdict(worst[1] >= 1.0)}"
        )
    leased = [
        (f"{workload} @{connections}", run.rate / peer.rate)
        for (app, workload, connections), run in runs.items()
        if app == "pokewatch-leased"
        and (peer := runs.get(("fastapi", workload, connections))) is not None
    ]
    if leased:
        worst = min(leased, key=lambda item: item[1])
        lines.append(
            f"  - with the leased limiter (pokewatch-leased): lowest {worst[1]:.2f}x "
            f"({worst[0]}): {verdict(worst[1] >= 1.0)}"
        )
    ceiling = runs.get(("starlette", "get cached", 64))
    if ceiling and ("get cached", 64) in ours:
        share = ours[("get cached", 64)].rate / ceiling.rate
        lines.append(
            f"- >= 0.3x bare Starlette on the cached GET path (64 connections): {share:.2f}x: "
            f"{verdict(share >= 0.3)}"
        )
    p99s = [(f"{name} @64", run.p99_ms) for (name, conns), run in ours.items() if conns == 64]
    single = [(name, p99) for name, p99 in p99s if not name.startswith("batch")]
    if single:
        worst_p99 = max(single, key=lambda item: item[1])
        lines.append(
            f"- p99 <= 50 ms at 64 connections on every single-item workload: highest "
            f"{worst_p99[1]:.1f} ms ({worst_p99[0]}): {verdict(worst_p99[1] <= 50)}"
        )
    return lines


def machine() -> str:
    model = "unknown CPU"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return f"{os.cpu_count()} CPUs ({model}), {time.strftime('%Y-%m-%d %H:%M %Z')}"


@contextlib.contextmanager
def terminated_cleanly() -> Iterator[None]:
    """SIGTERM/SIGHUP unwind like Ctrl-C, so the finally blocks kill the servers."""

    def interrupt(signum: int, _frame: FrameType | None) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    previous = {sig: signal.signal(sig, interrupt) for sig in (signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def parse_options() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=5, help="seconds per measured run")
    parser.add_argument(
        "--rounds", type=int, default=3, help="rounds of every run; each figure is the median"
    )
    parser.add_argument("--warmup", type=float, default=3, help="seconds of warm-up per app")
    parser.add_argument(
        "--redis-db",
        type=int,
        default=9,
        help="the first of the apps' Redis databases (one each, in order)",
    )
    parser.add_argument(
        "--only", nargs="*", default=None, help="apps or variants to run (default: the apps)"
    )
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    parser.add_argument(
        "--variants",
        action="store_true",
        help="also PokeWatch with the leased limiter, without service/patches.py (and "
        "service/direct.py), and without BentoML's metrics",
    )
    parser.add_argument(
        "--profile",
        action="store_true",
        help="also py-spy on PokeWatch's workers: the share of each layer (after its runs)",
    )
    parser.add_argument(
        "--scale",
        type=scale.parse_rows,
        default=None,
        help="instead: PokeWatch on a synthesized published table of this many rows "
        "(e.g. 31M): start-up, memory per worker, lookups/s against the benchmark table",
    )
    options = parser.parse_args()
    if not 1 <= options.redis_db <= 15 - 2 - len(VARIANTS):
        sys.exit(f"--redis-db: 1..{15 - 2 - len(VARIANTS)} (database 0 is left alone)")
    return options


def chosen_apps(options: argparse.Namespace) -> list[App]:
    """The three apps, the variants after PokeWatch with `--variants`; `--only` picks any."""
    chosen = apps()
    variants = [
        # The leased limiter changes batch calls too (each costs 10 tokens).
        replace(chosen[0], name=name, batch=name == "pokewatch-leased", env=env)
        for name, env in VARIANTS.items()
    ]
    if options.only:
        chosen = [app for app in chosen[:1] + variants + chosen[1:] if app.name in options.only]
    elif options.variants:
        chosen[1:1] = variants
    # They run side by side: each its own Redis database (its own cache).
    databases = iter(range(options.redis_db, 16))
    for app in chosen:
        if app.name != "starlette":
            app.redis_db = next(databases)
    return chosen


def main() -> None:
    options = parse_options()
    wrk_path = ensure_wrk()
    if "PONG" not in redis_command(0, "PING"):
        sys.exit(f"no Redis on {REDIS_HOST}:{REDIS_PORT}")
    work = Path(tempfile.mkdtemp(prefix="pokewatch-bench-"))
    processes = Processes()
    results: list[Result] = []
    profiles: dict[str, Counter[str]] = {}
    chosen = chosen_apps(options)
    try:
        with terminated_cleanly():
            setup = prepare(work, options.rounds, wrk_path)
            if options.scale:
                scale_results, scaled = scale_run(
                    options.scale,
                    setup,
                    processes,
                    chosen[0],
                    options.rounds,
                    options.duration,
                )
                print("\n".join(["", *scaled, "", *runs_table(scale_results)]))
                return
            running = start_all(chosen, setup, processes, options.warmup)
            results = measure(running, setup, options.rounds, options.duration)
            for server in running:
                if options.profile and server.app.name == "pokewatch":
                    profiles = profile_layers(
                        server.process.pid, server.base, setup, options.duration
                    )
    finally:
        processes.stop_all()
        for app in chosen:
            if app.redis_db is not None:
                redis_command(app.redis_db, "FLUSHDB")
        if options.keep:
            log(f"work directory kept: {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
        if results:
            print(
                f"\nPokeWatch benchmark: {machine()}; {options.rounds} rounds of "
                f"{options.duration:g} s per run (the median round shown), wrk "
                f"{WRK_THREADS} threads, keep-alive, loopback\n"
            )
            print(table(results))
        if profiles:
            print("\nWhere a PokeWatch worker's CPU goes (py-spy samples by layer)\n")
            print("\n".join(profile.layers_table(profiles)))


if __name__ == "__main__":
    main()
