from collections.abc import Iterator

import pytest
from starlette.testclient import TestClient


@pytest.fixture(scope="session")
def client(model_tag: str, api_key: str) -> Iterator[TestClient]:
    from service import PokeWatch

    app = PokeWatch.to_asgi()
    with TestClient(app, headers={"X-API-Key": api_key}) as test_client:
        yield test_client
