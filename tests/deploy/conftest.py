"""A Bento built once for the delivery tests (its Dockerfile, its export)."""

import os
import subprocess
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def tool(name: str) -> str:
    """A tool of the dev extra, from this interpreter's environment."""
    path = BIN / name
    if not path.exists():
        pytest.fail(f"{name} is missing: install the dev extra (make install)")
    return str(path)


@dataclass(frozen=True)
class BuiltBento:
    tag: str
    path: Path


@pytest.fixture(scope="session")
def built_bento(model_tag: str) -> BuiltBento:
    """`bentoml build` of this checkout in the test BentoML home, with the test model."""
    version = f"test-{uuid.uuid4().hex[:8]}"
    build = subprocess.run(
        [tool("bentoml"), "build", ".", "--version", version, "--output", "tag"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "PATH": f"{BIN}:{os.environ['PATH']}"},
    )
    assert build.returncode == 0, build.stderr
    tag = build.stdout.strip().splitlines()[-1].removeprefix("__tag__:")
    assert tag == f"pokewatch:{version}"
    path = Path(os.environ["BENTOML_HOME"]) / "bentos" / "pokewatch" / version
    assert (path / "bento.yaml").is_file()
    return BuiltBento(tag, path)
