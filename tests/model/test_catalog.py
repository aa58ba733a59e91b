from __future__ import annotations

import math
from typing import Any

import orjson
import pytest

from model.artifact import TrainedModel, price_table
from model.catalog import (
    CardQuery,
    Catalog,
    Cursor,
    Holding,
    Sort,
    SortKey,
    export_rows,
    fold,
    parse_holdings,
)
from model.lookup import LATEST_DAY
from model.predictor import Predictor, QueryError, parse_day
from model.schema import printing_of
from model.signals import Signal, SignalSettings

NAMES = {
    "a": ("Pokémon Center Elite Trainer Box", None),
    "b": ("Charizard ex", "199/165"),
    "c": ("POKEMON GO Mini Tin", None),
    "d": ("Pikachu - Reverse", "025"),
}


@pytest.fixture
def named(trained: TrainedModel) -> Predictor:
    items = trained.items.set_index("item_id")
    for item_id, (name, number) in NAMES.items():
        items.loc[item_id, "name"] = name
        items.loc[item_id, "number"] = number
    renamed = TrainedModel(trained.model, items.reset_index(), trained.predictions, trained.info)
    return Predictor(price_table(renamed), "test-version", SignalSettings(rule="fixed"))


@pytest.fixture
def catalog(named: Predictor) -> Catalog:
    return Catalog(named)


def ids(catalog: Catalog, query: CardQuery, limit: int = 10) -> list[str]:
    return [orjson.loads(entry)["card_id"] for entry in catalog.search(query, limit).entries]


def test_fold_drops_accents_case_and_punctuation() -> None:
    assert fold("Pokémon  GO!") == "pokemon go"
    assert fold("Flabébé - 065/091") == "flabebe 065 091"
    assert fold("ÉTB") == fold("etb")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("pokemon", ["a", "c"]),  # "Pokémon" and "POKEMON" both
        ("POKÉMON", ["a", "c"]),
        ("box trainer", ["a"]),  # tokens in any order
        ("elite pokemon center", ["a"]),
        ("char", ["b"]),  # a token matches inside a word
        ("199", ["b"]),  # the number too
        ("pikachu 025", ["d"]),
        ("mewtwo", []),
        ("pokemon mewtwo", []),  # every token must match
        ("  ", ["b", "a", "c", "d"]),  # no tokens: everything
    ],
)
def test_search_by_name(catalog: Catalog, text: str, expected: list[str]) -> None:
    assert sorted(ids(catalog, CardQuery(text=text))) == sorted(expected)


def test_entry_fields_match_the_latest_answer(catalog: Catalog, named: Predictor) -> None:
    (entry,) = catalog.search(CardQuery(text="charizard"), 10).entries
    answer = named.fair_price("b", None)
    listed = orjson.loads(entry)
    assert listed == {
        "card_id": "b",
        "name": "Charizard ex",
        "set_code": "sv1",
        "number": "199/165",
        "rarity": None,
        "printing": None,
        **{name: answer[name] for name in answer if name in listed and name != "card_id"},
        "edge_pct": pytest.approx(-0.10 - answer["deviation_pct"]),
        "data_as_of": "2024-01-05",
    }
    assert (listed["signal"], listed["price_date"]) == ("BUY", "2024-01-04")
    detail = catalog.detail("b", stale=True)
    assert detail == {**listed, "stale": True, "model_version": "test-version"}
    with pytest.raises(QueryError, match="no card with id 'zzz'"):
        catalog.detail("zzz", stale=False)


def test_filters(catalog: Catalog) -> None:
    assert ids(catalog, CardQuery(set_code="sv1")) == ["b", "a"]
    assert ids(catalog, CardQuery(set_code="nope")) == []
    assert ids(catalog, CardQuery(signal=Signal.BUY)) == ["b"]
    assert ids(catalog, CardQuery(min_price=15)) == ["a", "c"]  # 15 and 20
    assert ids(catalog, CardQuery(text="pokemon", min_price=16)) == ["c"]


def test_sorts_put_missing_values_last(catalog: Catalog) -> None:
    # Latest prices: a 15, b 0.5, c 20, d 6.
    assert ids(catalog, CardQuery(sort=Sort(SortKey.PRICE))) == ["b", "d", "a", "c"]
    assert ids(catalog, CardQuery(sort=Sort.parse("-price"))) == ["c", "a", "d", "b"]
    assert ids(catalog, CardQuery(sort=Sort.parse("name"))) == ["b", "d", "a", "c"]
    assert ids(catalog, CardQuery(sort=Sort.parse("-name"))) == ["c", "a", "d", "b"]
    # Strength: only BUY and SELL have one; the rest follow, by card id.
    strongest = ids(catalog, CardQuery(sort=Sort.parse("-strength")))
    assert strongest[0] == "b"
    assert strongest[1:] == sorted(strongest[1:])
    deviations = {
        card: orjson.loads(entry)["deviation_pct"]
        for card, entry in zip(catalog.ids, catalog.entries, strict=True)
    }
    ascending = ids(catalog, CardQuery(sort=Sort.parse("deviation")))
    known = [card for card in ascending if deviations[card] is not None]
    assert [deviations[card] for card in known] == sorted(deviations[card] for card in known)
    assert ascending[: len(known)] == known


@pytest.mark.parametrize("text", ["", "-", "Price", "popularity", "--name"])
def test_unknown_sort(text: str) -> None:
    with pytest.raises(QueryError, match=r"^sort: .* is not one of name, -name, price"):
        Sort.parse(text)


@pytest.mark.parametrize("sort", [f"{sign}{key.value}" for key in SortKey for sign in ("", "-")])
def test_cursor_paging_visits_every_match_once(catalog: Catalog, sort: str) -> None:
    query = CardQuery(sort=Sort.parse(sort))
    everything = ids(catalog, query)
    seen: list[str] = []
    cursor = None
    while True:
        page = catalog.search(query, 1, cursor)
        assert page.total == 4
        seen += [orjson.loads(entry)["card_id"] for entry in page.entries]
        if page.next is None:
            break
        cursor = Cursor.decode(page.next.encode())
    assert seen == everything


def test_a_cursor_belongs_to_its_query_and_table(catalog: Catalog) -> None:
    page = catalog.search(CardQuery(text="pokemon"), 1)
    assert page.next is not None
    with pytest.raises(QueryError, match=r"^cursor: made for another query"):
        catalog.search(CardQuery(text="pikachu"), 1, page.next)
    other_table = Cursor("another-version", page.next.digest, page.next.after)
    with pytest.raises(QueryError, match=r"^cursor: made for another query"):
        catalog.search(CardQuery(text="pokemon"), 1, other_table)
    # The same query spelled differently is the same query.
    assert catalog.search(CardQuery(text="POKÉMON "), 1, page.next).total == 2


@pytest.mark.parametrize(
    "token",
    ["", "abc", "!!!", Cursor("v", "q", "a").encode()[:-2], "eyJmIjoyfQ", "W10"],
)
def test_malformed_cursor(token: str) -> None:
    with pytest.raises(QueryError, match=r"^cursor: not a cursor this API issued"):
        Cursor.decode(token)


def test_cursor_round_trip() -> None:
    cursor = Cursor("pokewatch-fair-price:abc@2025-11-29.x", "0123456789abcdef", "tcg-1")
    assert Cursor.decode(cursor.encode()) == cursor


def test_sets(catalog: Catalog) -> None:
    assert catalog.sets() == [
        {
            "set_code": "sv1",
            "set_name": None,
            "items": 2,
            "latest_date": "2024-01-05",
            "buy": 1,
            "sell": 0,
            "buy_share": 0.5,
            "sell_share": 0.0,
        },
        {
            "set_code": "sv2",
            "set_name": None,
            "items": 1,
            "latest_date": "2024-01-05",
            "buy": 0,
            "sell": 0,
            "buy_share": 0.0,
            "sell_share": 0.0,
        },
        {
            "set_code": None,
            "set_name": None,
            "items": 1,
            "latest_date": "2024-01-05",
            "buy": 0,
            "sell": 0,
            "buy_share": 0.0,
            "sell_share": 0.0,
        },
    ]


def test_backtest_comes_from_the_training_record(trained: TrainedModel) -> None:
    trained.info.update(
        horizon=7,
        signal_returns=[
            {"signal": "BUY", "count": 12, "mean_forward_return": 0.02, "hit_rate": 0.75},
            {"signal": "SELL", "count": 0, "mean_forward_return": math.nan, "hit_rate": math.nan},
        ],
    )
    catalog = Catalog(Predictor(price_table(trained), "v", SignalSettings()))
    assert catalog.backtest(Signal.BUY) == {
        "horizon_days": 7,
        "count": 12,
        "hit_rate": 0.75,
        "mean_forward_return": 0.02,
        "median_forward_return": None,
    }
    sell = catalog.backtest(Signal.SELL)
    assert sell is not None
    assert sell["hit_rate"] is None
    trained.info.pop("signal_returns")
    assert (
        Catalog(Predictor(price_table(trained), "v", SignalSettings())).backtest(Signal.BUY) is None
    )


def test_compatibility_cards_page(catalog: Catalog) -> None:
    everything = catalog.summaries(limit=10, offset=0, stale=False)
    assert everything["total"] == 4
    assert [card["card_id"] for card in everything["cards"]] == ["a", "b", "c", "d"]
    assert everything["cards"][1] == {
        "card_id": "b",
        "name": "Charizard ex",
        "set_code": "sv1",
        "latest_date": "2024-01-04",
        "latest_price": 0.5,
    }
    assert everything["cards"][3]["set_code"] is None
    page = catalog.summaries(limit=2, offset=1, stale=True)
    assert (page["total"], page["limit"], page["offset"], page["stale"]) == (4, 2, 1, True)
    assert [card["card_id"] for card in page["cards"]] == ["b", "c"]
    assert catalog.summaries(limit=5, offset=10, stale=False)["cards"] == []


def test_valuation_by_hand(catalog: Catalog, named: Predictor) -> None:
    a, c = named.fair_price("a", None), named.fair_price("c", None)
    valuation = catalog.valuate(
        [
            Holding("a", 2, 20.0),  # 2 x 15 = 30 market, cost 20: +10
            Holding("nope", 1, 5.0),
            Holding("c", 3, None),  # 3 x 20 = 60, no cost
        ]
    )
    first, unknown, third = valuation["lines"]
    assert first == {
        "index": 0,
        "card_id": "a",
        "name": "Pokémon Center Elite Trainer Box",
        "quantity": 2,
        "price_date": "2024-01-05",
        "market_price": 15.0,
        "fair_price": a["fair_price"],
        "market_value": 30.0,
        "fair_value": round(2 * a["fair_price"], 2),
        "cost_basis": 20.0,
        "pnl": 10.0,
        "pnl_pct": 0.5,
        "signal": a["signal"],
    }
    assert unknown == {
        "index": 1,
        "card_id": "nope",
        "error": "card_not_found",
        "detail": "no card with id 'nope'",
    }
    assert (third["market_value"], third["pnl"], third["pnl_pct"]) == (60.0, None, None)
    assert valuation["totals"] == {
        "lines": 3,
        "priced_lines": 2,
        "unknown_lines": 1,
        "market_value": 90.0,
        "fair_value": round(2 * a["fair_price"] + 3 * c["fair_price"], 2),
        "fair_value_lines": 2,
        "cost_basis": 20.0,
        "pnl": 10.0,
    }


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        ([], "body: expected a non-empty list"),
        ({"card_id": "a"}, "body: expected a non-empty list"),
        (["a"], "[0]: expected an object with card_id and quantity"),
        ([{"quantity": 1}], "[0].card_id: expected a string of 1 to 128"),
        ([{"card_id": "a", "quantity": 1}, {"card_id": "b"}], "[1].quantity: expected a number"),
        ([{"card_id": "a", "quantity": 0}], "[0].quantity: expected a number above 0"),
        ([{"card_id": "a", "quantity": True}], "[0].quantity: expected a number"),
        ([{"card_id": "a", "quantity": "2"}], "[0].quantity: expected a number"),
        ([{"card_id": "a", "quantity": 1e9}], "[0].quantity: expected a number above 0"),
        ([{"card_id": "a", "quantity": 1, "cost_basis": -1}], "[0].cost_basis: expected"),
        ([{"card_id": "a", "quantity": 1, "cost_basis": "9"}], "[0].cost_basis: expected"),
    ],
)
def test_malformed_holdings_name_the_line(body: Any, detail: str) -> None:
    with pytest.raises(QueryError) as caught:
        parse_holdings(body)
    assert caught.value.error == "invalid_request"
    assert caught.value.detail.startswith(detail)


def test_holdings() -> None:
    assert parse_holdings(
        [{"card_id": "a", "quantity": 2}, {"card_id": "b", "quantity": 0.5, "cost_basis": 3}]
    ) == [Holding("a", 2, None), Holding("b", 0.5, 3.0)]


def test_export_rows_are_the_answers_of_the_day(named: Predictor) -> None:
    frame = export_rows(named, parse_day("2024-01-02"))
    # d has no price on or before 2024-01-02.
    assert frame["card_id"].tolist() == ["a", "b", "c"]
    for row in frame.to_dict(orient="records"):
        answer = named.fair_price(row["card_id"], "2024-01-02")
        assert row["date"] == "2024-01-02"
        for name in ("price_date", "market_price", "signal", "history_days"):
            assert row[name] == answer[name]
    latest = export_rows(named, LATEST_DAY)
    assert latest["date"].tolist() == latest["price_date"].tolist()
    assert len(latest) == 4
    with pytest.raises(QueryError, match=r"^no prices on 2023-12-31: prices are available from"):
        export_rows(named, parse_day("2023-12-31"))


@pytest.mark.parametrize(
    ("item_id", "printing"),
    [
        ("tcg-133777", "Normal"),
        ("tcg-42-holofoil", "Holofoil"),
        ("tcg-42-reverse-holofoil", "Reverse Holofoil"),
        ("tcg-42-1st-edition-holofoil", "1st Edition Holofoil"),
        ("sv2a_151_charizard_ex___201_165", None),
        ("tcg-", None),
    ],
)
def test_printing_of_an_item_id(item_id: str, printing: str | None) -> None:
    assert printing_of(item_id) == printing
