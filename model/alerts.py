"""Watchlist rules: when a watched item's day of prices is worth telling someone about.

A rule is a condition on one priced day of an item (the fields every answer carries,
`model.predictor.PricedRows.fields`). It *fires* on the day it becomes true: it holds on
that day and did not hold on the item's previous observed day (or there is none). A rule
that stays true does not fire again until it has been false in between, so evaluating a
day twice, or a day after the next one, never tells anyone twice.

Kinds:
- `signal_buy` / `signal_sell`: the signal is BUY / SELL;
- `price_below` / `price_above`: the market price is below / above `value` (dollars);
- `deviation_beyond`: |deviation_pct| is at least `value` (a fraction: 0.2 is 20 %);
- `buy_below_band`: the lowest listing (`buy_price`) is below the fair band's low end.

A rule on a field the day does not have (no listing, no band, unscored) does not hold.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from model.signals import Signal


class RuleKind(StrEnum):
    SIGNAL_BUY = "signal_buy"
    SIGNAL_SELL = "signal_sell"
    PRICE_BELOW = "price_below"
    PRICE_ABOVE = "price_above"
    DEVIATION_BEYOND = "deviation_beyond"
    BUY_BELOW_BAND = "buy_below_band"


VALUED_KINDS = frozenset({RuleKind.PRICE_BELOW, RuleKind.PRICE_ABOVE, RuleKind.DEVIATION_BEYOND})
# A watched item without rules is told when its signal becomes BUY or SELL.
DEFAULT_KINDS = (RuleKind.SIGNAL_BUY, RuleKind.SIGNAL_SELL)
MAX_RULES_PER_ITEM = 20


class Rule(BaseModel):
    """One condition; `value` is required by the price and deviation kinds, refused by the
    others."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: RuleKind
    value: float | None = Field(default=None, ge=0, le=1_000_000, allow_inf_nan=False)

    @model_validator(mode="after")
    def _value_where_needed(self) -> Rule:
        if self.kind in VALUED_KINDS and self.value is None:
            raise ValueError(f"a {self.kind.value} rule needs a value")
        if self.kind not in VALUED_KINDS and self.value is not None:
            raise ValueError(f"a {self.kind.value} rule takes no value")
        return self

    @property
    def name(self) -> str:
        """Stable text naming the rule (event ids and de-duplication use it)."""
        return self.kind.value if self.value is None else f"{self.kind.value}:{self.value:g}"

    def holds(self, day: dict[str, Any]) -> bool:
        """Whether the condition is true of one priced day (answer fields)."""
        kind = self.kind
        if kind is RuleKind.SIGNAL_BUY:
            return day.get("signal") == Signal.BUY.value
        if kind is RuleKind.SIGNAL_SELL:
            return day.get("signal") == Signal.SELL.value
        market = day.get("market_price")
        if kind is RuleKind.PRICE_BELOW:
            return market is not None and market < self._value
        if kind is RuleKind.PRICE_ABOVE:
            return market is not None and market > self._value
        if kind is RuleKind.DEVIATION_BEYOND:
            deviation = day.get("deviation_pct")
            return deviation is not None and abs(deviation) >= self._value
        buy, low = day.get("buy_price"), day.get("fair_low")
        return buy is not None and low is not None and buy < low

    def fires(self, day: dict[str, Any], previous: dict[str, Any] | None) -> bool:
        """True on the day the condition becomes true (see the module's docstring)."""
        return self.holds(day) and (previous is None or not self.holds(previous))

    @property
    def _value(self) -> float:
        assert self.value is not None  # the validator requires it for these kinds
        return self.value


def default_rules() -> list[Rule]:
    return [Rule(kind=kind) for kind in DEFAULT_KINDS]


__all__ = ["DEFAULT_KINDS", "MAX_RULES_PER_ITEM", "Rule", "RuleKind", "default_rules"]
