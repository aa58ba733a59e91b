"""The API image's `pokewatch` (deploy/bento/install-pokewatch.sh) as the release smoke test
runs it: a key made in the image as its non-root user, read-only but for the keys directory,
and the one line of a command whose extra the image does not have."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.containers import engine
from tests.containers.test_images import API_USER

pytestmark = [pytest.mark.container, pytest.mark.timeout(3600)]


def _pokewatch(image: str, keys: Path, *args: str) -> tuple[int, str, str]:
    result = engine.podman(
        "run",
        "--rm",
        "--read-only",
        "--tmpfs",
        "/tmp",
        "--user",
        API_USER,
        "-v",
        f"{keys}:/keys",
        "-e",
        "POKEWATCH_SECURITY__KEYS_FILE=/keys/keys.json",
        image,
        "pokewatch",
        *args,
        check=False,
    )
    return result.returncode, result.stdout, result.stderr


def test_the_api_image_makes_keys_with_its_pokewatch(api_image: str, scratch: Path) -> None:
    keys = scratch / "cli-keys"
    keys.mkdir()
    keys.chmod(0o777)  # the image's user writes it
    code, raw, errors = _pokewatch(api_image, keys, "keys", "create", "--name", "smoke-test")
    assert code == 0, errors
    (record,) = json.loads((keys / "keys.json").read_text())["keys"]
    assert raw.startswith("pw_")
    assert record["key_id"] in raw
    code, listed, errors = _pokewatch(api_image, keys, "keys", "list")
    assert code == 0, errors
    assert record["key_id"] in listed
    code, _, errors = _pokewatch(api_image, keys, "collect")
    assert code == 1
    assert errors.splitlines() == [
        "error: `pokewatch collect` needs the pipelines extra (no module 'tenacity'): "
        "pip install 'pokewatch[pipelines]'"
    ]
