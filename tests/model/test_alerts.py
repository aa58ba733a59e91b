"""Watchlist rules: what holds on a day, and the day a rule fires."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from model.alerts import Rule, RuleKind, default_rules


def day(**fields: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "market_price": 10.0,
        "buy_price": None,
        "fair_price": 10.0,
        "fair_low": 9.0,
        "fair_high": 11.0,
        "deviation_pct": 0.0,
        "signal": "HOLD",
    }
    return {**base, **fields}


@pytest.mark.parametrize(
    ("rule", "holding", "not_holding"),
    [
        (Rule(kind=RuleKind.SIGNAL_BUY), day(signal="BUY"), day(signal="SELL")),
        (Rule(kind=RuleKind.SIGNAL_SELL), day(signal="SELL"), day(signal="HOLD")),
        (Rule(kind=RuleKind.PRICE_BELOW, value=10), day(market_price=9.99), day(market_price=10)),
        (Rule(kind=RuleKind.PRICE_ABOVE, value=10), day(market_price=10.01), day(market_price=10)),
        (
            Rule(kind=RuleKind.DEVIATION_BEYOND, value=0.2),
            day(deviation_pct=-0.2),
            day(deviation_pct=0.19),
        ),
        (
            Rule(kind=RuleKind.BUY_BELOW_BAND),
            day(buy_price=8.5),
            day(buy_price=9.0),
        ),
    ],
)
def test_each_kind_holds_on_its_condition(
    rule: Rule, holding: dict[str, Any], not_holding: dict[str, Any]
) -> None:
    assert rule.holds(holding)
    assert not rule.holds(not_holding)


def test_a_missing_field_never_holds() -> None:
    unscored = day(signal=None, deviation_pct=None, fair_low=None, buy_price=None)
    for kind in (RuleKind.SIGNAL_BUY, RuleKind.BUY_BELOW_BAND):
        assert not Rule(kind=kind).holds(unscored)
    assert not Rule(kind=RuleKind.DEVIATION_BEYOND, value=0).holds(unscored)
    assert not Rule(kind=RuleKind.BUY_BELOW_BAND).holds(day(buy_price=1.0, fair_low=None))


def test_a_rule_fires_on_the_day_it_becomes_true_only() -> None:
    rule = Rule(kind=RuleKind.PRICE_BELOW, value=10)
    days = [day(market_price=price) for price in (12, 9, 8, 11, 7)]
    fired = [rule.fires(days[index], days[index - 1] if index else None) for index in range(5)]
    assert fired == [False, True, False, False, True]
    assert rule.fires(day(market_price=5), None)  # no earlier day: true is new


def test_values_are_required_where_meaningful_and_refused_elsewhere() -> None:
    with pytest.raises(ValidationError, match="needs a value"):
        Rule(kind=RuleKind.PRICE_BELOW)
    with pytest.raises(ValidationError, match="takes no value"):
        Rule(kind=RuleKind.SIGNAL_BUY, value=1)
    with pytest.raises(ValidationError):
        Rule(kind=RuleKind.PRICE_ABOVE, value=-1)
    with pytest.raises(ValidationError):
        Rule.model_validate({"kind": "price_above", "value": float("nan")})
    with pytest.raises(ValidationError):
        Rule.model_validate({"kind": "moon"})


def test_names_and_defaults() -> None:
    assert Rule(kind=RuleKind.PRICE_BELOW, value=12.5).name == "price_below:12.5"
    assert [rule.name for rule in default_rules()] == ["signal_buy", "signal_sell"]
