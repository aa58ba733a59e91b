from collections.abc import Iterator

import pytest
from starlette.testclient import TestClient


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
