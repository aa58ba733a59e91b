"""TCGCSV and PokemonPriceTracker clients against a local server speaking their formats."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
from pytest_httpserver import HTTPServer

from pipelines.settings import (
    PokemonPriceTrackerSelection,
    PokemonPriceTrackerSettings,
    TcgcsvSelection,
    TcgcsvSettings,
)
from pipelines.sources import SourceError
from pipelines.sources.pokemonpricetracker import (
    BudgetExhaustedError,
    PokemonPriceTrackerClient,
    PokemonPriceTrackerSource,
    parse_price_history,
)
from pipelines.sources.tcgcsv import TcgcsvClient, TcgcsvSource
from tests.pipelines import wire
from tests.pipelines.conftest import FAST_RETRY, Sleeps

TODAY = date(2025, 11, 29)
SV2A = "69039c463cf9e889df7dca2c"


def tcgcsv_client(server: HTTPServer, sleeps: Sleeps) -> TcgcsvClient:
    return TcgcsvClient(TcgcsvSettings(base_url=server.url_for("")), FAST_RETRY, sleep=sleeps)


def serve_group(server: HTTPServer) -> None:
    server.expect_request(f"/tcgplayer/3/{wire.GROUP}/products").respond_with_json(
        wire.envelope(wire.PRODUCTS)
    )
    server.expect_request(f"/tcgplayer/3/{wire.GROUP}/prices").respond_with_json(
        wire.envelope(wire.PRICES)
    )


def test_tcgcsv_groups_products_and_prices(httpserver: HTTPServer, sleeps: Sleeps) -> None:
    httpserver.expect_request("/tcgplayer/3/groups").respond_with_json(
        wire.envelope([{"groupId": wire.GROUP, "name": "SV: Scarlet & Violet 151"}])
    )
    serve_group(httpserver)
    client = tcgcsv_client(httpserver, sleeps)
    assert [group.group_id for group in client.groups()] == [wire.GROUP]
    charizard = client.products(wire.GROUP)[0]
    assert (charizard.extended("Number"), charizard.extended("Rarity")) == (
        "199/165",
        "Special Illustration Rare",
    )
    assert [p.item_id for p in client.prices(wire.GROUP)][2] == "tcg-654595-reverse-holofoil"


def test_tcgcsv_top_n_and_explicit_items(
    httpserver: HTTPServer, sleeps: Sleeps, tmp_path: Path
) -> None:
    serve_group(httpserver)
    selections = [
        TcgcsvSelection(group=wire.GROUP, top=2),
        TcgcsvSelection(group=wire.GROUP, items=["tcg-654596", "tcg-654596-reverse-holofoil"]),
    ]
    source = TcgcsvSource(
        tcgcsv_client(httpserver, sleeps), selections, 3, tmp_path, today=lambda: TODAY
    )
    rows = source.fetch(TODAY)
    assert rows["item_id"].tolist() == [
        "tcg-654594",
        "tcg-654595-reverse-holofoil",
        "tcg-654596",
        "tcg-654596-reverse-holofoil",
    ]
    first = rows.iloc[0]
    assert (first["name"], first["number"], first["set_code"]) == (
        "Charizard ex",
        "199/165",
        str(wire.GROUP),
    )
    assert first["market_price"] == 250.0
    assert rows["date"].eq(TODAY.isoformat()).all()
    assert rows["market_price"].isna().sum() == 1  # kept: the collector quarantines it


def test_tcgcsv_object_where_a_list_was_expected(httpserver: HTTPServer, sleeps: Sleeps) -> None:
    httpserver.expect_request(f"/tcgplayer/3/{wire.GROUP}/prices").respond_with_json(
        {"success": True, "errors": [], "results": {"productId": 1}}
    )
    with pytest.raises(SourceError, match="expected `results` to be a list, got dict"):
        tcgcsv_client(httpserver, sleeps).prices(wire.GROUP)


def test_tcgcsv_rows_of_the_wrong_shape(httpserver: HTTPServer, sleeps: Sleeps) -> None:
    httpserver.expect_request(f"/tcgplayer/3/{wire.GROUP}/prices").respond_with_json(
        wire.envelope([{"productId": "not a number", "subTypeName": "Normal"}])
    )
    with pytest.raises(SourceError, match="unexpected TcgcsvPrice rows"):
        tcgcsv_client(httpserver, sleeps).prices(wire.GROUP)


def ppt_client(server: HTTPServer, sleeps: Sleeps, budget: int = 10) -> PokemonPriceTrackerClient:
    settings = PokemonPriceTrackerSettings(
        base_url=server.url_for("/api/v2"), max_calls_per_run=budget
    )
    return PokemonPriceTrackerClient(settings, FAST_RETRY, api_key="test-key", sleep=sleeps)


SET_CARDS = [
    wire.ppt_card("Charizard ex", "201/165", 253.55, 566544),
    wire.ppt_card("Mew ex", "205/165", 80.0, 566548),
    wire.ppt_card("Alakazam ex", "203/165", 50.43, 566546),
]


def test_ppt_set_wide_top_n_with_bearer_key(httpserver: HTTPServer, sleeps: Sleeps) -> None:
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
    selection = PokemonPriceTrackerSelection(
        set_id=SV2A, set_slug="sv2a_151", language="japanese", top=2
    )
    source = PokemonPriceTrackerSource(
        ppt_client(httpserver, sleeps), [selection], today=lambda: TODAY
    )
    rows = source.fetch(TODAY)
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
    httpserver: HTTPServer, sleeps: Sleeps, history: object
) -> None:
    card = wire.ppt_card("Charizard ex", "201/165", 253.55, 566544, history)
    httpserver.expect_request(
        "/api/v2/cards",
        query_string={"tcgPlayerId": "566544", "includeHistory": "true", "days": "7"},
    ).respond_with_json({"data": card})
    selection = PokemonPriceTrackerSelection(
        set_id=SV2A, set_slug="sv2a_151", tcgplayer_ids=["566544"]
    )
    source = PokemonPriceTrackerSource(
        ppt_client(httpserver, sleeps), [selection], today=lambda: TODAY
    )
    rows = source.fetch(date(2025, 11, 23))
    assert rows["market_price"].tolist() == [246.34]


def test_ppt_unknown_history_shape_is_a_clear_error() -> None:
    with pytest.raises(SourceError, match="neither a mapping"):
        parse_price_history([246.34, 250.0], "card")
    with pytest.raises(SourceError, match="not a number"):
        parse_price_history({"2025-11-23": {"market": 1}}, "card")


def test_ppt_object_where_a_list_was_expected(httpserver: HTTPServer, sleeps: Sleeps) -> None:
    httpserver.expect_request("/api/v2/cards").respond_with_json({"data": SET_CARDS[0]})
    with pytest.raises(SourceError, match="expected `data` to be a list of cards, got dict"):
        ppt_client(httpserver, sleeps).set_cards(SV2A, "japanese", None)


def test_ppt_budget_counts_every_request_including_retries(
    httpserver: HTTPServer, sleeps: Sleeps
) -> None:
    httpserver.expect_request("/api/v2/cards").respond_with_data("", status=429)
    client = ppt_client(httpserver, sleeps, budget=2)
    with pytest.raises(BudgetExhaustedError, match="budget of 2"):
        client.set_cards(SV2A, "japanese", None)
    assert len(httpserver.log) == 2


def test_ppt_needs_a_key_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("POKEMONPRICETRACKER_API_KEY", raising=False)
    with pytest.raises(SourceError, match="POKEMONPRICETRACKER_API_KEY"):
        PokemonPriceTrackerClient(PokemonPriceTrackerSettings(), FAST_RETRY)
