"""A full disk or a write error during collect, score and key creation, on the real
`pokewatch` command: a clear one-line error (exit 1, no traceback), the previous data
intact, nothing half-written, and a rerun with room succeeds.

The writes fail through a file size limit (`RLIMIT_FSIZE`, what `ulimit -f` sets: Python
ignores SIGXFSZ, so a write past it fails with EFBIG) set on the child process only.
"""

import os
import resource
import subprocess
import sys
from datetime import date, timedelta
from pathlib import Path

import pandas as pd
import pytest

from model.data import load_prices
from model.settings import ModelSettings
from model.training import train
from pipelines.collector import partition_path
from service.keys import KeysFile, Scope
from service.store import Stage, Store
from tests.pipelines.conftest import private_store, write_config  # noqa: F401 (fixture)
from tests.pipelines.fake_tcgcsv import GROUPS, FakeTcgcsv, fixture_days

pytestmark = [pytest.mark.slow]

POKEWATCH = Path(sys.executable).with_name("pokewatch")
FIRST_DAY = date(2026, 11, 1)


def run(args: list[str], env: dict[str, str], max_file_bytes: int | None = None) -> tuple[int, str]:
    def limit() -> None:
        if max_file_bytes is not None:
            resource.setrlimit(resource.RLIMIT_FSIZE, (max_file_bytes, max_file_bytes))

    finished = subprocess.run(
        [str(POKEWATCH), *args],
        # Python's own bytecode cache would be written under the limit too (and torn).
        env={**env, "PYTHONDONTWRITEBYTECODE": "1"},
        preexec_fn=limit,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    return finished.returncode, finished.stderr


def assert_clear_failure(code: int, errors: str) -> None:
    assert code == 1, errors
    assert "Traceback" not in errors, errors
    assert "File too large" in errors, errors
    assert "the previous data is intact" in errors


def test_key_creation_on_a_full_disk(tmp_path: Path) -> None:
    keys = KeysFile(tmp_path / "keys.json")
    keys.create("existing", frozenset(Scope), "dev")
    before = keys.path.read_bytes()
    env = {"POKEWATCH_SECURITY__KEYS_FILE": str(keys.path), "PATH": "/usr/bin:/bin"}
    code, errors = run(["keys", "create", "--name", "new"], env, max_file_bytes=len(before))
    assert_clear_failure(code, errors)
    assert keys.path.read_bytes() == before
    assert sorted(path.name for path in tmp_path.iterdir()) == [".keys.json.lock", "keys.json"]
    code, errors = run(["keys", "create", "--name", "new"], env)
    assert code == 0, errors
    assert [record.name for record in keys.read().keys] == ["existing", "new"]


@pytest.fixture
def daily_env(
    write_config: Path,  # noqa: F811 (the fixture imported above)
    tmp_path: Path,
    threaded_server: object,
) -> tuple[dict[str, str], FakeTcgcsv, Store]:
    fake = FakeTcgcsv(threaded_server)  # type: ignore[arg-type]
    with write_config.open("a") as stream:
        stream.write(
            f"sources:\n  tcgcsv:\n    base_url: {fake.url}\n"
            "tracked_items:\n  tcgcsv:\n" + "".join(f"    - group: {group}\n" for group in GROUPS)
        )
    store = private_store(tmp_path)
    store.registry.save(
        train(load_prices().valid, ModelSettings(strategy="last")).trained, Stage.PRODUCTION
    )
    return {**os.environ, "POKEWATCH_CONFIG": str(write_config)}, fake, store


def snapshot(root: Path) -> dict[str, bytes]:
    """Every visible file under `root` (what must be intact)."""
    return {
        str(path.relative_to(root)): path.read_bytes()
        for path in sorted(root.rglob("*"))
        if path.is_file() and not any(part.startswith(".") for part in path.relative_to(root).parts)
    }


@pytest.mark.faults
@pytest.mark.parametrize("phase", ["collect", "score"])
def test_the_daily_job_on_a_full_disk(
    daily_env: tuple[dict[str, str], FakeTcgcsv, Store], tmp_path: Path, phase: str
) -> None:
    env, fake, store = daily_env
    days = fixture_days()
    fake.publish(FIRST_DAY, days[0])
    code, errors = run(["daily"], env)
    assert code == 0, errors
    partition = partition_path(tmp_path / "raw", "tcgcsv", FIRST_DAY)
    model = store.registry.newest_production()
    assert model is not None
    published = store.publications.newest(model.tag)
    assert published is not None
    biggest_published = max(path.stat().st_size for path in published.path.iterdir())
    # Collecting writes files up to the day's partition; scoring writes the bigger table.
    limit = partition.stat().st_size // 4 if phase == "collect" else 4 * partition.stat().st_size
    assert limit < biggest_published

    day = FIRST_DAY + timedelta(days=1)
    fake.publish(day, days[1])
    before = snapshot(tmp_path / "raw"), snapshot(tmp_path / "store")
    code, errors = run(["daily"], env, max_file_bytes=limit)
    assert_clear_failure(code, errors)
    after_raw = snapshot(tmp_path / "raw")
    if phase == "collect":
        assert after_raw == before[0]  # no new partition, the old ones as they were
    else:
        assert set(after_raw) > set(before[0])  # the day was collected...
        assert {k: after_raw[k] for k in before[0]} == before[0]
    newest = store.publications.newest(model.tag)
    assert newest is not None
    assert newest.id == published.id  # ...but not published: the previous answers stand
    assert store.publications.problems(newest) == []
    assert list((tmp_path / "store").rglob("*.partial")) == []
    temporary = [p for p in tmp_path.rglob(".*") if p.is_file() and not p.name.endswith(".lock")]
    assert temporary == []

    code, errors = run(["daily"], env)
    assert code == 0, errors
    rows = pd.read_parquet(partition_path(tmp_path / "raw", "tcgcsv", day))
    assert not rows.duplicated("item_id").any()
    newest = store.publications.newest(model.tag)
    assert newest is not None
    assert newest.data_as_of == day
