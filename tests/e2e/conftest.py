"""Real `bentoml serve` processes on free loopback ports."""

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

REPO = Path(__file__).resolve().parents[2]
BENTOML = Path(sys.executable).with_name("bentoml")
STARTUP_SECONDS = 90


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@contextmanager
def bentoml_serve(
    target: str,
    env: Mapping[str, str | None] | None = None,
    ready_path: str = "/readyz",
    cwd: Path = REPO,
) -> Iterator[str]:
    """Serve `target`, wait until `ready_path` answers 200, yield the base URL.

    `env` adds to this process's environment; a None value removes that variable."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    log = (Path(os.environ["BENTOML_HOME"]) / f"serve-{port}.log").open("w+b")
    merged = {**os.environ, "PATH": f"{BENTOML.parent}:{os.environ['PATH']}", **(env or {})}
    process = subprocess.Popen(
        [str(BENTOML), "serve", target, "--host", "127.0.0.1", "--port", str(port)],
        cwd=cwd,
        env={name: value for name, value in merged.items() if value is not None},
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + STARTUP_SECONDS
        while True:
            if process.poll() is not None:
                log.seek(0)
                pytest.fail(f"bentoml serve exited {process.returncode}:\n{log.read().decode()}")
            try:
                if httpx.get(base + ready_path, timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                log.seek(0)
                pytest.fail(f"not ready in {STARTUP_SECONDS} s:\n{log.read().decode()[-4000:]}")
            time.sleep(0.25)
        yield base
    finally:
        os.killpg(process.pid, 15)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, 9)
            process.wait()
        log.close()


def daily_job_overrides(tmp_path: Path, tcgcsv_url: str) -> dict[str, str]:
    """The repository's configuration.yaml as a deployment overrides it (POKEWATCH_*) for the
    daily job: the fast `last` strategy, a fake TCGCSV tracking its first group, every
    directory under `tmp_path`."""
    from tests.pipelines.fake_tcgcsv import GROUPS

    return {
        "POKEWATCH_MODEL__STRATEGY": "last",
        "POKEWATCH_SOURCES__TCGCSV__BASE_URL": tcgcsv_url,
        "POKEWATCH_TRACKED_ITEMS__TCGCSV": json.dumps([{"group": GROUPS[0]}]),
        "POKEWATCH_COLLECTOR__RAW_DIR": str(tmp_path / "raw"),
        "POKEWATCH_COLLECTOR__QUARANTINE_DIR": str(tmp_path / "quarantine"),
        "POKEWATCH_COLLECTOR__CACHE_DIR": str(tmp_path / "cache"),
        "POKEWATCH_COLLECTOR__CATALOGUE_FILE": str(tmp_path / "catalogue.parquet"),
        "POKEWATCH_COLLECTOR__STATE_DIR": str(tmp_path / "state"),
        "POKEWATCH_MLFLOW__TRACKING_URI": f"sqlite:///{tmp_path / 'mlflow.db'}",
        "POKEWATCH_MLFLOW__ARTIFACT_LOCATION": (tmp_path / "mlartifacts").as_uri(),
    }


@pytest.fixture(scope="session")
def served(model_tag: str) -> Iterator[str]:
    """The service as Kubernetes runs it: its log lines are JSON (tests/e2e/test_logs.py)."""
    with bentoml_serve("service:PokeWatch", env={"POKEWATCH_SERVICE__LOG_FORMAT": "json"}) as base:
        yield base


@pytest.fixture(scope="session")
def served_two_workers(model_tag: str) -> Iterator[str]:
    """Two workers that look at the store every second (hot reload, metrics across workers)."""
    env = {"POKEWATCH_SERVICE__WORKERS": "2", "POKEWATCH_SERVICE__RELOAD_SECONDS": "1"}
    with bentoml_serve("service:PokeWatch", env=env) as base:
        yield base


@pytest.fixture(scope="session")
def http(served: str, api_key: str) -> Iterator[httpx.Client]:
    """A client of the served service, authenticated with the test key."""
    with httpx.Client(base_url=served, headers={"X-API-Key": api_key}) as client:
        yield client
