"""compose.yaml for real, with podman-compose: API + Redis + the jobs.

The file run is compose.yaml with what this machine needs instead, and nothing else
changed: the locally built images (no registry to pull from), host networking (no bridge
here) with Redis on a free port, the API's port from BENTOML_PORT, and the fake TCGCSV as
the jobs' source, tracking one group with the fast `last` strategy. The pipelines service
publishes the newest day at `up`; the API answers it; `down` keeps the volumes, so `up`
again serves the same publication.
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.containers import engine
from tests.e2e.conftest import free_port
from tests.pipelines.fake_tcgcsv import GROUPS, FakeTcgcsv, fixture_days

# Building the images (first test of the session) takes minutes.
pytestmark = [pytest.mark.container, pytest.mark.timeout(3600)]


def local_compose(
    api: str, jobs: str, redis: str, keys_dir: Path, tcgcsv: FakeTcgcsv
) -> tuple[dict[str, Any], int]:
    compose: dict[str, Any] = yaml.safe_load((engine.REPO / "compose.yaml").read_text())
    services = compose["services"]
    for optional in ("mlflow", "prometheus", "grafana"):  # profiles, not started by `up`
        assert services.pop(optional)["profiles"]
    redis_port, api_port = free_port(), free_port()
    for service in services.values():
        service["network_mode"] = "host"
        service.pop("ports", None)
    services["redis"]["image"] = redis
    services["redis"]["command"] = [
        *services["redis"]["command"],
        "--port",
        str(redis_port),
        "--dir",
        "/data",
    ]
    services["redis"]["healthcheck"]["test"] = ["CMD", "redis-cli", "-p", str(redis_port), "ping"]
    service = services["pokewatch"]
    service["image"] = api
    service["environment"].update(
        {
            "POKEWATCH_REDIS__URL": f"redis://127.0.0.1:{redis_port}/0",
            "BENTOML_PORT": str(api_port),
            "POKEWATCH_SERVICE__RELOAD_SECONDS": "2",
        }
    )
    service["healthcheck"]["test"][-1] = service["healthcheck"]["test"][-1].replace(
        "3000", str(api_port)
    )
    jobs_service = services["pipelines"]
    jobs_service.pop("build")
    jobs_service["image"] = jobs
    jobs_service["environment"].update(
        {
            "POKEWATCH_SOURCES__TCGCSV__BASE_URL": tcgcsv.url,
            "POKEWATCH_TRACKED_ITEMS__TCGCSV": json.dumps([{"group": GROUPS[0]}]),
            "POKEWATCH_MODEL__STRATEGY": "last",
        }
    )
    for entry in services.values():
        entry["volumes"] = [
            volume.replace("${POKEWATCH_KEYS_DIR:-./data}", str(keys_dir)).replace(
                "${POKEWATCH_CONFIG_FILE:-./configuration.yaml}",
                str(engine.REPO / "configuration.yaml"),
            )
            for volume in entry.get("volumes", [])
        ]
    return compose, api_port


def compose(project: str, file: Path, *arguments: str) -> None:
    engine.run([str(engine.BIN / "podman-compose"), "-f", str(file), "-p", project, *arguments])


def published(base: str, key: str) -> dict[str, Any]:
    health: dict[str, Any] = httpx.post(f"{base}/health", headers={"X-API-Key": key}).json()
    return health


def test_compose_up_answers_the_newest_day_and_keeps_it_across_down_and_up(
    api_image: str,
    pipelines_image: str,
    redis_image: str,
    keys_dir: Path,
    api_key: str,
    tcgcsv: FakeTcgcsv,
    tmp_path: Path,
) -> None:
    day = datetime.now(UTC).date() - timedelta(days=1)
    tcgcsv.publish(day, fixture_days()[2])
    document, port = local_compose(api_image, pipelines_image, redis_image, keys_dir, tcgcsv)
    file = tmp_path / "compose.yaml"
    file.write_text(yaml.safe_dump(document, sort_keys=False))
    project = f"pokewatch-check-{port}"
    base = f"http://127.0.0.1:{port}"
    started = time.monotonic()
    compose(project, file, "up", "-d")
    try:
        engine.wait_for(f"{base}/readyz", 180)
        deadline = time.monotonic() + 300
        # Served from the newest publication, and the job has recorded its run (just after
        # publishing; a first run's model answers the day from its own table before that).
        while not (
            (health := published(base, api_key))["data_as_of"] == day.isoformat()
            and health["published"]
            and health["jobs"].get("daily", {}).get("last_success")
        ):
            assert time.monotonic() < deadline, health
            time.sleep(1)
        engine.TIMINGS.seconds["compose up to the newest day served"] = time.monotonic() - started
        first = health["published"]

        compose(project, file, "down")
        compose(project, file, "up", "-d")
        engine.wait_for(f"{base}/readyz", 180)
        again = published(base, api_key)
        assert (again["published"], again["data_as_of"]) == (first, day.isoformat())
    except Exception:
        for service in ("pokewatch", "pipelines", "redis"):
            print(engine.logs(f"{project}_{service}_1"))
        raise
    finally:
        compose(project, file, "down", "-v")
