from collections.abc import Iterator

import pytest
from starlette.testclient import TestClient

from model.data import load_prices
from model.settings import Settings, load_settings
from model.training import train
from pipelines.registry import save_to_store


@pytest.fixture(scope="session")
def model_tag() -> str:
    """A model trained on the bundled sample, saved in the test BentoML home."""
    settings = load_settings(Settings)
    return save_to_store(train(load_prices().valid, settings.model))


@pytest.fixture(scope="session")
def client(model_tag: str, api_key: str) -> Iterator[TestClient]:
    from service import PokeWatch

    app = PokeWatch.to_asgi()
    with TestClient(app, headers={"X-API-Key": api_key}) as test_client:
        yield test_client
