"""`bentoml build` -> `bentoml export` -> extract -> serve the directory with an EMPTY
BentoML home, as the container does (its WORKDIR is the Bento, its store is empty)."""

import subprocess
import tarfile
from pathlib import Path

import httpx
import pytest
import yaml

from tests.deploy.conftest import BuiltBento, tool
from tests.e2e.conftest import bentoml_serve

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def _files(root: Path) -> set[Path]:
    return {
        path.relative_to(root)
        for path in root.rglob("*")
        if path.is_file() and "__pycache__" not in path.parts
    }


def test_exported_bento_serves_from_an_empty_store(
    built_bento: BuiltBento, api_key: str, tmp_path: Path
) -> None:
    archive = tmp_path / "pokewatch.bento"
    export = subprocess.run(
        [tool("bentoml"), "export", built_bento.tag, str(archive)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert export.returncode == 0, export.stderr
    bento = tmp_path / "bento"
    bento.mkdir()
    with tarfile.open(archive) as tar:
        tar.extractall(bento, filter="data")
    info = yaml.safe_load((bento / "bento.yaml").read_text())
    (model,) = info["services"][0]["models"]
    name, version = model["tag"].split(":")
    assert (bento / "models" / name / version / "model.yaml").is_file()

    home = tmp_path / "empty-bentoml-home"
    home.mkdir()
    before = _files(bento)
    # The Bento's own configuration.yaml, as in the container.
    env = {"BENTOML_HOME": str(home), "POKEWATCH_CONFIG": None}
    with bentoml_serve(str(bento), env=env, cwd=bento) as base:
        answer = httpx.post(
            f"{base}/fair_price", json={"card_id": "tcg-133777"}, headers={"X-API-Key": api_key}
        )
        assert answer.status_code == 200, answer.text
        assert answer.json()["model_version"] == model["tag"]
        assert answer.json()["signal"] in {"BUY", "SELL", "HOLD"}
        anonymous = httpx.post(f"{base}/fair_price", json={"card_id": "tcg-133777"})
        assert anonymous.status_code == 401

    # The model came from the Bento: the store stayed empty, and serving wrote nothing into
    # the Bento (the image's Bento directory is read-only on Kubernetes).
    assert not [path for path in (home / "models").rglob("*") if path.is_file()]
    assert _files(bento) == before
