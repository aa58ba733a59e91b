"""The daily collection against a faulty TCGCSV: clear errors, nothing twice, nothing lost."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pandas as pd
import pytest
from pytest_httpserver import HTTPServer

from pipelines.catalogue import Catalogue
from pipelines.collector import collect, partition_path, read_collected
from pipelines.settings import TcgcsvSettings, TrackedTcgcsvSettings
from pipelines.sources import SourceError
from pipelines.sources.tcgcsv import TcgcsvClient, TcgcsvSource
from tests.pipelines.conftest import FAST_RETRY, Sleeps
from tests.pipelines.fake_tcgcsv import GROUPS, FakeTcgcsv, slow, status, truncated

DAY = date(2026, 11, 30)


@pytest.fixture
def fake(threaded_server: HTTPServer) -> FakeTcgcsv:
    """A slow answer does not hold up the retry: the server answers in parallel."""
    return FakeTcgcsv(threaded_server, DAY)


def source(fake: FakeTcgcsv, tmp_path: Path, sleeps: Sleeps, timeout: float = 5) -> TcgcsvSource:
    settings = TcgcsvSettings(base_url=fake.url, timeout_seconds=timeout)
    return TcgcsvSource(
        TcgcsvClient(settings, FAST_RETRY, sleep=sleeps),
        [TrackedTcgcsvSettings(group=group) for group in GROUPS],
        tmp_path / "cache",
        Catalogue(tmp_path / "catalogue.parquet"),
    )


def run(fake: FakeTcgcsv, tmp_path: Path, sleeps: Sleeps, timeout: float = 5) -> object:
    return collect(
        source(fake, tmp_path, sleeps, timeout), None, tmp_path / "raw", tmp_path / "quarantine"
    )


def stored(tmp_path: Path) -> pd.DataFrame:
    return pd.read_parquet(partition_path(tmp_path / "raw", "tcgcsv", DAY))


def priced(fake: FakeTcgcsv) -> int:
    return sum(
        price["marketPrice"] is not None for group in GROUPS for price in fake.prices_of(group)
    )


def test_429_with_retry_after_is_honoured(fake: FakeTcgcsv, tmp_path: Path, sleeps: Sleeps) -> None:
    path = f"/tcgplayer/3/{GROUPS[0]}/prices"
    fake.fail(path, status(429, retry_after="2"))
    run(fake, tmp_path, sleeps)
    assert sleeps == [2.0]
    assert len(stored(tmp_path)) == priced(fake)
    assert fake.requests[path] == 2


def test_5xx_then_success_and_a_group_that_keeps_failing(
    fake: FakeTcgcsv, tmp_path: Path, sleeps: Sleeps
) -> None:
    flaky, broken = (f"/tcgplayer/3/{group}/prices" for group in GROUPS)
    fake.fail(flaky, status(502))
    fake.fail(broken, *[status(503)] * 3)
    report = run(fake, tmp_path, sleeps)
    (failure,) = report.failures  # type: ignore[attr-defined]
    assert f"group {GROUPS[1]}" in failure
    assert "503" in failure
    first = stored(tmp_path)
    assert set(first["set_code"]) == {str(GROUPS[0])}
    # The rerun fetches only what is missing and adds the rest; nothing is stored twice.
    run(fake, tmp_path, sleeps)
    assert fake.requests[flaky] == 2  # one failure, one success: not fetched again
    assert fake.requests[broken] == 4
    again = stored(tmp_path)
    assert len(again) == priced(fake)
    assert not again.duplicated("item_id").any()
    pd.testing.assert_frame_equal(
        again[again["set_code"] == str(GROUPS[0])].reset_index(drop=True),
        first.reset_index(drop=True),
        check_dtype=False,
    )


def test_a_timeout_is_retried(fake: FakeTcgcsv, tmp_path: Path, sleeps: Sleeps) -> None:
    path = f"/tcgplayer/3/{GROUPS[0]}/products"
    fake.fail(path, slow(1.5))
    run(fake, tmp_path, sleeps, timeout=0.5)
    assert fake.requests[path] == 2
    assert not stored(tmp_path)["name"].str.startswith("TCGplayer product ").any()


def test_a_truncated_body_is_retried_then_reported(
    fake: FakeTcgcsv, tmp_path: Path, sleeps: Sleeps
) -> None:
    path = f"/tcgplayer/3/{GROUPS[0]}/prices"
    fake.fail(path, truncated())
    run(fake, tmp_path, sleeps)
    assert len(stored(tmp_path)) == priced(fake)

    other = tmp_path / "other"
    fake.fail(f"/tcgplayer/3/{GROUPS[1]}/prices", *[truncated()] * 3)
    report = run(fake, other, sleeps)
    (failure,) = report.failures  # type: ignore[attr-defined]
    assert "RemoteProtocolError" in failure


def test_a_failed_run_keeps_the_day_already_stored(
    fake: FakeTcgcsv, tmp_path: Path, sleeps: Sleeps
) -> None:
    run(fake, tmp_path, sleeps)
    before = stored(tmp_path)
    fake.fail("/last-updated.txt", *[status(500)] * 3)
    with pytest.raises(SourceError, match=r"last-updated\.txt answered 500"):
        run(fake, tmp_path, sleeps)
    pd.testing.assert_frame_equal(stored(tmp_path), before)
    assert len(read_collected(tmp_path / "raw")) == len(before)
