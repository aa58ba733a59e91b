"""Isolation for the pipeline tests: private ZenML, MLflow and configuration.

ZenML reads ZENML_CONFIG_PATH when first imported, so it is set here, before any test
module imports it. BENTOML_HOME is already private (tests/conftest.py).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

os.environ["ZENML_CONFIG_PATH"] = tempfile.mkdtemp(prefix="pokewatch-zenml-")
os.environ["ZENML_ANALYTICS_OPT_IN"] = "false"
os.environ["ZENML_LOGGING_VERBOSITY"] = "WARN"
os.environ["AUTO_OPEN_DASHBOARD"] = "false"

from pipelines.settings import RetrySettings
from service.settings import StoreSettings
from service.store import Store

# Quick retries: the tests count attempts and record the waits rather than wait.
FAST_RETRY = RetrySettings(
    attempts=3, initial_wait_seconds=0.01, max_wait_seconds=0.05, max_retry_after_seconds=5
)


class Sleeps(list[float]):
    """Records the waits a client asks for instead of sleeping."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


@pytest.fixture
def write_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private configuration.yaml: the fast `last` strategy, stores under tmp_path (the
    model store and publications too).

    Tests append YAML sections to the returned file.
    """
    config = tmp_path / "configuration.yaml"
    config.write_text(
        f"""
model:
  strategy: last
collector:
  raw_dir: {tmp_path / "raw"}
  quarantine_dir: {tmp_path / "quarantine"}
  archive_dir: {tmp_path / "archives"}
  cache_dir: {tmp_path / "cache"}
  catalogue_file: {tmp_path / "catalogue.parquet"}
  state_dir: {tmp_path / "state"}
store:
  path: {tmp_path / "store"}
mlflow:
  tracking_uri: sqlite:///{tmp_path / "mlflow.db"}
  artifact_location: {(tmp_path / "mlartifacts").as_uri()}
"""
    )
    monkeypatch.setenv("POKEWATCH_CONFIG", str(config))
    return config


def private_store(tmp_path: Path) -> Store:
    """The store `write_config` points at."""
    return Store.from_settings(StoreSettings(path=tmp_path / "store"))
