"""The workers' JSON log lines (`service.log_format: json`) from a real `bentoml serve`."""

import json
import os
from pathlib import Path

import httpx
import pytest

from tests.e2e.conftest import bentoml_serve

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def json_lines(base: str) -> list[dict[str, object]]:
    """The log's lines that are JSON objects (BentoML's supervisor, outside the workers,
    still writes text before the workers start)."""
    port = base.rsplit(":", 1)[1]
    log = Path(os.environ["BENTOML_HOME"]) / f"serve-{port}.log"
    found = []
    for line in log.read_text().splitlines():
        try:
            value = json.loads(line)
        except ValueError:
            continue
        if isinstance(value, dict):
            found.append(value)
    return found


def test_access_lines_are_json_objects_with_request_and_key_fields(
    model_tag: str, api_key: str, tmp_path: Path
) -> None:
    env = {
        "POKEWATCH_SERVICE__LOG_FORMAT": "json",
        # Its own BentoML home (the store is store.path): every `bentoml serve` empties its
        # home's prometheus_multiproc_dir at start, under the session's running servers.
        "BENTOML_HOME": str(tmp_path / "home"),
        "POKEWATCH_STORE__PATH": os.environ["BENTOML_HOME"],
    }
    with bentoml_serve("service:PokeWatch", env=env) as base:
        headers = {"X-API-Key": api_key, "X-Request-ID": "json-log-check"}
        answered = httpx.post(f"{base}/fair_price", json={"card_id": "tcg-133777"}, headers=headers)
        missing = httpx.get(f"{base}/v1/cards/no-such-card", headers=headers)
        assert (answered.status_code, missing.status_code) == (200, 404)
    # Read once the server has stopped: a line is written after its answer is sent.
    lines = json_lines(base)
    access = [line for line in lines if line.get("request_id") == "json-log-check"]
    assert [(line["method"], line["path"], line["status"]) for line in access] == [
        ("POST", "/fair_price", 200),
        ("GET", "/v1/cards/no-such-card", 404),
    ]
    assert {line["key_id"] for line in access} == {api_key.split("_")[2]}
    assert all(line["logger"] == "pokewatch.access" for line in access)
    assert all(isinstance(line["duration_ms"], float) for line in access)
    # The worker's own lines too (the model it serves), not only the access log.
    assert any(str(line.get("message", "")).startswith("serving ") for line in lines)
