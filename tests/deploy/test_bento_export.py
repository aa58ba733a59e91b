"""`bentoml build` -> `bentoml export` -> extract -> serve the directory with an EMPTY
BentoML home, as the container does (its WORKDIR is the Bento, its store is empty)."""

import os
import subprocess
import tarfile
import time
from pathlib import Path

import httpx
import pytest
import yaml

from tests.deploy.conftest import BIN, BuiltBento, tool
from tests.e2e.conftest import STARTUP_SECONDS, free_port

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def _files(root: Path) -> set[Path]:
    return {
        path.relative_to(root)
        for path in root.rglob("*")
        if path.is_file() and "__pycache__" not in path.parts
    }


def _wait_ready(process: subprocess.Popen[bytes], base: str, log: Path) -> None:
    deadline = time.monotonic() + STARTUP_SECONDS
    while True:
        if process.poll() is not None:
            pytest.fail(f"bentoml serve exited {process.returncode}:\n{log.read_text()}")
        try:
            if httpx.get(f"{base}/readyz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            pytest.fail(f"not ready in {STARTUP_SECONDS} s:\n{log.read_text()[-4000:]}")
        time.sleep(0.25)


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
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    log = tmp_path / "serve.log"
    env = {**os.environ, "BENTOML_HOME": str(home), "PATH": f"{BIN}:{os.environ['PATH']}"}
    env.pop("POKEWATCH_CONFIG", None)  # the Bento's own configuration.yaml
    with log.open("wb") as output:
        process = subprocess.Popen(
            [tool("bentoml"), "serve", str(bento), "--host", "127.0.0.1", "--port", str(port)],
            cwd=bento,
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        _wait_ready(process, base, log)
        answer = httpx.post(
            f"{base}/fair_price", json={"card_id": "tcg-133777"}, headers={"X-API-Key": api_key}
        )
        assert answer.status_code == 200, answer.text
        assert answer.json()["model_version"] == model["tag"]
        assert answer.json()["signal"] in {"BUY", "SELL", "HOLD"}
        anonymous = httpx.post(f"{base}/fair_price", json={"card_id": "tcg-133777"})
        assert anonymous.status_code == 401
    finally:
        os.killpg(process.pid, 15)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, 9)
            process.wait()

    # The model came from the Bento: the store stayed empty, and serving wrote nothing into
    # the Bento (the image's Bento directory is read-only on Kubernetes).
    assert not [path for path in (home / "models").rglob("*") if path.is_file()]
    assert _files(bento) == before
