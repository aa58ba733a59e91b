"""The keys file damaged while a real `bentoml serve` (2 workers) uses it: the last good keys
stay in force, the metric says so, and the next good version is picked up."""

import time
from pathlib import Path

import httpx
import pytest

from service.keys import KeysFile, Scope
from tests.e2e.conftest import bentoml_serve
from tests.faults.conftest import SEALED

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.faults]

RELOAD_SECONDS = 0.2


def statuses(base: str, key: str, count: int) -> list[int]:
    return [
        httpx.post(
            base + "/fair_price", json={"card_id": SEALED}, headers={"X-API-Key": key}, timeout=10
        ).status_code
        for _ in range(count)
    ]


def gauge(base: str) -> float:
    for line in httpx.get(base + "/metrics", timeout=10).text.splitlines():
        if line.startswith("pokewatch_keys_file_unusable"):
            return float(line.split()[-1])
    raise AssertionError("pokewatch_keys_file_unusable is not exported")


def eventually(check: object, seconds: float = 10) -> None:
    assert callable(check)
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, "not within the time"
        time.sleep(0.1)


def test_a_damaged_keys_file_keeps_the_last_good_keys(model_tag: str, tmp_path: Path) -> None:
    keys = KeysFile(tmp_path / "keys.json")
    old_key, _ = keys.create("before", frozenset(Scope), "dev")
    env = {
        "POKEWATCH_SECURITY__KEYS_FILE": str(keys.path),
        "POKEWATCH_SECURITY__KEYS_RELOAD_SECONDS": str(RELOAD_SECONDS),
        "POKEWATCH_SERVICE__WORKERS": "2",
    }
    with bentoml_serve("service:PokeWatch", env=env) as base:
        assert statuses(base, old_key, 10) == [200] * 10
        good = keys.path.read_bytes()
        keys.path.write_bytes(good[: len(good) // 2])  # a half-written file
        time.sleep(3 * RELOAD_SECONDS)
        assert statuses(base, old_key, 40) == [200] * 40  # both workers, past the reload
        eventually(lambda: gauge(base) == 1)
        keys.path.write_text("\x00garbage")
        assert statuses(base, old_key, 20) == [200] * 20

        keys.path.unlink()
        new_key, _ = keys.create("after", frozenset(Scope), "dev")
        eventually(lambda: set(statuses(base, new_key, 10)) == {200})
        eventually(lambda: set(statuses(base, old_key, 10)) == {401})
        eventually(lambda: gauge(base) == 0)
