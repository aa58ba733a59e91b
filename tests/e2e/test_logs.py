"""The workers' JSON log lines (`service.log_format: json`, as the session's `served`
server runs) from a real `bentoml serve`."""

import json
import os
import time
from pathlib import Path

import httpx
import pytest

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

REQUEST_ID = "json-log-check"


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


def access_lines(base: str, count: int) -> list[dict[str, object]]:
    """This test's access lines, once `count` are written (a line follows its answer)."""
    deadline = time.monotonic() + 10
    while True:
        lines = [line for line in json_lines(base) if line.get("request_id") == REQUEST_ID]
        if len(lines) >= count or time.monotonic() > deadline:
            return lines
        time.sleep(0.1)


def test_access_lines_are_json_objects_with_request_and_key_fields(
    served: str, api_key: str
) -> None:
    headers = {"X-API-Key": api_key, "X-Request-ID": REQUEST_ID}
    answered = httpx.post(f"{served}/fair_price", json={"card_id": "tcg-133777"}, headers=headers)
    missing = httpx.get(f"{served}/v1/cards/no-such-card", headers=headers)
    assert (answered.status_code, missing.status_code) == (200, 404)
    access = access_lines(served, 2)
    assert [(line["method"], line["path"], line["status"]) for line in access] == [
        ("POST", "/fair_price", 200),
        ("GET", "/v1/cards/no-such-card", 404),
    ]
    assert {line["key_id"] for line in access} == {api_key.split("_")[2]}
    assert all(line["logger"] == "pokewatch.access" for line in access)
    assert all(isinstance(line["duration_ms"], float) for line in access)
    # The worker's own lines too (the model it serves), not only the access log.
    assert any(str(line.get("message", "")).startswith("serving ") for line in json_lines(served))
