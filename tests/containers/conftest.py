"""The container check (`make container-check`): real images, built and run with podman.

Skipped, with the reason, where no container engine can start (unless
POKEWATCH_CONTAINER_CHECK=required, which .ci/run sets: then that is a failure). The
images are built once per session; POKEWATCH_REUSE_IMAGES=1 keeps ones already built (for
working on the tests themselves).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from pytest_httpserver import HTTPServer

from model.data import load_prices
from model.settings import ModelSettings
from model.training import train
from service.store import ModelRegistry, Stage
from tests.containers import engine
from tests.pipelines.fake_tcgcsv import FakeTcgcsv

REQUIRED = os.environ.get("POKEWATCH_CONTAINER_CHECK") == "required"
REUSE = os.environ.get("POKEWATCH_REUSE_IMAGES") == "1"


@pytest.fixture(scope="session")
def scratch() -> Iterator[Path]:
    directory = engine.scratch_directory()
    yield directory
    shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture(scope="session")
def podman_ready(scratch: Path) -> None:
    engine.configure(scratch)
    try:
        engine.check_engine()
    except (engine.EngineUnavailableError, RuntimeError) as error:
        if REQUIRED:
            pytest.fail(f"no container engine: {error}")
        pytest.skip(f"no container engine can start here: {error}")
    engine.build_base_image(scratch)


@pytest.fixture(scope="session")
def model_home(scratch: Path) -> Path:
    """A BentoML home with one production model (`last`: fast; the check is the plumbing)."""
    home = scratch / "bentoml-home"
    ModelRegistry.at(home / "models").save(
        train(load_prices().valid, ModelSettings(strategy="last")).trained, Stage.PRODUCTION
    )
    return home


@pytest.fixture(scope="session")
def api_image(podman_ready: None, scratch: Path, model_home: Path) -> str:
    if not (REUSE and engine.image_exists(engine.API_IMAGE)):
        engine.build_api_image(scratch, model_home)
    return engine.API_IMAGE


@pytest.fixture(scope="session")
def pipelines_image(podman_ready: None) -> str:
    if not (REUSE and engine.image_exists(engine.PIPELINES_IMAGE)):
        engine.build_image(
            engine.PIPELINES_IMAGE,
            engine.REPO / "deploy" / "pipelines" / "Containerfile",
            engine.REPO,
            "pipelines image",
        )
    return engine.PIPELINES_IMAGE


@pytest.fixture(scope="session")
def redis_image(podman_ready: None) -> str:
    if not (REUSE and engine.image_exists(engine.REDIS_IMAGE)):
        engine.build_image(
            engine.REDIS_IMAGE,
            engine.REPO / "deploy" / "containers" / "redis.Containerfile",
            engine.REPO / "deploy" / "containers",
            "redis image",
        )
    return engine.REDIS_IMAGE


@pytest.fixture
def tcgcsv(threaded_server: HTTPServer) -> FakeTcgcsv:
    """The fake TCGCSV on the host; containers share the host network."""
    return FakeTcgcsv(threaded_server)


@pytest.fixture(scope="session")
def keys_dir(scratch: Path, api_key: str) -> Path:
    """The test keys file, readable by the containers' users."""
    directory = scratch / "keys"
    directory.mkdir()
    shutil.copy(os.environ["POKEWATCH_SECURITY__KEYS_FILE"], directory / "keys.json")
    (directory / "keys.json").chmod(0o644)
    return directory


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if engine.TIMINGS.seconds:
        terminalreporter.write_line(f"container check: {engine.TIMINGS.report()}")
