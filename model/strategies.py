"""Fair-price strategies and the `FairPriceModel` that applies one.

A strategy turns price panels (`model.features.Panels`) into a `Forecast` (panels of fair
prices and, when it has one, a raw band), causally: the forecast on day t depends on
observations on days <= t only. Strategies that learn do it in `fit`, from rows whose
target day lies before a cut-off, so a backtest never fits on the future it is scored on.
What a fit learns is held in memory (`FairPriceModel.state`, any object); the JSON record
of it (`FairPriceModel.params`) is what the artifact keeps.

| name | fair price on day t |
|---|---|
| `last` | the last observed price (the naive forecast) |
| `mean3` | mean of the last 3 observations (the seed baseline) |
| `quantile_gbm` | p[t] * exp(median forecast of log p[t+h] - log p[t]), see `model.gbm` |
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from model import features, gbm
from model.features import Panels

Hyper = Mapping[str, float]
Params = dict[str, Any]  # JSON: what a fit learned, for the record


@dataclass(frozen=True)
class Forecast:
    """Fair prices and the strategy's raw band (None: the strategy has no band)."""

    fair: pd.DataFrame
    low: pd.DataFrame | None = None
    high: pd.DataFrame | None = None


@dataclass(frozen=True)
class Fitted:
    """What a fit learned: `state` (in memory, any object; None is the prior) and `params`
    (its JSON record)."""

    state: object
    params: Params


Fitter = Callable[[Panels, int, Hyper], Fitted]
Forecaster = Callable[[Panels, int, object, Hyper], Forecast]
# Out-of-sample forecasts for every block at once: (panels, horizon, hyper, block starts)
# -> the forecast of each block by a fit on the targets before the block, and the last fit.
BlockForecaster = Callable[[Panels, int, Hyper, Sequence[pd.Timestamp]], tuple[Forecast, Fitted]]


@dataclass(frozen=True)
class Strategy:
    name: str
    description: str
    predict: Forecaster
    fit: Fitter | None = None
    defaults: Mapping[str, float] = field(default_factory=dict)
    # Optional fast path equal to fitting and predicting block by block (see
    # `model.evaluation.out_of_sample`).
    out_of_sample: BlockForecaster | None = None
    # How a fitted state is stored in the artifact (strategies that fit have both).
    save_state: Callable[[object, Path], None] | None = None
    load_state: Callable[[Path], object] | None = None


def _last(panels: Panels, horizon: int, state: object, hyper: Hyper) -> Forecast:
    return Forecast(features.last_price(panels.market))


def _mean_of_last_3(panels: Panels, horizon: int, state: object, hyper: Hyper) -> Forecast:
    return Forecast(features.rolling_mean(panels.market, 3))


def _gbm_fit(panels: Panels, horizon: int, hyper: Hyper) -> Fitted:
    rows = gbm.feature_rows(panels, horizon)
    state, params = gbm.fit_rows(rows, gbm.trainable_rows(rows, panels), hyper)
    return Fitted(state, params)


def _gbm_state(state: object) -> gbm.GbmState | None:
    if state is not None and not isinstance(state, gbm.GbmState):
        raise TypeError(f"quantile_gbm cannot predict from a {type(state).__name__}")
    return state


def _gbm_predict(panels: Panels, horizon: int, state: object, hyper: Hyper) -> Forecast:
    """Priced on observation days only; without a fit (the prior) the naive forecast."""
    rows = gbm.feature_rows(panels, horizon)
    everything = np.arange(len(rows.day), dtype=np.int64)
    fair, low, high = gbm.to_panels(
        panels.market, rows, [gbm.forecast_rows(rows, everything, _gbm_state(state))]
    )
    return Forecast(fair, low, high)


def _gbm_out_of_sample(
    panels: Panels, horizon: int, hyper: Hyper, block_starts: Sequence[pd.Timestamp]
) -> tuple[Forecast, Fitted]:
    """Features once for the whole panel (they are causal), one fit per block."""
    rows = gbm.feature_rows(panels, horizon)
    panel = panels.market
    day_of = panel.index.to_numpy()[rows.day]
    has_target = gbm.trainable_rows(rows, panels)
    ends = [*block_starts[1:], panel.index[-1] + pd.Timedelta(days=1)]
    target_day = (panel.index[0] + pd.to_timedelta(rows.day + horizon, unit="D")).to_numpy()
    forecasts = []
    last = Fitted(None, {})
    for start, end in zip(block_starts, ends, strict=True):
        trainable = has_target & (target_day < start.to_datetime64())
        state, params = gbm.fit_rows(rows, trainable, hyper)
        last = Fitted(state, params)
        block = np.nonzero((day_of >= start.to_datetime64()) & (day_of < end.to_datetime64()))[0]
        forecasts.append(gbm.forecast_rows(rows, block.astype(np.int64), state))
    fair, low, high = gbm.to_panels(panel, rows, forecasts)
    return Forecast(fair, low, high), last


STRATEGIES: dict[str, Strategy] = {
    strategy.name: strategy
    for strategy in (
        Strategy("last", "the last observed price (the naive forecast)", _last),
        Strategy("mean3", "mean of the last 3 observations (the seed baseline)", _mean_of_last_3),
        Strategy(
            "quantile_gbm",
            "causal quantile gradient boosting of the h-day log return (median, 10 %, 90 %)",
            _gbm_predict,
            _gbm_fit,
            gbm.DEFAULTS,
            _gbm_out_of_sample,
            gbm.save_state,
            gbm.load_state,
        ),
    )
}
DEFAULT_STRATEGY = "quantile_gbm"


@dataclass(frozen=True)
class FairPriceModel:
    """A strategy, the horizon it forecasts, its hyper-parameter overrides, and its fit.

    `params` is the JSON record of the fit; `state` the fitted object itself (in memory
    only, not compared). A model without a state predicts with the strategy's prior.
    """

    strategy: str = DEFAULT_STRATEGY
    horizon: int = 7
    hyperparameters: Hyper = field(default_factory=dict)
    params: Params = field(default_factory=dict)
    state: object = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        if self.strategy not in STRATEGIES:
            raise ValueError(
                f"unknown strategy {self.strategy!r}; choose one of {sorted(STRATEGIES)}"
            )
        if self.horizon < 1:
            raise ValueError(f"horizon must be at least 1 day, got {self.horizon}")
        unknown = sorted(set(self.hyperparameters) - set(STRATEGIES[self.strategy].defaults))
        if unknown:
            raise ValueError(f"unknown hyper-parameters {unknown} for strategy {self.strategy!r}")

    @property
    def definition(self) -> Strategy:
        return STRATEGIES[self.strategy]

    @property
    def hyper(self) -> dict[str, float]:
        """The strategy's defaults with this model's overrides."""
        return {**self.definition.defaults, **self.hyperparameters}

    @property
    def needs_fit(self) -> bool:
        return self.definition.fit is not None

    def fit(self, panels: Panels, before: pd.Timestamp | None = None) -> FairPriceModel:
        """Learn from the days before `before` (rows whose target day is before it)."""
        fitter = self.definition.fit
        if fitter is None:
            return self
        history = panels if before is None else panels.before(before)
        return self.with_fit(fitter(history, self.horizon, self.hyper))

    def with_fit(self, fitted: Fitted) -> FairPriceModel:
        return replace(self, params=fitted.params, state=fitted.state)

    def forecast(self, panels: Panels) -> Forecast:
        """Fair prices (and raw band) for every day and item (NaN where it cannot price)."""
        return self.definition.predict(panels, self.horizon, self.state, self.hyper)
