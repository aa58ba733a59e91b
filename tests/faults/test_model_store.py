"""Model store faults against a real `bentoml serve`: at start and while serving, the
newest production model that loads and verifies is served (`service.serving`)."""

import shutil
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path

import httpx
import pytest

from model.artifact import INFO_FILE, ITEMS_FILE, PREDICTIONS_FILE
from model.data import load_prices
from model.lookup import ROWS_FILE
from model.settings import Settings, load_settings
from model.training import train
from service.store import JobsFile, ModelRegistry, Publications, Stage, Store
from tests.e2e.conftest import bentoml_serve
from tests.faults.conftest import SEALED

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.faults]


@pytest.fixture(scope="module")
def trained_twice(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A store with two production models of the sample (the newest second)."""
    root = tmp_path_factory.mktemp("bentoml-home")
    settings = load_settings(Settings).model.model_copy(update={"strategy": "mean3"})
    trained = train(load_prices().valid, settings).trained
    store = store_at(root)
    store.registry.save(trained, Stage.PRODUCTION)
    store.registry.save(trained, Stage.PRODUCTION)
    return root


def store_at(root: Path) -> Store:
    return Store(
        ModelRegistry.at(root / "models"),
        Publications(root / "pokewatch" / "published"),
        JobsFile(root / "pokewatch" / "jobs.json"),
    )


@pytest.fixture
def home(trained_twice: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "home"
    shutil.copytree(trained_twice, copy)
    return copy


def tamper(path: Path) -> None:
    path.write_bytes(path.read_bytes()[:-10] + b"0123456789")


def truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


CORRUPTIONS: dict[str, Callable[[Path], object]] = {
    "predictions-tampered": lambda model: tamper(model / PREDICTIONS_FILE),
    "table-truncated": lambda model: truncate(model / ROWS_FILE),
    "info-garbage": lambda model: (model / INFO_FILE).write_text("not json"),
    "predictions-missing": lambda model: (model / PREDICTIONS_FILE).unlink(),
    "model-yaml-garbage": lambda model: (model / "model.yaml").write_text("{{{ not yaml"),
    "model-yaml-missing": lambda model: (model / "model.yaml").unlink(),
    "emptied": lambda model: empty(model),
    "saved-half-way": lambda model: save_half_way(model),
}


def empty(directory: Path) -> None:
    for path in directory.iterdir():
        path.unlink()


def save_half_way(newest: Path) -> None:
    """A newer version whose BentoML record was written and only some of its files: the
    newest of all, so the two before it are the ones to fall back on."""
    half = newest.with_name("halfsavedaaaaaaa")
    half.mkdir()
    record = (newest / "model.yaml").read_text().replace(newest.name, half.name)
    created = next(line for line in record.splitlines() if line.startswith("creation_time:"))
    (half / "model.yaml").write_text(
        record.replace(created, "creation_time: '2099-01-01T00:00:00.000000+00:00'")
    )
    shutil.copy(newest / ITEMS_FILE, half / ITEMS_FILE)


def newest_two(home: Path) -> tuple[Path, str]:
    """The newest production model's directory and the tag of the one before."""
    newest, older = store_at(home).registry.production()[:2]
    return newest.path, older.tag


def serve(home: Path) -> AbstractContextManager[str]:
    return bentoml_serve("service:PokeWatch", env={"BENTOML_HOME": str(home)})


def served_version(base: str, api_key: str) -> str:
    response = httpx.post(
        base + "/fair_price", json={"card_id": SEALED}, headers={"X-API-Key": api_key}, timeout=10
    )
    assert response.status_code == 200, response.text
    version: str = response.json()["model_version"]
    return version


@pytest.mark.parametrize("corruption", sorted(CORRUPTIONS))
def test_a_corrupt_newest_model_at_start_serves_the_one_before(
    home: Path, api_key: str, corruption: str
) -> None:
    newest, older = newest_two(home)
    CORRUPTIONS[corruption](newest)
    if corruption == "saved-half-way":
        older = store_at(home).registry.production()[1].tag  # the newest complete one
    with serve(home) as base:
        assert httpx.get(base + "/readyz", timeout=10).status_code == 200
        assert served_version(base, api_key) == older


def test_corrupted_while_serving_then_restarted(home: Path, api_key: str) -> None:
    """The probe of the issue: corrupt the served model in place, then restart."""
    newest, older = newest_two(home)
    env = {"BENTOML_HOME": str(home), "POKEWATCH_SERVICE__RELOAD_SECONDS": "0.5"}
    with bentoml_serve("service:PokeWatch", env=env) as base:
        assert served_version(base, api_key) != older
        tamper(newest / PREDICTIONS_FILE)
        time.sleep(1.5)  # a few store checks
        assert httpx.get(base + "/readyz", timeout=10).status_code == 200
        served_version(base, api_key)  # still answering
    with serve(home) as base:
        assert httpx.get(base + "/readyz", timeout=10).status_code == 200
        assert served_version(base, api_key) == older
