"""TCGCSV and PokemonPriceTracker clients against a local server speaking their formats."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

import pandas as pd
import pytest
from pytest_httpserver import HTTPServer

from pipelines.catalogue import Catalogue
from pipelines.settings import (
    PokemonPriceTrackerSettings,
    TcgcsvSettings,
    TrackedPokemonPriceTrackerSettings,
    TrackedTcgcsvSettings,
)
from pipelines.sources import SourceError
from pipelines.sources.pokemonpricetracker import (
    BudgetExhaustedError,
    CallBudget,
    PokemonPriceTrackerClient,
    PokemonPriceTrackerSource,
    parse_price_history,
)
from pipelines.sources.tcgcsv import TcgcsvClient, TcgcsvSource, parse_last_updated
from tests.pipelines import wire
from tests.pipelines.conftest import FAST_RETRY, Sleeps
from tests.pipelines.fake_tcgcsv import (
    GROUPS,
    FakeTcgcsv,
    envelope,
    fixture_days,
    json_response,
    product_name,
    status,
)

TODAY = date(2025, 11, 29)
DAY = date(2025, 10, 1)
NEXT_DAY = date(2025, 10, 2)
GROUP = GROUPS[0]
SV2A = "69039c463cf9e889df7dca2c"  # pragma: allowlist secret (the vendor's set id)


def tcgcsv_source(
    fake: FakeTcgcsv, tmp_path: Path, sleeps: Sleeps, *selections: TrackedTcgcsvSettings
) -> TcgcsvSource:
    client = TcgcsvClient(TcgcsvSettings(base_url=fake.url), FAST_RETRY, sleep=sleeps)
    return TcgcsvSource(
        client, list(selections), tmp_path / "cache", Catalogue(tmp_path / "catalogue.parquet")
    )


@pytest.fixture
def fake(httpserver: HTTPServer) -> FakeTcgcsv:
    return FakeTcgcsv(httpserver, DAY)


def test_the_day_is_tcgcsv_s_own_and_each_file_is_fetched_once_a_day(
    fake: FakeTcgcsv, tmp_path: Path, sleeps: Sleeps
) -> None:
    source = tcgcsv_source(fake, tmp_path, sleeps, TrackedTcgcsvSettings(group=GROUP, top=3))
    first = source.fetch(None)
    assert first.day == DAY  # the UTC date of last-updated.txt
    assert len(first.rows) == 3
    assert first.rows["date"].eq(pd.Timestamp(DAY)).all()
    assert first.rows["market_price"].is_monotonic_decreasing
    again = source.fetch(DAY)  # a rerun of the day: everything from the day cache
    pd.testing.assert_frame_equal(again.rows, first.rows)
    assert "from the day cache" in again.note
    assert fake.requests[f"/tcgplayer/3/{GROUP}/prices"] == 1
    assert fake.requests[f"/tcgplayer/3/{GROUP}/products"] == 1
    assert fake.requests["/last-updated.txt"] == 2  # the one small request each run makes


def test_a_past_day_comes_from_the_day_cache_or_not_at_all(
    fake: FakeTcgcsv, tmp_path: Path, sleeps: Sleeps
) -> None:
    source = tcgcsv_source(fake, tmp_path, sleeps, TrackedTcgcsvSettings(group=GROUP))
    collected = source.fetch(None).rows
    fake.publish(NEXT_DAY, fixture_days()[1])
    cached = source.fetch(DAY)  # the source moved on; the day is still in the cache
    pd.testing.assert_frame_equal(cached.rows, collected)
    with pytest.raises(SourceError, match=r"as of 2025-10-02 .* not 2025-09-15.*backfill"):
        source.fetch(date(2025, 9, 15))


def test_whole_groups_and_all_groups(fake: FakeTcgcsv, tmp_path: Path, sleeps: Sleeps) -> None:
    whole = tcgcsv_source(fake, tmp_path, sleeps, TrackedTcgcsvSettings(group=GROUP)).fetch(None)
    served = fake.prices_of(GROUP)
    assert len(whole.rows) == len(served)  # every printing, priced or not
    assert whole.rows["market_price"].isna().sum() == sum(p["marketPrice"] is None for p in served)
    everything = tcgcsv_source(
        fake, tmp_path / "all", sleeps, TrackedTcgcsvSettings(group="all", top=2)
    ).fetch(None)
    assert sorted(everything.rows["set_code"].unique()) == sorted(str(g) for g in GROUPS)
    assert everything.rows.groupby("set_code").size().tolist() == [2, 2]
    assert fake.requests["/tcgplayer/3/groups"] == 1


def test_listing_prices_are_kept_and_high_price_never_ranks(
    fake: FakeTcgcsv, tmp_path: Path, sleeps: Sleeps
) -> None:
    parked = {
        "productId": 999001,
        "subTypeName": "Normal",
        "marketPrice": 1.0,
        "lowPrice": 0.5,
        "midPrice": 2.0,
        "highPrice": 999.0,
        "directLowPrice": 0.9,
    }
    fake.publish(DAY, extra={GROUP: [parked]})
    source = tcgcsv_source(fake, tmp_path, sleeps, TrackedTcgcsvSettings(group=GROUP, top=1))
    (top,) = source.fetch(None).rows.to_dict(orient="records")
    assert top["item_id"] != "tcg-999001"  # ranked by market price, not the parked 999
    whole = tcgcsv_source(fake, tmp_path / "b", sleeps, TrackedTcgcsvSettings(group=GROUP)).fetch(
        None
    )
    row = whole.rows.set_index("item_id").loc["tcg-999001"]
    assert (row["market_price"], row["high_price"], row["direct_low_price"]) == (1.0, 999.0, 0.9)


def test_names_are_metadata_a_price_is_never_lost_for_one(
    fake: FakeTcgcsv, tmp_path: Path, sleeps: Sleeps
) -> None:
    fake.fail(f"/tcgplayer/3/{GROUP}/products", status(500), status(500), status(500))
    source = tcgcsv_source(fake, tmp_path, sleeps, TrackedTcgcsvSettings(group=GROUP, top=2))
    snapshot = source.fetch(None)
    assert len(snapshot.rows) == 2
    assert snapshot.rows["name"].str.startswith("TCGplayer product ").all()
    assert "names not fetched" in snapshot.note
    assert snapshot.failures == ()
    # The next run of the day fetches the products it still lacks; the catalogue knows them.
    source.fetch(None)
    known = Catalogue(tmp_path / "catalogue.parquet").read()
    product = snapshot.rows.iloc[0]["tcgplayer_id"]
    assert known.loc[product, "name"] == product_name(GROUP, int(product))


def test_a_failing_group_does_not_lose_the_others(
    fake: FakeTcgcsv, tmp_path: Path, sleeps: Sleeps
) -> None:
    other = GROUPS[1]
    fake.fail(f"/tcgplayer/3/{other}/prices", *[status(502)] * 3)
    source = tcgcsv_source(
        fake,
        tmp_path,
        sleeps,
        TrackedTcgcsvSettings(group=GROUP),
        TrackedTcgcsvSettings(group=other),
    )
    snapshot = source.fetch(None)
    assert set(snapshot.rows["set_code"]) == {str(GROUP)}
    (failure,) = snapshot.failures
    assert f"group {other}" in failure
    assert "502" in failure


def test_tcgcsv_object_where_a_list_was_expected(
    fake: FakeTcgcsv, tmp_path: Path, sleeps: Sleeps
) -> None:
    fake.fail(
        f"/tcgplayer/3/{GROUP}/prices",
        lambda _: json_response({"success": True, "errors": [], "results": {"productId": 1}}),
    )
    snapshot = tcgcsv_source(fake, tmp_path, sleeps, TrackedTcgcsvSettings(group=GROUP)).fetch(None)
    assert "expected `results` to be a list, got dict" in snapshot.failures[0]
    # Nothing unusable was cached: the next run fetches the day's file again.
    assert not (
        tmp_path / "cache" / "tcgcsv" / "category=3" / DAY.isoformat() / str(GROUP)
    ).exists()


def test_tcgcsv_rows_of_the_wrong_shape(fake: FakeTcgcsv, tmp_path: Path, sleeps: Sleeps) -> None:
    fake.fail(
        f"/tcgplayer/3/{GROUP}/prices",
        lambda _: json_response(envelope([{"productId": "not a number", "subTypeName": "Normal"}])),
    )
    snapshot = tcgcsv_source(fake, tmp_path, sleeps, TrackedTcgcsvSettings(group=GROUP)).fetch(None)
    assert "unexpected TcgcsvPrice rows" in snapshot.failures[0]


def test_last_updated_is_parsed_in_tcgcsv_s_format() -> None:
    assert parse_last_updated("2025-09-02T20:10:03+0000") == datetime(
        2025, 9, 2, 20, 10, 3, tzinfo=UTC
    )
    with pytest.raises(SourceError, match="is not a timestamp"):
        parse_last_updated("<html>")


def ppt_client(
    server: HTTPServer, sleeps: Sleeps, budget_file: Path, budget: int = 10
) -> PokemonPriceTrackerClient:
    settings = PokemonPriceTrackerSettings(base_url=server.url_for("/api/v2"))
    return PokemonPriceTrackerClient(
        settings,
        FAST_RETRY,
        CallBudget(budget, budget_file, today=lambda: TODAY),
        api_key="test-key",  # pragma: allowlist secret
        sleep=sleeps,
    )


SET_CARDS = [
    wire.ppt_card("Charizard ex", "201/165", 253.55, 566544),
    wire.ppt_card("Mew ex", "205/165", 80.0, 566548),
    wire.ppt_card("Alakazam ex", "203/165", 50.43, 566546),
]


def test_ppt_set_wide_top_n_with_bearer_key(
    httpserver: HTTPServer, sleeps: Sleeps, tmp_path: Path
) -> None:
    httpserver.expect_request(
        "/api/v2/cards",
        headers={"Authorization": "Bearer test-key"},
        query_string={
            "setId": SV2A,
            "language": "japanese",
            "fetchAllInSet": "true",
            "includeHistory": "false",
        },
    ).respond_with_json({"data": SET_CARDS})
    selection = TrackedPokemonPriceTrackerSettings(
        set_id=SV2A, set_slug="sv2a_151", language="japanese", top=2
    )
    source = PokemonPriceTrackerSource(
        ppt_client(httpserver, sleeps, tmp_path / "budget.json"), [selection], today=lambda: TODAY
    )
    snapshot = source.fetch(None)
    assert snapshot.day == TODAY
    assert snapshot.note == "1 of 10 calls spent today"
    rows = snapshot.rows
    assert rows["item_id"].tolist() == [
        "sv2a_151_charizard_ex___201_165",
        "sv2a_151_mew_ex___205_165",
    ]
    assert rows["market_price"].tolist() == [253.55, 80.0]
    assert rows.iloc[0]["tcgplayer_id"] == "566544"
    assert rows.iloc[0]["set_code"] == "sv2a"


@pytest.mark.parametrize(
    "history",
    [
        {"2025-11-23": 246.34, "2025-11-24": 250.0},
        [{"date": "2025-11-23T00:00:00Z", "price": 246.34}, {"date": "2025-11-24", "price": 250}],
    ],
    ids=["mapping", "list"],
)
def test_ppt_per_card_history_in_both_shapes(
    httpserver: HTTPServer, sleeps: Sleeps, history: object, tmp_path: Path
) -> None:
    card = wire.ppt_card("Charizard ex", "201/165", 253.55, 566544, history)
    httpserver.expect_request(
        "/api/v2/cards",
        query_string={"tcgPlayerId": "566544", "includeHistory": "true", "days": "7"},
    ).respond_with_json({"data": card})
    selection = TrackedPokemonPriceTrackerSettings(
        set_id=SV2A, set_slug="sv2a_151", tcgplayer_ids=["566544"]
    )
    source = PokemonPriceTrackerSource(
        ppt_client(httpserver, sleeps, tmp_path / "budget.json"), [selection], today=lambda: TODAY
    )
    assert source.fetch(date(2025, 11, 23)).rows["market_price"].tolist() == [246.34]


def test_ppt_unknown_history_shape_is_a_clear_error() -> None:
    with pytest.raises(SourceError, match="neither a mapping"):
        parse_price_history([246.34, 250.0], "card")
    with pytest.raises(SourceError, match="not a number"):
        parse_price_history({"2025-11-23": {"market": 1}}, "card")


def test_ppt_object_where_a_list_was_expected(
    httpserver: HTTPServer, sleeps: Sleeps, tmp_path: Path
) -> None:
    httpserver.expect_request("/api/v2/cards").respond_with_json({"data": SET_CARDS[0]})
    with pytest.raises(SourceError, match="expected `data` to be a list of cards, got dict"):
        ppt_client(httpserver, sleeps, tmp_path / "budget.json").set_cards(SV2A, "japanese", None)


def test_ppt_budget_is_per_utc_day_across_runs_and_counts_retries(
    httpserver: HTTPServer, sleeps: Sleeps, tmp_path: Path
) -> None:
    budget_file = tmp_path / "state" / "ppt-budget.json"
    httpserver.expect_request("/api/v2/cards").respond_with_data("", status=429)
    first_run = ppt_client(httpserver, sleeps, budget_file, budget=3)
    with pytest.raises(SourceError, match="429"):
        first_run.set_cards(SV2A, "japanese", None)  # 2 attempts of FAST_RETRY's 3... spent
    assert len(httpserver.log) == 3
    # A second run the same day starts from what the first spent.
    second_run = ppt_client(httpserver, sleeps, budget_file, budget=3)
    with pytest.raises(BudgetExhaustedError, match="budget of 3 per UTC day"):
        second_run.set_cards(SV2A, "japanese", None)
    assert len(httpserver.log) == 3
    # The next UTC day has a fresh budget.
    tomorrow = CallBudget(3, budget_file, today=lambda: date(2025, 11, 30))
    assert tomorrow.spent() == 0
    tomorrow.spend()
    assert tomorrow.spent() == 1


def test_ppt_keeps_the_cards_fetched_before_the_budget_ran_out(
    httpserver: HTTPServer, sleeps: Sleeps, tmp_path: Path
) -> None:
    for tcgplayer_id in ("566544", "566548"):
        httpserver.expect_request(
            "/api/v2/cards", query_string={"tcgPlayerId": tcgplayer_id, "includeHistory": "false"}
        ).respond_with_json({"data": SET_CARDS[0 if tcgplayer_id == "566544" else 1]})
    selection = TrackedPokemonPriceTrackerSettings(
        set_id=SV2A, set_slug="sv2a_151", tcgplayer_ids=["566544", "566548"]
    )
    client = ppt_client(httpserver, sleeps, tmp_path / "budget.json", budget=1)
    snapshot = PokemonPriceTrackerSource(client, [selection], today=lambda: TODAY).fetch(None)
    assert snapshot.rows["item_id"].tolist() == ["sv2a_151_charizard_ex___201_165"]
    assert "budget of 1 per UTC day is spent" in snapshot.failures[0]


def test_ppt_needs_a_key_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("POKEMONPRICETRACKER_API_KEY", raising=False)
    with pytest.raises(SourceError, match="POKEMONPRICETRACKER_API_KEY"):
        PokemonPriceTrackerClient(
            PokemonPriceTrackerSettings(), FAST_RETRY, CallBudget(1, Path("unused"))
        )
