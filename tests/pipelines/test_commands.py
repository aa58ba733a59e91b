"""`pokewatch collect`, `daily`, `score`, `backfill` and `schedule` against local servers and
local dumps."""

from __future__ import annotations

import shutil
import stat
from datetime import date
from pathlib import Path

import pandas as pd
import pytest
from pytest_httpserver import HTTPServer
from typer.testing import CliRunner

from pipelines.cli import app
from pipelines.collector import partition_path, read_collected
from tests.pipelines.conftest import private_store
from tests.pipelines.fake_tcgcsv import FIXTURES, GROUPS, FakeTcgcsv, fixture_days, status

runner = CliRunner()
DAY = date(2026, 11, 29)  # after the bundled sample's last day (2025-11-29)
NEXT_DAY = date(2026, 11, 30)


def track(config: Path, fake: FakeTcgcsv | None, selections: str) -> None:
    base_url = fake.url if fake else "http://127.0.0.1:9"  # nothing listens on port 9
    with config.open("a") as stream:
        stream.write(
            f"""
sources:
  tcgcsv:
    base_url: {base_url}
    timeout_seconds: 2
  retry:
    attempts: 2
    initial_wait_seconds: 0.01
    max_wait_seconds: 0.02
tracked_items:
  tcgcsv:
{selections}
"""
        )


@pytest.fixture
def fake(httpserver: HTTPServer) -> FakeTcgcsv:
    return FakeTcgcsv(httpserver, DAY)


def test_collect_writes_the_day_tcgcsv_is_at_and_quarantines(
    fake: FakeTcgcsv, write_config: Path, tmp_path: Path
) -> None:
    track(write_config, fake, f"    - group: {GROUPS[0]}")
    result = runner.invoke(app, ["collect", "--source", "tcgcsv"])
    assert result.exit_code == 0, result.output
    stored = pd.read_parquet(partition_path(tmp_path / "raw", "tcgcsv", DAY))
    served = fake.prices_of(GROUPS[0])
    priced = [price for price in served if price["marketPrice"] is not None]
    assert len(stored) == len(priced)
    assert f"{len(priced)} valid rows" in result.output
    unpriced = len(served) - len(priced)
    if unpriced:
        assert f"{unpriced} quarantined (missing market_price: {unpriced})" in result.output


def test_collect_exits_1_when_nothing_valid(
    fake: FakeTcgcsv, write_config: Path, tmp_path: Path
) -> None:
    track(write_config, fake, f"    - {{group: {GROUPS[0]}, items: [tcg-1-reverse-holofoil]}}")
    result = runner.invoke(app, ["collect"])
    assert result.exit_code == 1
    assert "nothing valid was collected" in result.output
    assert not (tmp_path / "raw").exists()


def test_collect_exits_1_when_the_source_fails(fake: FakeTcgcsv, write_config: Path) -> None:
    track(write_config, fake, f"    - {{group: {GROUPS[0]}, top: 1}}")
    fake.fail("/last-updated.txt", status(500), status(500))
    result = runner.invoke(app, ["collect"])
    assert result.exit_code == 1
    assert "answered 500" in result.output


def test_daily_collects_scores_publishes_and_records(
    fake: FakeTcgcsv, write_config: Path, tmp_path: Path
) -> None:
    """A first run on an empty store trains a model, then publishes the collected day."""
    track(write_config, fake, f"    - group: {GROUPS[0]}")
    first = runner.invoke(app, ["daily"])
    assert first.exit_code == 0, first.output
    assert "trained a first production model" in first.output
    store = private_store(tmp_path)
    model = store.registry.newest_production()
    assert model is not None
    publication = store.publications.newest(model.tag)
    assert publication is not None
    assert publication.data_as_of == DAY
    assert f"published {publication.id}" in first.output
    table = store.publications.load(publication)
    assert table.predictions["date"].max() == pd.Timestamp(DAY)
    jobs = store.jobs.read()
    assert {"collect", "score", "daily"} <= set(jobs)
    assert all(jobs[job].last_success is not None for job in ("collect", "score", "daily"))

    # The same day again: nothing fetched twice, nothing published twice.
    again = runner.invoke(app, ["daily", "--date", DAY.isoformat()])
    assert again.exit_code == 0, again.output
    assert f"unchanged, still serving {publication.id}" in again.output
    assert fake.requests[f"/tcgplayer/3/{GROUPS[0]}/prices"] == 1
    assert len(store.publications.all(model.tag)) == 1
    collected = read_collected(tmp_path / "raw")
    assert not collected.duplicated(["item_id", "date"]).any()

    # The next day reaches a new publication.
    fake.publish(NEXT_DAY, fixture_days()[1])
    second = runner.invoke(app, ["daily"])
    assert second.exit_code == 0, second.output
    newest = store.publications.newest(model.tag)
    assert newest is not None
    assert newest.data_as_of == NEXT_DAY


def test_daily_exits_1_when_nothing_could_be_collected(
    fake: FakeTcgcsv, write_config: Path, tmp_path: Path
) -> None:
    track(write_config, fake, f"    - group: {GROUPS[0]}")
    fake.fail("/last-updated.txt", *[status(503)] * 2)
    result = runner.invoke(app, ["daily"])
    assert result.exit_code == 1
    assert "nothing was collected" in result.output
    jobs = private_store(tmp_path).jobs.read()
    assert jobs["collect"].last_failure is not None
    assert jobs["daily"].last_failure is not None
    assert jobs["daily"].last_success is None


def test_score_needs_a_production_model(write_config: Path, tmp_path: Path) -> None:
    result = runner.invoke(app, ["score"])
    assert result.exit_code == 1
    assert "no usable production model" in result.output
    assert private_store(tmp_path).jobs.read()["score"].last_failure is not None


def test_backfill_imports_local_archives_and_dumps_offline(
    write_config: Path, tmp_path: Path
) -> None:
    """No server at all: the archive and the dump are read locally, names are placeholders."""
    track(write_config, None, "    - group: all")
    archive = FIXTURES / "prices-2025-09-23.ppmd.7z"
    result = runner.invoke(
        app, ["backfill", "--archive", str(archive), "--dump", str(FIXTURES / "dump")]
    )
    assert result.exit_code == 0, result.output
    raw = tmp_path / "raw"
    days = sorted(pd.to_datetime(read_collected(raw)["date"]).dt.date.unique())
    assert days == [date(2025, 9, 21), date(2025, 9, 22), date(2025, 9, 23)]
    expected = pd.read_parquet(FIXTURES / "singles.parquet")
    expected = expected[expected["date"] == date(2025, 9, 23)].dropna(subset=["market_price"])
    day = pd.read_parquet(partition_path(raw, "tcgcsv", date(2025, 9, 23)))
    assert len(day) == len(expected)  # both groups; the other category's file is skipped
    assert day["name"].str.startswith("TCGplayer product ").all()
    assert sorted(day["set_code"].unique()) == sorted(str(group) for group in GROUPS)
    # Importing again adds nothing twice.
    again = runner.invoke(app, ["backfill", "--dump", str(FIXTURES / "dump")])
    assert again.exit_code == 0, again.output
    collected = read_collected(raw)
    assert not collected.duplicated(["item_id", "date"]).any()


def test_backfill_of_one_day_directory(write_config: Path, tmp_path: Path) -> None:
    track(write_config, None, f"    - {{group: {GROUPS[1]}, top: 3}}")
    day_directory = tmp_path / "copy" / "2025-09-22"
    shutil.copytree(FIXTURES / "dump" / "2025-09-22", day_directory)
    result = runner.invoke(app, ["backfill", "--dump", str(day_directory)])
    assert result.exit_code == 0, result.output
    assert len(pd.read_parquet(partition_path(tmp_path / "raw", "tcgcsv", date(2025, 9, 22)))) == 3


def test_backfill_download_says_the_archive_is_gone(
    fake: FakeTcgcsv, write_config: Path, tmp_path: Path
) -> None:
    track(write_config, fake, f"    - group: {GROUPS[0]}")
    result = runner.invoke(app, ["backfill", "--from", "2025-09-01"])
    assert result.exit_code == 1
    assert "archive of past days answers 403" in result.output
    assert "--archive" in result.output
    assert "--dump" in result.output
    assert fake.requests["/archive/tcgplayer/prices-2025-09-01.ppmd.7z"] == 1  # no retries
    assert not (tmp_path / "raw").exists()


def test_backfill_refuses_a_broken_archive(write_config: Path, tmp_path: Path) -> None:
    broken = tmp_path / "prices-2025-11-23.ppmd.7z"
    broken.write_bytes(b"not 7z")
    track(write_config, None, "    - {group: 1, top: 1}")
    result = runner.invoke(app, ["backfill", "--archive", str(broken)])
    assert result.exit_code == 1
    assert "not a readable 7z archive" in result.output


@pytest.fixture
def fake_crontab(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A `crontab` that keeps the table in a file (-l prints it, - replaces it)."""
    table = tmp_path / "crontab.txt"
    table.write_text("MAILTO=me@example.org\n")
    script = tmp_path / "crontab"
    script.write_text(
        f"""#!/bin/sh
if [ "$1" = "-l" ]; then cat {table}; else cat > {table}; fi
"""
    )
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("POKEWATCH_CRONTAB", str(script))
    return table


def test_schedule_install_status_remove(
    fake_crontab: Path, write_config: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("POKEWATCH_SCHEDULE__DAILY", "30 4 * * *")
    assert runner.invoke(app, ["schedule", "status"]).exit_code == 1
    for _ in range(2):  # installing twice keeps one block
        assert runner.invoke(app, ["schedule", "install"]).exit_code == 0
    table = fake_crontab.read_text()
    assert table.startswith("MAILTO=me@example.org\n")
    assert table.count("# BEGIN pokewatch-schedule") == 1
    assert "CRON_TZ=UTC" in table
    (daily,) = [line for line in table.splitlines() if line.startswith("30 4 * * *")]
    assert daily.endswith("pokewatch daily >> " + daily.split(">> ")[1])
    (retrain,) = [line for line in table.splitlines() if line.startswith("0 4 * * 0")]
    assert "pokewatch pipeline run --config " in retrain
    assert retrain.endswith("2>&1")
    status_result = runner.invoke(app, ["schedule", "status"])
    assert status_result.exit_code == 0
    assert "30 4 * * *" in status_result.output

    assert runner.invoke(app, ["schedule", "remove"]).exit_code == 0
    assert fake_crontab.read_text() == "MAILTO=me@example.org\n"


def test_a_bad_cron_expression_is_a_clear_configuration_error(
    write_config: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("POKEWATCH_SCHEDULE__RETRAIN", "every sunday")
    result = runner.invoke(app, ["schedule", "install"])
    assert result.exit_code == 2
    assert "schedule.retrain" in result.output
    assert "is not a cron expression" in result.output
