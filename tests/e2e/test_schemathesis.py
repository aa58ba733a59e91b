"""Property-based API testing from the served OpenAPI document (schemathesis)."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from service.keys import KeysFile, Scope
from tests.e2e.conftest import bentoml_serve

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

SCHEMATHESIS = Path(sys.executable).with_name("st")
CONFIG = Path(__file__).with_name("schemathesis.toml")
# Examples per operation in the fuzzing phase: 25 in `make test`, 200 in `make faults`.
EXAMPLES = os.environ.get("POKEWATCH_SCHEMATHESIS_EXAMPLES", "25")


def test_no_server_errors_or_schema_violations(model_tag: str) -> None:
    """Every check: no 5xx, answers match the documented schemas, bad input is rejected,
    valid input accepted, and requests without a valid key get 401."""
    key, _ = KeysFile(Path(os.environ["POKEWATCH_SECURITY__KEYS_FILE"])).create(
        "schemathesis", frozenset(Scope), "test"
    )
    # schemathesis sends many deliberately wrong keys: keep the brute-force guard out of it.
    env = {"POKEWATCH_SECURITY__RATE_LIMIT__AUTH_FAILURES_BURST": "100000"}
    with bentoml_serve("service:PokeWatch", env=env) as base:
        run = subprocess.run(
            [
                str(SCHEMATHESIS), "--config-file", str(CONFIG), "run", f"{base}/docs.json",
                "--header", f"X-API-Key: {key}",
                "--checks", "all",
                "--phases", "examples,coverage,fuzzing",
                "--max-examples", EXAMPLES,
                "--seed", "151",
                "--no-color",
            ],
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )  # fmt: skip
    assert run.returncode == 0, run.stdout[-6000:]
    assert "passed" in run.stdout
