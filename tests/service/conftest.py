from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from model.artifact import TrainedModel, build_trained_model
from model.evaluation import BacktestSettings
from model.strategies import FairPriceModel
from service.store import JobsFile, ModelRegistry, Publications, Store
from tests.model.conftest import SMALL_PRICES, make_prices


@pytest.fixture(scope="session")
def served_tag(model_tag: str) -> str:
    """The model the service loads: the newest production one in the test store, which
    other tests (pipelines, e2e) may have saved after `model_tag`."""
    from service.settings import StoreSettings
    from service.store import Store

    selection = Store.from_settings(StoreSettings()).select()
    assert selection is not None
    return selection.model.tag


@pytest.fixture(scope="session")
def client(served_tag: str, api_key: str) -> Iterator[TestClient]:
    from service import PokeWatch

    app = PokeWatch.to_asgi()
    with TestClient(app, headers={"X-API-Key": api_key}) as test_client:
        yield test_client


@pytest.fixture
def trained() -> TrainedModel:
    return build_trained_model(
        make_prices(SMALL_PRICES),
        FairPriceModel("mean3", horizon=1),
        BacktestSettings(min_history_days=1),
    )


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return Store(
        ModelRegistry.at(tmp_path / "models"),
        Publications(tmp_path / "published"),
        JobsFile(tmp_path / "jobs.json"),
    )
