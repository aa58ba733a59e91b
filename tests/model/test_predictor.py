from __future__ import annotations

import pytest

from model.artifact import TrainedModel, price_table
from model.lookup import LATEST_DAY
from model.predictor import Predictor, Query, QueryError, parse_day, parse_query
from model.signals import SignalSettings


def test_latest_answer(predictor: Predictor) -> None:
    # a: market 15 on 2024-01-05, fair mean(14, 13, 15) = 14.
    assert predictor.fair_price("a", None) == {
        "card_id": "a",
        "name": "Alpha",
        "date": "2024-01-05",
        "price_date": "2024-01-05",
        "market_price": 15.0,
        "buy_price": None,
        "fair_price": 14.0,
        "fair_low": None,
        "fair_high": None,
        "deviation_pct": pytest.approx(1 / 14),
        "signal": "HOLD",
        "reason": None,
        "history_days": 5,
        "data_as_of": "2024-01-05",
        "stale": False,
        "model_version": "test-version",
    }


def test_exact_date_answers_with_signals(predictor: Predictor) -> None:
    sell = predictor.fair_price("a", "2024-01-03")  # 14 vs fair 12: +16.7 %
    assert (sell["market_price"], sell["fair_price"], sell["signal"]) == (14.0, 12.0, "SELL")
    assert sell["deviation_pct"] == pytest.approx(1 / 6)

    buy = predictor.fair_price("c", "2024-01-04")  # 18 vs fair 20: exactly -10 %
    assert (buy["market_price"], buy["fair_price"], buy["signal"]) == (18.0, 20.0, "BUY")
    assert buy["deviation_pct"] == pytest.approx(-0.1)


def test_fair_price_is_rounded_to_cents(predictor: Predictor) -> None:
    # b's latest fair price is mean(2, 4, 0.5) = 2.1666...
    answer = predictor.fair_price("b", None)
    assert answer["fair_price"] == 2.17
    assert answer["deviation_pct"] == pytest.approx((0.5 - 2.17) / 2.17)
    assert answer["signal"] == "BUY"


def test_date_in_a_gap(predictor: Predictor) -> None:
    answer = predictor.fair_price("c", "2024-01-02")
    assert answer["date"] == "2024-01-02"
    assert answer["price_date"] == "2024-01-01"
    assert answer["market_price"] == 20.0


def test_thresholds_are_used(trained: TrainedModel) -> None:
    tight = Predictor(
        price_table(trained), "v", SignalSettings(rule="fixed", buy_at=-0.01, sell_at=0.05)
    )
    assert tight.fair_price("a", None)["signal"] == "SELL"  # +7.1 %


def test_a_row_the_model_did_not_price_has_no_signal(trained: TrainedModel) -> None:
    trained.predictions.loc[0, "fair_price"] = float("nan")  # a on 2024-01-01
    answer = Predictor(price_table(trained), "v", SignalSettings(rule="fixed")).fair_price(
        "a", "2024-01-01"
    )
    assert (answer["market_price"], answer["price_date"]) == (10.0, "2024-01-01")
    assert answer["fair_price"] is None
    assert answer["deviation_pct"] is None
    assert (answer["signal"], answer["reason"]) == (None, "not_scored")


def test_short_histories_get_an_answer_without_a_made_up_signal(trained: TrainedModel) -> None:
    strict = Predictor(price_table(trained), "v", SignalSettings(rule="fixed"), min_observed_days=3)
    # d was observed on 2 days: its market price, its history, and no fair price yet.
    young = strict.fair_price("d", None)
    assert (young["market_price"], young["history_days"]) == (6.0, 2)
    assert (young["fair_price"], young["fair_low"], young["signal"]) == (None, None, None)
    assert young["reason"] == "insufficient_history"
    # a on its third observed day is priced.
    assert strict.fair_price("a", "2024-01-03")["signal"] == "SELL"
    assert strict.fair_price("a", "2024-01-02")["reason"] == "insufficient_history"


def test_freshness_and_stale_flag(predictor: Predictor) -> None:
    from datetime import UTC, datetime

    from model.predictor import freshness

    # Data as of 2024-01-05 is complete at 2024-01-06 00:00 UTC.
    fresh = predictor.freshness(datetime(2024, 1, 7, 11, tzinfo=UTC), 36)
    assert (fresh.age_hours, fresh.stale) == (35.0, False)
    assert predictor.freshness(datetime(2024, 1, 7, 13, tzinfo=UTC), 36).stale
    # A clock before the data (a clock jump back) is age 0, never stale.
    early = freshness(predictor.data_as_of, datetime(2020, 1, 1, tzinfo=UTC), 36)
    assert (early.age_hours, early.stale) == (0.0, False)
    assert predictor.fair_price("a", None, stale=True)["stale"] is True


def error_of(predictor: Predictor, card_id: str, on: str | None) -> QueryError:
    with pytest.raises(QueryError) as caught:
        predictor.fair_price(card_id, on)
    return caught.value


def test_unknown_card(predictor: Predictor) -> None:
    error = error_of(predictor, "zzz", None)
    assert (error.error, error.card_id) == ("card_not_found", "zzz")
    assert error.detail == "no card with id 'zzz'"


@pytest.mark.parametrize(
    ("card_id", "on", "first"),
    [
        ("a", "2024-01-06", "2024-01-01"),
        ("d", "2024-01-02", "2024-01-03"),
        ("a", "2023-12-31", "2024-01-01"),
    ],
)
def test_date_out_of_range_names_the_range(
    predictor: Predictor, card_id: str, on: str, first: str
) -> None:
    error = error_of(predictor, card_id, on)
    assert (error.error, error.card_id) == ("date_out_of_range", card_id)
    assert error.detail == (
        f"no price for {card_id!r} on {on}: prices are available from {first} to 2024-01-05"
    )


def test_date_before_1970_is_out_of_range(predictor: Predictor) -> None:
    error = error_of(predictor, "a", "1969-12-31")
    assert error.error == "date_out_of_range"


@pytest.mark.parametrize(
    ("on", "detail"),
    [
        ("2024-1-1", "date: '2024-1-1' is not a date in YYYY-MM-DD form"),
        ("01/02/2024", "date: '01/02/2024' is not a date in YYYY-MM-DD form"),
        ("2024-01-01T00:00", "date: '2024-01-01T00:00' is not a date in YYYY-MM-DD form"),
        ("", "date: '' is not a date in YYYY-MM-DD form"),
        ("2024-02-30", "date: '2024-02-30' is not a calendar date"),
        ("2024-13-01", "date: '2024-13-01' is not a calendar date"),
    ],
)
def test_malformed_date(predictor: Predictor, on: str, detail: str) -> None:
    with pytest.raises(QueryError) as caught:
        parse_query({"card_id": "a", "date": on})
    assert (caught.value.error, caught.value.detail) == ("invalid_request", detail)


@pytest.mark.parametrize(
    ("item", "detail"),
    [
        ("a", "item: expected an object with a card_id"),
        (["a"], "item: expected an object with a card_id"),
        (None, "item: expected an object with a card_id"),
        ({}, "card_id: expected a non-empty string"),
        ({"card_id": 7}, "card_id: expected a non-empty string"),
        ({"card_id": ""}, "card_id: expected a non-empty string"),
        ({"card_id": None}, "card_id: expected a non-empty string"),
        ({"card_id": "a", "date": 20240101}, "date: expected a YYYY-MM-DD string or null"),
    ],
)
def test_invalid_items(item: object, detail: str) -> None:
    with pytest.raises(QueryError) as caught:
        parse_query(item)
    assert (caught.value.error, caught.value.detail, caught.value.card_id) == (
        "invalid_request",
        detail,
        None,
    )


def test_parse_query_and_day() -> None:
    assert parse_query({"card_id": "a"}) == Query("a", None, LATEST_DAY)
    assert parse_query({"card_id": "a", "date": "1970-01-02", "extra": 1}) == Query(
        "a", "1970-01-02", 1
    )
    assert parse_day(None) == LATEST_DAY
    assert parse_day("1970-01-02") == 1


def test_answers_in_query_order_with_errors_in_place(predictor: Predictor) -> None:
    queries = [
        Query("c", "2024-01-04", parse_day("2024-01-04")),
        Query("zzz", None, LATEST_DAY),
        Query("d", "2024-01-01", parse_day("2024-01-01")),
        Query("a", None, LATEST_DAY),
        Query("c", "2024-01-04", parse_day("2024-01-04")),
    ]
    answers = predictor.answer(queries)

    assert len(answers) == len(queries)
    assert answers[0] == predictor.fair_price("c", "2024-01-04")
    assert answers[4] == answers[0]
    assert answers[3] == predictor.fair_price("a", None)
    unknown, early = answers[1], answers[2]
    assert isinstance(unknown, QueryError)
    assert isinstance(early, QueryError)
    assert (unknown.error, unknown.card_id) == ("card_not_found", "zzz")
    assert (early.error, early.card_id) == ("date_out_of_range", "d")
    assert predictor.answer([]) == []


def test_history_is_every_observed_day_in_range(predictor: Predictor) -> None:
    rows = predictor.history("c", None, None)
    assert [rows.fields(index)["price_date"] for index in range(len(rows.rows))] == [
        "2024-01-01",
        "2024-01-03",
        "2024-01-04",
        "2024-01-05",
    ]
    # Each row is the answer for its own day.
    assert rows.fields(2) == {
        name: value
        for name, value in predictor.fair_price("c", "2024-01-04").items()
        if name in rows.fields(2)
    }
    window = predictor.history("c", parse_day("2024-01-02"), parse_day("2024-01-04"))
    assert len(window.rows) == 2
    assert len(predictor.history("c", parse_day("2024-01-05"), parse_day("2024-01-01")).rows) == 0
    with pytest.raises(QueryError, match="no card with id 'zzz'"):
        predictor.history("zzz", None, None)


def test_band_is_answered_rounded_and_drives_the_band_rule(trained: TrainedModel) -> None:
    rows = trained.predictions
    latest_a = rows.index[(rows["item_id"] == "a")][-1]  # market 15, fair 14
    rows.loc[latest_a, ["fair_low", "fair_high"]] = [13.004, 14.996]
    band = Predictor(price_table(trained), "v", SignalSettings(rule="band"))
    answer = band.fair_price("a", None)
    assert (answer["fair_low"], answer["fair_high"]) == (13.0, 15.0)
    assert answer["signal"] == "HOLD"  # 15 is not above 15.00

    rows.loc[latest_a, "fair_high"] = 14.5
    assert (
        Predictor(price_table(trained), "v", SignalSettings(rule="band")).fair_price("a", None)[
            "signal"
        ]
        == "SELL"
    )
    # Without a band the band rule gives no signal (and says why); the fixed rule still
    # uses the deviation.
    unbanded = band.fair_price("b", None)
    assert (unbanded["fair_low"], unbanded["signal"]) == (None, None)
    assert unbanded["reason"] == "insufficient_history"
    assert unbanded["market_price"] == 0.5
