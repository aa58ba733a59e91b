"""The two images, run as the Deployment and the CronJob run them.

The API image runs read-only as a non-root user with only /tmp writable, the keys file
mounted and the settings from the environment: ready, 200 with a key on `/fair_price` and
on the v1 routes (through the typed client), 401 without, and the dashboard's files. The
pipelines image runs `pokewatch daily` against the fake TCGCSV and writes the store to a
shared directory; the running API container then answers that day.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from pipelines.sources.tcgcsv import TcgcsvPrice
from service.client import PokeWatchClient
from tests.containers import engine
from tests.e2e.conftest import free_port
from tests.pipelines.fake_tcgcsv import GROUPS, FakeTcgcsv, fixture_days

# Building the images (first test of the session) takes minutes.
pytestmark = [pytest.mark.container, pytest.mark.timeout(3600)]

API_USER = "1034:1034"  # the image's bentoml user (runAsUser in deploy/k8s)
JOBS_ENV = {
    "POKEWATCH_STORE__PATH": "/data/store",
    "POKEWATCH_COLLECTOR__RAW_DIR": "/data/raw",
    "POKEWATCH_COLLECTOR__QUARANTINE_DIR": "/data/quarantine",
    "POKEWATCH_COLLECTOR__CACHE_DIR": "/data/cache",
    "POKEWATCH_COLLECTOR__CATALOGUE_FILE": "/data/catalogue/tcgcsv.parquet",
    "POKEWATCH_COLLECTOR__STATE_DIR": "/data/state",
    "POKEWATCH_MLFLOW__TRACKING_URI": "sqlite:////data/mlruns/mlflow.db",
    "POKEWATCH_MLFLOW__ARTIFACT_LOCATION": "file:///data/mlruns/artifacts",
    "ZENML_CONFIG_PATH": "/data/zenml",
    "BENTOML_HOME": "/tmp/bentoml",
    "POKEWATCH_MODEL__STRATEGY": "last",
}


def flags(env: dict[str, str]) -> list[str]:
    return [part for name, value in env.items() for part in ("-e", f"{name}={value}")]


@contextmanager
def api_container(
    image: str, keys_dir: Path, env: dict[str, str] | None = None, data: Path | None = None
) -> Iterator[str]:
    """The API container as the Deployment runs it; yields its base URL."""
    port = free_port()
    name = f"pokewatch-api-{port}"
    volumes = ["-v", f"{keys_dir}:/keys:ro"] + (["-v", f"{data}:/data:ro"] if data else [])
    started = time.monotonic()
    engine.podman(
        "run",
        "-d",
        "--name",
        name,
        "--read-only",
        "--tmpfs",
        "/tmp",
        "--user",
        API_USER,
        *flags(
            {
                "BENTOML_HOME": "/tmp/bentoml",
                "BENTOML_PORT": str(port),
                "POKEWATCH_SECURITY__KEYS_FILE": "/keys/keys.json",
                **(env or {}),
            }
        ),
        *volumes,
        image,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        engine.wait_for(f"{base}/readyz")
        engine.TIMINGS.seconds.setdefault("API container ready", time.monotonic() - started)
        yield base
    except Exception:
        print(engine.logs(name))
        raise
    finally:
        engine.podman("rm", "-f", name, check=False)


def test_the_api_image_serves_read_only_as_a_non_root_user(
    api_image: str, keys_dir: Path, api_key: str
) -> None:
    with api_container(api_image, keys_dir) as base:
        answer = httpx.post(
            f"{base}/fair_price", json={"card_id": "tcg-133777"}, headers={"X-API-Key": api_key}
        )
        assert answer.status_code == 200, answer.text
        assert answer.json()["signal"] in {"BUY", "HOLD", "SELL"}
        anonymous = httpx.post(f"{base}/fair_price", json={"card_id": "tcg-133777"})
        assert anonymous.status_code == 401
        assert httpx.get(f"{base}/livez").status_code == 200
        with PokeWatchClient(base, api_key) as client:
            assert client.card("tcg-133777").market_price == answer.json()["market_price"]
            assert client.cards("theme deck", limit=1).total > 0
        assert httpx.get(f"{base}/v1/cards/tcg-133777").status_code == 401
        page = httpx.get(f"{base}/ui/")  # the dashboard's files are in the Bento
        assert page.status_code == 200
        assert httpx.get(f"{base}/ui/vendor/uplot/uPlot.iife.min.js").status_code == 200


def test_a_daily_run_of_the_pipelines_image_reaches_the_running_api_container(
    api_image: str,
    pipelines_image: str,
    keys_dir: Path,
    api_key: str,
    tcgcsv: FakeTcgcsv,
    tmp_path: Path,
) -> None:
    data = tmp_path / "data"
    data.mkdir()
    data.chmod(0o777)  # the jobs' user (10001) writes it, the API's (1034) reads it
    day = datetime.now(UTC).date() - timedelta(days=1)
    tcgcsv.publish(day, fixture_days()[3])
    item = TcgcsvPrice.model_validate(
        next(p for p in tcgcsv.prices_of(GROUPS[0]) if p["marketPrice"] is not None)
    ).item_id
    env = {"POKEWATCH_STORE__PATH": "/data/store", "POKEWATCH_SERVICE__RELOAD_SECONDS": "2"}
    with api_container(api_image, keys_dir, env, data) as base:
        started = time.monotonic()
        engine.podman(
            "run",
            "--rm",
            "--read-only",
            "--tmpfs",
            "/tmp",
            "-v",
            f"{data}:/data",
            *flags(
                {
                    **JOBS_ENV,
                    "POKEWATCH_SOURCES__TCGCSV__BASE_URL": tcgcsv.url,
                    "POKEWATCH_TRACKED_ITEMS__TCGCSV": f'[{{"group": {GROUPS[0]}}}]',
                }
            ),
            pipelines_image,
            "daily",
            timeout=900,
        )
        engine.TIMINGS.seconds["daily run in the pipelines container"] = time.monotonic() - started
        deadline = time.monotonic() + 60
        while True:
            answer = httpx.post(
                f"{base}/fair_price", json={"card_id": item}, headers={"X-API-Key": api_key}
            )
            if answer.status_code == 200 and answer.json()["data_as_of"] == day.isoformat():
                break
            assert time.monotonic() < deadline, answer.text
            time.sleep(0.5)
        assert answer.json()["history_days"] == 1
