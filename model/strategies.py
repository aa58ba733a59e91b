"""Fair-price strategies and the `FairPriceModel` that applies one.

A strategy turns a price panel into a panel of fair prices, causally: the fair price on
day t depends on observations on days <= t only. Strategies with parameters learn them in
`fit`, from rows whose target day lies before a cut-off, so a backtest never fits on the
future it is scored on.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace

import pandas as pd

from model import features

Params = dict[str, float]
Fitter = Callable[[pd.DataFrame, int], Params]
Predictor = Callable[[pd.DataFrame, Mapping[str, float]], pd.DataFrame]


@dataclass(frozen=True)
class Strategy:
    name: str
    description: str
    predict: Predictor
    fit: Fitter | None = None


def _no_params(panel: pd.DataFrame, horizon: int) -> Params:
    return {}


def _last(panel: pd.DataFrame, params: Mapping[str, float]) -> pd.DataFrame:
    return features.last_price(panel)


def _mean_of_last_3(panel: pd.DataFrame, params: Mapping[str, float]) -> pd.DataFrame:
    return features.rolling_mean(panel, 3)


STRATEGIES: dict[str, Strategy] = {
    strategy.name: strategy
    for strategy in (
        Strategy("last", "the last observed price (the naive forecast)", _last),
        Strategy("mean3", "mean of the last 3 observations (the seed baseline)", _mean_of_last_3),
    )
}
DEFAULT_STRATEGY = "mean3"


@dataclass(frozen=True)
class FairPriceModel:
    """A strategy, the horizon it forecasts, and the parameters fitted for it."""

    strategy: str = DEFAULT_STRATEGY
    horizon: int = 7
    params: Params = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.strategy not in STRATEGIES:
            raise ValueError(
                f"unknown strategy {self.strategy!r}; choose one of {sorted(STRATEGIES)}"
            )
        if self.horizon < 1:
            raise ValueError(f"horizon must be at least 1 day, got {self.horizon}")

    @property
    def needs_fit(self) -> bool:
        return STRATEGIES[self.strategy].fit is not None

    def fit(self, panel: pd.DataFrame, before: pd.Timestamp | None = None) -> FairPriceModel:
        """Learn parameters from rows whose target day (t + horizon) is before `before`."""
        fitter = STRATEGIES[self.strategy].fit
        if fitter is None:
            return self
        history = panel if before is None else panel[panel.index < before]
        return replace(self, params=fitter(history, self.horizon))

    def fair_prices(self, panel: pd.DataFrame) -> pd.DataFrame:
        """Fair price for every day and item of the panel (NaN where it cannot price)."""
        return STRATEGIES[self.strategy].predict(panel, self.params)
