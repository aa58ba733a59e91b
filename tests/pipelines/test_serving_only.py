"""`pokewatch --help` and `pokewatch keys ...` with the serving packages alone (the API image
runs them so), and the one line a command whose extra is missing prints instead."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from pipelines.cli import EXTRA_MODULES
from tests.serving_only import not_in_the_api_image, serving_only_env

pytestmark = pytest.mark.slow  # one interpreter start (about 2 s) per command


def _pokewatch(
    tmp_path: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    config = tmp_path / "configuration.yaml"
    if not config.exists():
        config.write_text(f"store:\n  path: {tmp_path / 'store'}\nmodel:\n  strategy: last\n")
    return subprocess.run(
        [sys.executable, "-m", "pipelines.cli", *args],
        cwd=tmp_path,
        env={
            **(env or serving_only_env(tmp_path / "site")),
            "POKEWATCH_CONFIG": str(config),
            "POKEWATCH_SECURITY__KEYS_FILE": str(tmp_path / "keys" / "keys.json"),
        },
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_the_extras_are_what_the_api_image_lacks() -> None:
    """The blocked modules: the extras' own, not the ones serving packages bring."""
    assert {"mlflow", "py7zr", "tenacity", "zenml", "sklearn", "skops", "matplotlib"} <= (
        not_in_the_api_image()
    )
    assert not {"httpx", "rich", "typer", "bentoml", "pandas"} & not_in_the_api_image()


def test_starting_the_cli_imports_no_extra(tmp_path: Path) -> None:
    """Not even httpx or rich (the API image has them through bentoml and typer)."""
    code = "import json, sys, pipelines.cli; print(json.dumps(sorted(sys.modules)))"
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, check=True
    )
    imported = {name.partition(".")[0] for name in json.loads(result.stdout)}
    assert imported.isdisjoint(EXTRA_MODULES)


def _keys(tmp_path: Path) -> dict[str, dict[str, str | None]]:
    records = json.loads((tmp_path / "keys" / "keys.json").read_text())["keys"]
    return {record["key_id"]: record for record in records}


def test_help_and_every_keys_command_run_without_the_extras(tmp_path: Path) -> None:
    help_text = _pokewatch(tmp_path, "--help")
    assert help_text.returncode == 0, help_text.stderr
    assert "Usage: pokewatch" in help_text.stdout
    assert "keys" in help_text.stdout

    created = _pokewatch(tmp_path, "keys", "create", "--name", "ci", "--scopes", "predict")
    assert created.returncode == 0, created.stderr
    (key_id,) = _keys(tmp_path)
    assert created.stdout.startswith("pw_")
    assert key_id in created.stdout

    listed = _pokewatch(tmp_path, "keys", "list")
    assert listed.returncode == 0, listed.stderr
    assert listed.stdout.split()[:4] == [key_id, "dev", "predict", "active"]

    rotated = _pokewatch(tmp_path, "keys", "rotate", key_id, "--overlap-days", "0")
    assert rotated.returncode == 0, rotated.stderr
    (new_id,) = set(_keys(tmp_path)) - {key_id}
    assert rotated.stdout.startswith("pw_")
    assert new_id in rotated.stdout

    revoked = _pokewatch(tmp_path, "keys", "revoke", new_id)
    assert revoked.returncode == 0, revoked.stderr
    assert _keys(tmp_path)[new_id]["revoked"] is not None

    dev = _pokewatch(tmp_path, "keys", "ensure-dev")  # no usable key left: makes one
    assert dev.returncode == 0, dev.stderr
    assert "Created a local development API key" in dev.stderr
    assert len(_keys(tmp_path)) == 3


@pytest.mark.parametrize(
    ("args", "extra", "module"),
    [
        (["collect"], "pipelines", "tenacity"),
        (["pipeline", "run"], "pipelines", "zenml"),
        (["train"], "train", "sklearn"),
        (["evaluate", "--report", "report"], "train", "matplotlib"),
    ],
)
def test_a_command_whose_extra_is_missing_says_so_in_one_line(
    tmp_path: Path, args: list[str], extra: str, module: str
) -> None:
    result = _pokewatch(tmp_path, *args)
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        f"error: `pokewatch {' '.join(args[:2] if args[0] == 'pipeline' else args[:1])}` "
        f"needs the {extra} extra (no module {module!r}): pip install 'pokewatch[{extra}]'"
    ]
    assert result.stdout == ""
    assert not (tmp_path / "report").exists()


def test_a_module_missing_for_another_reason_is_not_blamed_on_an_extra(tmp_path: Path) -> None:
    """A broken installation keeps its traceback."""
    env = serving_only_env(tmp_path / "site")
    env["POKEWATCH_TEST_NOT_INSTALLED"] += ",cryptography"
    result = _pokewatch(tmp_path, "alerts", "new-key", env=env)
    assert result.returncode == 1
    assert "ModuleNotFoundError: No module named 'cryptography'" in result.stderr
    assert "extra" not in result.stderr
