"""Every atheris target of `tests.faults.fuzz` for a bounded number of inputs
(`POKEWATCH_FUZZ_RUNS`, 5,000 in `make test`; `make faults` runs 300,000)."""

import os
import subprocess
import sys

import pytest

from tests.faults.fuzz import TARGETS

RUNS = int(os.environ.get("POKEWATCH_FUZZ_RUNS", "5000"))


@pytest.mark.parametrize("target", sorted(TARGETS))
def test_fuzz_target_finds_nothing(target: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "tests.faults.fuzz", target, f"-runs={RUNS}", "-seed=151"],
        capture_output=True,
        text=True,
        timeout=1800,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    assert f"Done {RUNS} runs" in done.stderr
