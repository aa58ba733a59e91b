"""Test-wide isolation: a private BentoML home, no telemetry, no tracing.

Set before anything imports bentoml, which reads these once.
"""

import os
import tempfile
from collections.abc import Iterator
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


@pytest.fixture
def threaded_server() -> Iterator[HTTPServer]:
    """A local server answering requests in parallel (slow answers, several clients)."""
    server = HTTPServer(threaded=True)
    server.start()
    yield server
    server.clear()
    server.stop()
