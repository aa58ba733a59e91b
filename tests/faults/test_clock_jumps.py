"""The system clock jumping under a real `bentoml serve` (libfaketime, re-read on every
call): to long before the data and far after it, and back. Answers stay the same, `stale`
and the data's age follow the clock, caching headers stay sane, nothing fails."""

import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.e2e.conftest import bentoml_serve
from tests.faults.conftest import SEALED

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.faults]

LIBFAKETIME = Path("/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1")
BEFORE_DATA = "-9000d"  # about 2002: before the bundled sample's first day
FAR_AFTER = "+27000d"  # about 2100


@pytest.fixture(scope="module")
def clock_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("clock") / "faketime"
    path.write_text(BEFORE_DATA)
    return path


@pytest.fixture(scope="module")
def jumping(model_tag: str, clock_file: Path) -> Iterator[str]:
    if not LIBFAKETIME.is_file() or shutil.which("faketime") is None:
        pytest.skip("libfaketime is not installed (Debian: faketime; .ci/run installs it)")
    env = {
        "LD_PRELOAD": str(LIBFAKETIME),
        "FAKETIME_TIMESTAMP_FILE": str(clock_file),
        "FAKETIME_NO_CACHE": "1",
        # A clock jump moves the wall clock only: timeouts and rate limits run on the
        # monotonic clock, as on a real machine.
        "FAKETIME_DONT_FAKE_MONOTONIC": "1",
    }
    with bentoml_serve("service:PokeWatch", env=env) as base:
        yield base


def answers(base: str, api_key: str) -> dict[str, httpx.Response]:
    headers = {"X-API-Key": api_key}
    return {
        "latest": httpx.post(
            base + "/fair_price", json={"card_id": SEALED}, headers=headers, timeout=10
        ),
        "dated": httpx.post(
            base + "/fair_price",
            json={"card_id": SEALED, "date": "2024-06-01"},
            headers=headers,
            timeout=10,
        ),
        "v1": httpx.get(f"{base}/v1/cards/{SEALED}/fair-price", headers=headers, timeout=10),
        "health": httpx.post(base + "/health", json={}, headers=headers, timeout=10),
    }


def without_staleness(response: httpx.Response) -> dict[str, object]:
    body: dict[str, object] = response.json()
    return {name: value for name, value in body.items() if name != "stale"}


def max_age(response: httpx.Response) -> int:
    found = re.search(r"max-age=(\d+)", response.headers.get("cache-control", ""))
    assert found is not None, response.headers
    return int(found.group(1))


def test_answers_follow_the_clock_through_jumps(
    jumping: str, clock_file: Path, api_key: str
) -> None:
    before = answers(jumping, api_key)
    assert {name: r.status_code for name, r in before.items()} == dict.fromkeys(before, 200)
    assert before["health"].json()["stale"] is False
    assert before["health"].json()["data_age_hours"] == 0
    assert before["latest"].json()["stale"] is False
    assert before["v1"].json()["stale"] is False
    assert 0 < max_age(before["v1"]) <= 86_400

    clock_file.write_text(FAR_AFTER)
    after = answers(jumping, api_key)
    assert {name: r.status_code for name, r in after.items()} == dict.fromkeys(after, 200)
    assert after["health"].json()["stale"] is True
    assert after["health"].json()["data_age_hours"] > 24 * 365 * 70
    # The cached fresh answers are not served as fresh: staleness is part of the cache key.
    assert after["latest"].json()["stale"] is True
    assert after["v1"].json()["stale"] is True
    assert after["v1"].headers["etag"] != before["v1"].headers["etag"]
    assert 0 < max_age(after["v1"]) <= 86_400
    for name in ("latest", "dated", "v1"):
        assert without_staleness(after[name]) == without_staleness(before[name]), name

    clock_file.write_text(BEFORE_DATA)
    back = answers(jumping, api_key)
    assert back["latest"].json() == before["latest"].json()
    assert back["health"].json()["stale"] is False
