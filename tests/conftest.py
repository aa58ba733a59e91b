"""Test-wide isolation: a private BentoML home, no telemetry, no tracing.

Set before anything imports bentoml, which reads these once.
"""

import os
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from pytest_httpserver import HTTPServer

os.environ["BENTOML_HOME"] = tempfile.mkdtemp(prefix="pokewatch-bentoml-")
os.environ["BENTOML_DO_NOT_TRACK"] = "true"
os.environ["OTEL_SDK_DISABLED"] = "true"
# A private keys file, re-read on every request so keys made by a test apply at once, and
# quotas no functional test reaches (the rate-limit tests set their own).
os.environ["POKEWATCH_SECURITY__KEYS_FILE"] = str(
    Path(tempfile.mkdtemp(prefix="pokewatch-keys-")) / "keys.json"
)
os.environ["POKEWATCH_SECURITY__KEYS_RELOAD_SECONDS"] = "0"
os.environ["POKEWATCH_SECURITY__RATE_LIMIT__PER_MINUTE"] = "1000000"
os.environ["POKEWATCH_SECURITY__RATE_LIMIT__BURST"] = "100000"
# Webhooks in tests call receivers on this machine, over plain http: allowed explicitly
# (the defaults refuse both; tests/service/alerts/test_targets.py checks them).
os.environ["POKEWATCH_ALERTS__REQUIRE_HTTPS"] = "false"
os.environ["POKEWATCH_ALERTS__ALLOWED_NETWORKS"] = '["127.0.0.0/8"]'
# A private PostgreSQL database per test that asks for one (the machines run a server).
POSTGRES_ADMIN_URL = os.environ.get(
    "POKEWATCH_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres"
)


@pytest.fixture(scope="session")
def api_key() -> str:
    """A key with every scope, in the test keys file."""
    from service.keys import KeysFile, Scope

    raw, _ = KeysFile(Path(os.environ["POKEWATCH_SECURITY__KEYS_FILE"])).create(
        "tests", frozenset(Scope), "test"
    )
    return raw


@pytest.fixture(scope="session")
def model_tag() -> str:
    """A model of the bundled sample in the test BentoML home.

    The service's behaviour does not depend on the strategy, so the tests use the fast
    seed baseline; the default strategy has its own tests under tests/model.
    """
    from model.data import load_prices
    from model.settings import Settings, load_settings
    from model.training import train
    from service.settings import StoreSettings
    from service.store import Stage, Store

    settings = load_settings(Settings).model.model_copy(update={"strategy": "mean3"})
    store = Store.from_settings(StoreSettings())
    return store.registry.save(train(load_prices().valid, settings).trained, Stage.PRODUCTION)


@contextmanager
def private_postgres() -> Iterator[str]:
    """A new, empty PostgreSQL database (SQLAlchemy URL), dropped afterwards."""
    import psycopg

    name = f"pokewatch_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        base = POSTGRES_ADMIN_URL.rsplit("/", 1)[0].replace(
            "postgresql://", "postgresql+psycopg://"
        )
        yield f"{base}/{name}"
    finally:
        with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=["sqlite", "postgresql"])
def alerts_database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The alerts database of a test, once on each back-end: the same suite runs on both."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'alerts.db'}"
        return
    with private_postgres() as url:
        yield url


@pytest.fixture
def threaded_server() -> Iterator[HTTPServer]:
    """A local server answering requests in parallel (slow answers, several clients)."""
    server = HTTPServer(threaded=True)
    server.start()
    yield server
    server.clear()
    server.stop()
