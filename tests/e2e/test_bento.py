"""`bentoml build` packages the service and model offline, and the built Bento serves."""

import os
import subprocess

import httpx
import pytest

from model.artifact import MODEL_NAME
from service.models import select_model_tag
from tests.e2e.conftest import BENTOML, REPO, bentoml_serve

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def test_built_bento_serves(model_tag: str, api_key: str) -> None:
    build = subprocess.run(
        [str(BENTOML), "build", ".", "--output", "tag"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "PATH": f"{BENTOML.parent}:{os.environ['PATH']}"},
    )
    assert build.returncode == 0, build.stderr
    bento_tag = build.stdout.strip().splitlines()[-1].removeprefix("__tag__:")
    assert bento_tag.startswith("pokewatch:")
    with bentoml_serve(bento_tag) as base:
        response = httpx.post(
            f"{base}/fair_price", json={"card_id": "tcg-133777"}, headers={"X-API-Key": api_key}
        )
        assert response.status_code == 200
        assert response.json()["model_version"] == select_model_tag(f"{MODEL_NAME}:latest")
