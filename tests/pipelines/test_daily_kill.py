"""`pokewatch daily` killed with SIGKILL at random points of collect and score.

A reference run measures how long collecting (from the day cache appearing to the day's
partition landing) and scoring (from then to the publication appearing) take; the trials
then run new days and kill each at a random moment of one phase (half of them while
collecting, half while scoring: the trial waits for the phase to begin, then for a random
part of its measured length), check that nothing is torn (every partition reads back
without duplicates, every visible publication verifies, the jobs file reads), rerun the
day and check that it completes with every row once. `POKEWATCH_KILL_TRIALS` sets the
number of trials (make faults runs 50; 2 by default, one in each phase).
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from datetime import date, timedelta
from pathlib import Path

import pandas as pd
import pytest
from pytest_httpserver import HTTPServer

from model.data import load_prices
from model.settings import ModelSettings
from model.training import train
from pipelines.collector import partition_path, read_collected
from service.store import Stage, Store
from tests.pipelines.conftest import private_store
from tests.pipelines.fake_tcgcsv import GROUPS, FakeTcgcsv, fixture_days

TRIALS = int(os.environ.get("POKEWATCH_KILL_TRIALS", "2"))
# A trial (a kill and its rerun) takes up to about 10 s on a loaded 2-core machine.
# In `make faults` (50 trials), not `make test`: its kills take half a minute even at 2.
pytestmark = [pytest.mark.faults, pytest.mark.slow, pytest.mark.timeout(max(300, 30 * TRIALS))]
FIRST_DAY = date(2026, 11, 1)
POKEWATCH = Path(sys.executable).with_name("pokewatch")


@pytest.fixture
def slow_tcgcsv(threaded_server: HTTPServer) -> FakeTcgcsv:
    """Each answer takes 300 ms, so collecting lasts long enough to be killed in."""
    fake = FakeTcgcsv(threaded_server)
    fake.delay_seconds = 0.3
    return fake


@pytest.fixture
def config(write_config: Path, tmp_path: Path, slow_tcgcsv: FakeTcgcsv) -> Path:
    """`write_config` tracking the fake's groups, with a production model in its store."""
    with write_config.open("a") as stream:
        stream.write(
            f"sources:\n  tcgcsv:\n    base_url: {slow_tcgcsv.url}\n"
            "tracked_items:\n  tcgcsv:\n" + "".join(f"    - group: {group}\n" for group in GROUPS)
        )
    store = private_store(tmp_path)
    model = ModelSettings(strategy="last")
    store.registry.save(train(load_prices().valid, model).trained, Stage.PRODUCTION)
    return write_config


def start_daily(config: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "POKEWATCH_CONFIG": str(config)}
    return subprocess.Popen(
        [str(POKEWATCH), "daily"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )


def phase(tmp_path: Path, store: Store, day: date) -> str:
    """How far a run of `day` got: before collecting, collecting, scoring, or published."""
    model = store.registry.newest_production()
    assert model is not None
    published = any(p.data_as_of == day for p in store.publications.all(model.tag))
    if published:
        return "published"
    if partition_path(tmp_path / "raw", "tcgcsv", day).is_file():
        return "scoring"
    if (tmp_path / "cache" / "tcgcsv" / "category=3" / day.isoformat()).is_dir():
        return "collecting"
    return "starting"


def assert_nothing_torn(tmp_path: Path, store: Store) -> None:
    for partition in (tmp_path / "raw").glob("source=*/date=*/part.parquet"):
        rows = pd.read_parquet(partition)
        assert not rows.duplicated("item_id").any(), partition
    model = store.registry.newest_production()
    assert model is not None
    folder = store.publications.root / model.tag.replace(":", "/")
    for entry in folder.iterdir() if folder.is_dir() else []:
        if not entry.name.startswith("."):
            (publication,) = [p for p in store.publications.all(model.tag) if p.path == entry]
            assert store.publications.problems(publication) == [], entry
    if store.jobs.path.exists():
        json.loads(store.jobs.path.read_text())


def test_sigkill_anywhere_in_collect_or_score_tears_nothing(
    config: Path, tmp_path: Path, slow_tcgcsv: FakeTcgcsv
) -> None:
    store = private_store(tmp_path)
    days = fixture_days()

    # Reference run: when collecting starts, when the partition lands, when it is published.
    slow_tcgcsv.publish(FIRST_DAY, days[0])
    started = time.monotonic()
    process = start_daily(config)
    marks: dict[str, float] = {}
    while process.poll() is None:
        marks.setdefault(phase(tmp_path, store, FIRST_DAY), time.monotonic() - started)
        time.sleep(0.02)
    assert process.returncode == 0, process.stderr.read().decode() if process.stderr else ""
    marks.setdefault("published", time.monotonic() - started)
    lengths = {
        "collecting": marks["scoring"] - marks["collecting"],
        "scoring": marks["published"] - marks["scoring"],
    }

    rng = random.Random(151)
    killed_in: Counter[str] = Counter()
    for trial in range(1, TRIALS + 1):
        day = FIRST_DAY + timedelta(days=trial)
        slow_tcgcsv.publish(day, days[trial % len(days)])
        process = start_daily(config)
        target = ("collecting", "scoring")[trial % 2]
        while phase(tmp_path, store, day) == "starting" or (
            target == "scoring" and phase(tmp_path, store, day) == "collecting"
        ):
            time.sleep(0.01)
        time.sleep(rng.uniform(0, lengths[target]))
        killed_in[phase(tmp_path, store, day)] += 1
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        assert_nothing_torn(tmp_path, store)

        rerun = start_daily(config)
        _, errors = rerun.communicate(timeout=120)
        assert rerun.returncode == 0, errors.decode()
        assert_nothing_torn(tmp_path, store)
        stored = pd.read_parquet(partition_path(tmp_path / "raw", "tcgcsv", day))
        served = [p for g in GROUPS for p in slow_tcgcsv.prices_of(g) if p["marketPrice"]]
        assert len(stored) == len(served)
        assert phase(tmp_path, store, day) == "published"

    collected = read_collected(tmp_path / "raw")
    assert not collected.duplicated(["item_id", "date"]).any()
    print(f"phase lengths {lengths} s; killed while {dict(killed_in)}")
    if TRIALS >= 4:
        assert killed_in["collecting"] >= 1, killed_in
        assert killed_in["scoring"] >= 1, killed_in
