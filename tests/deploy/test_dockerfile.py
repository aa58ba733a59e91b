"""The Dockerfile BentoML generates for the Bento passes hadolint (deploy/hadolint.yaml)."""

import json
import subprocess
from pathlib import Path

import bentoml
import pytest
import yaml
from bentoml._internal.container import construct_containerfile

from tests.deploy.conftest import REPO, BuiltBento, tool

pytestmark = pytest.mark.slow

CONFIG = REPO / "deploy" / "hadolint.yaml"


def _hadolint(dockerfile: Path, *options: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [tool("hadolint"), "--no-color", *options, str(dockerfile)],
        capture_output=True,
        text=True,
        check=False,
    )


@pytest.fixture(scope="module")
def dockerfiles(built_bento: BuiltBento, tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """The bento's env/docker/Dockerfile and the BuildKit one `bentoml containerize` uses."""
    buildkit = tmp_path_factory.mktemp("buildkit") / "Dockerfile"
    bento = bentoml.bentos.get(built_bento.tag)
    with construct_containerfile(bento, enable_buildkit=True) as (context, relative):
        buildkit.write_text((Path(context) / relative).read_text())
    return [built_bento.path / "env" / "docker" / "Dockerfile", buildkit]


def test_generated_dockerfiles_pass_hadolint(dockerfiles: list[Path]) -> None:
    for dockerfile in dockerfiles:
        result = _hadolint(dockerfile, "--config", str(CONFIG))
        assert result.returncode == 0, f"{dockerfile}:\n{result.stdout}{result.stderr}"


def test_every_ignored_rule_still_fires(dockerfiles: list[Path]) -> None:
    """No stale exceptions: each ignored rule is one the generated Dockerfile breaks."""
    ignored = set(yaml.safe_load(CONFIG.read_text())["ignored"])
    fired: set[str] = set()
    for dockerfile in dockerfiles:
        result = _hadolint(dockerfile, "--format", "json", "--no-fail")
        fired |= {finding["code"] for finding in json.loads(result.stdout)}
    assert ignored <= fired, f"no longer needed: {sorted(ignored - fired)}"


def test_hadolint_fails_a_bad_dockerfile(tmp_path: Path) -> None:
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python:latest\nRUN cd /tmp && pip install requests\n")
    assert _hadolint(bad, "--config", str(CONFIG)).returncode == 1
