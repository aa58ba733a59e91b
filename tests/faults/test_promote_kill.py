"""`pokewatch promote` (a model saved into the store, then published) SIGKILLed at random
points: after each kill the store selects a production model whose table loads, every
visible model and publication verifies or is skipped, and the rerun succeeds.

`make faults` runs it (`POKEWATCH_KILL_TRIALS` kills: 50 there, 1 by default).
"""

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from model.data import load_prices
from model.settings import ModelSettings
from model.training import train
from service.store import Stage, Store
from tests.pipelines.conftest import private_store, write_config  # noqa: F401 (fixture)

TRIALS = int(os.environ.get("POKEWATCH_KILL_TRIALS", "1"))
pytestmark = [pytest.mark.slow, pytest.mark.faults, pytest.mark.timeout(max(300, 30 * TRIALS))]
POKEWATCH = Path(sys.executable).with_name("pokewatch")


def promote(env: dict[str, str], tag: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [str(POKEWATCH), "promote", tag],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )


def assert_servable(store: Store) -> None:
    """What a starting worker would do: select, verify and load the table."""
    selection = store.select()
    assert selection is not None
    table = store.table(selection)
    assert len(table.items) > 0
    for publication in store.publications.all(selection.model.tag):
        assert store.publications.problems(publication) == [], publication.path


def test_sigkill_anywhere_in_a_promotion_leaves_a_servable_store(
    write_config: Path,  # noqa: F811 (the fixture imported above)
    tmp_path: Path,
) -> None:
    store = private_store(tmp_path)
    trained = train(load_prices().valid, ModelSettings(strategy="last")).trained
    first = store.registry.save(trained, Stage.PRODUCTION)
    env = {**os.environ, "POKEWATCH_CONFIG": str(write_config)}

    started = time.monotonic()
    reference = promote(env, first)
    _, errors = reference.communicate(timeout=300)
    assert reference.returncode == 0, errors.decode()
    length = time.monotonic() - started

    rng = random.Random(151)
    for _ in range(TRIALS):
        process = promote(env, first)
        time.sleep(rng.uniform(0, length))
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        assert_servable(store)
    rerun = promote(env, first)
    _, errors = rerun.communicate(timeout=300)
    assert rerun.returncode == 0, errors.decode()
    assert_servable(store)
    newest = store.registry.newest_production()
    assert newest is not None
    assert newest.tag != first
    print(f"promotion takes {length:.1f} s; {TRIALS} kills, the store servable after each")
