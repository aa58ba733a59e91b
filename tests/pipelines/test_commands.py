"""`pokewatch collect`, `backfill` and `schedule` end to end against local servers."""

from __future__ import annotations

import stat
from datetime import UTC, date, datetime
from pathlib import Path

import pandas as pd
import pytest
from pytest_httpserver import HTTPServer
from typer.testing import CliRunner

from pipelines.cli import app
from pipelines.collector import partition_path
from tests.pipelines import wire

runner = CliRunner()
DAY = date(2025, 11, 23)


def track_group(config: Path, server: HTTPServer, selection: str) -> None:
    with config.open("a") as stream:
        stream.write(
            f"""
sources:
  tcgcsv:
    base_url: {server.url_for("")}
  retry:
    attempts: 2
    initial_wait_seconds: 0.01
    max_wait_seconds: 0.02
tracked_items:
  tcgcsv:
    - group: {wire.GROUP}
      {selection}
"""
        )


def serve_products(server: HTTPServer) -> None:
    server.expect_request(f"/tcgplayer/3/{wire.GROUP}/products").respond_with_json(
        wire.envelope(wire.PRODUCTS)
    )


def test_collect_today_writes_the_partition_and_quarantine(
    httpserver: HTTPServer, write_config: Path, tmp_path: Path
) -> None:
    track_group(write_config, httpserver, "top: 10")
    serve_products(httpserver)
    httpserver.expect_request(f"/tcgplayer/3/{wire.GROUP}/prices").respond_with_json(
        wire.envelope(wire.PRICES)
    )
    result = runner.invoke(app, ["collect", "--source", "tcgcsv"])
    assert result.exit_code == 0, result.output
    today = datetime.now(UTC).date()
    stored = pd.read_parquet(partition_path(tmp_path / "raw", "tcgcsv", today))
    assert len(stored) == 4  # the null-priced printing is not among the top by price
    assert "4 valid rows" in result.output


def test_collect_exits_1_when_nothing_valid(
    httpserver: HTTPServer, write_config: Path, tmp_path: Path
) -> None:
    track_group(write_config, httpserver, "items: [tcg-654596-reverse-holofoil]")
    serve_products(httpserver)
    httpserver.expect_request(f"/tcgplayer/3/{wire.GROUP}/prices").respond_with_json(
        wire.envelope(wire.PRICES)
    )
    result = runner.invoke(app, ["collect"])
    assert result.exit_code == 1
    assert "nothing valid was collected" in result.output
    assert "1 quarantined (missing market_price: 1)" in result.output
    assert not (tmp_path / "raw").exists()


def test_collect_exits_1_when_the_source_fails(httpserver: HTTPServer, write_config: Path) -> None:
    track_group(write_config, httpserver, "top: 1")
    httpserver.expect_request(f"/tcgplayer/3/{wire.GROUP}/prices").respond_with_data("", status=500)
    result = runner.invoke(app, ["collect"])
    assert result.exit_code == 1
    assert "answered 500" in result.output


def test_backfill_from_archive_files_and_a_downloaded_range(
    httpserver: HTTPServer, write_config: Path, tmp_path: Path
) -> None:
    track_group(write_config, httpserver, "items: [tcg-654594, tcg-654595-reverse-holofoil]")
    serve_products(httpserver)
    given = wire.write_archive(tmp_path / "given", DAY, {wire.GROUP: wire.PRICES})
    served = wire.write_archive(
        tmp_path / "served",
        date(2025, 11, 24),
        {wire.GROUP: [wire.price(654594, 260.0)], wire.OTHER_GROUP: [wire.price(1, 3.0)]},
    )
    httpserver.expect_oneshot_request(f"/archive/tcgplayer/{served.name}").respond_with_data(
        served.read_bytes(), content_type="application/x-7z-compressed"
    )
    arguments = ["backfill", "--archive", str(given), "--from", "2025-11-24"]
    result = runner.invoke(app, arguments)
    assert result.exit_code == 0, result.output

    raw = tmp_path / "raw"
    first = pd.read_parquet(partition_path(raw, "tcgcsv", DAY))
    assert first["item_id"].tolist() == ["tcg-654594", "tcg-654595-reverse-holofoil"]
    assert first["name"].tolist() == ["Charizard ex", "Pikachu"]
    second = pd.read_parquet(partition_path(raw, "tcgcsv", date(2025, 11, 24)))
    assert second["market_price"].tolist() == [260.0]
    # Downloaded archives are kept, so a second backfill of the day asks nothing.
    assert (tmp_path / "archives" / served.name).is_file()
    again = runner.invoke(app, arguments)
    assert again.exit_code == 0, again.output


def test_backfill_refuses_a_broken_archive(write_config: Path, tmp_path: Path) -> None:
    broken = tmp_path / "prices-2025-11-23.ppmd.7z"
    broken.write_bytes(b"not 7z")
    with write_config.open("a") as stream:
        stream.write("tracked_items:\n  tcgcsv:\n    - {group: 1, top: 1}\n")
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


def test_schedule_install_status_remove(fake_crontab: Path) -> None:
    assert runner.invoke(app, ["schedule", "status"]).exit_code == 1
    for _ in range(2):  # installing twice keeps one entry
        assert runner.invoke(app, ["schedule", "install", "--hour", "4"]).exit_code == 0
    table = fake_crontab.read_text()
    assert table.startswith("MAILTO=me@example.org\n")
    assert table.count("# BEGIN pokewatch-schedule") == 1
    (entry,) = [line for line in table.splitlines() if line.startswith("0 4 * * *")]
    assert "pokewatch collect >> " in entry
    assert "pipeline run --config " in entry
    assert entry.endswith("2>&1")
    status = runner.invoke(app, ["schedule", "status"])
    assert status.exit_code == 0
    assert "0 4 * * *" in status.output

    assert runner.invoke(app, ["schedule", "remove"]).exit_code == 0
    assert fake_crontab.read_text() == "MAILTO=me@example.org\n"
