"""The API image's `pokewatch`: a built Bento's setup script writes it, and it runs the
Bento's own copy of the CLI with the serving packages alone (the image has nothing else)."""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

import pytest

from tests.deploy.conftest import BIN, REPO, BuiltBento
from tests.serving_only import serving_only_env

pytestmark = pytest.mark.slow

SCRIPT = REPO / "deploy" / "bento" / "install-pokewatch.sh"


def _setup_script(bento: Path) -> str:
    """The name BentoML gives the setup script; the Dockerfile runs it after installing
    the Python packages (the virtual environment is there to write `pokewatch` into)."""
    dockerfile = (bento / "env" / "docker" / "Dockerfile").read_text()
    (name,) = re.findall(r"^RUN chmod \+x \./env/docker/(script__\w+) && ", dockerfile, re.M)
    assert dockerfile.index(name) > dockerfile.index("pip install -r")
    return str(name)


def test_the_image_build_runs_the_setup_script(built_bento: BuiltBento) -> None:
    script = built_bento.path / "env" / "docker" / _setup_script(built_bento.path)
    assert script.read_text() == SCRIPT.read_text()
    assert os.access(SCRIPT, os.X_OK)


def test_pokewatch_runs_the_bentos_cli_without_the_extras(
    built_bento: BuiltBento, tmp_path: Path
) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    script = built_bento.path / "env" / "docker" / _setup_script(built_bento.path)
    subprocess.run(["sh", str(script), str(bin_dir)], check=True)
    env = serving_only_env(tmp_path / "site", checkout=False)
    env.pop("POKEWATCH_CONFIG", None)  # the Bento's configuration.yaml, as in the image
    env |= {
        "BENTO_PATH": str(built_bento.path),
        "PATH": os.pathsep.join([str(bin_dir), str(BIN), env["PATH"]]),
        "POKEWATCH_SECURITY__KEYS_FILE": str(tmp_path / "keys" / "keys.json"),
    }

    def pokewatch(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["pokewatch", *args],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    where = subprocess.run(
        ["python", "-c", "import pipelines.cli, service.keys; print(pipelines.cli.__file__)"],
        cwd=built_bento.path / "src",
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert Path(where.stdout.strip()).is_relative_to(built_bento.path / "src")

    # Every keys command without the extras: tests/pipelines/test_serving_only.py.
    created = pokewatch("keys", "create", "--name", "smoke-test")
    assert created.returncode == 0, created.stderr
    (record,) = json.loads((tmp_path / "keys" / "keys.json").read_text())["keys"]
    assert created.stdout.startswith("pw_")
    assert record["key_id"] in created.stdout
    collect = pokewatch("collect")
    assert collect.returncode == 1
    assert collect.stderr.splitlines() == [
        "error: `pokewatch collect` needs the pipelines extra (no module 'tenacity'): "
        "pip install 'pokewatch[pipelines]'"
    ]
