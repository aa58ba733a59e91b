"""Fit, evaluate out of sample, and gate a fair-price model (what `pokewatch train` runs)."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from model.artifact import TrainedModel, build_trained_model
from model.evaluation import Evaluation, backtest, evaluate, gate_failures
from model.features import price_panel
from model.settings import ModelSettings
from model.strategies import FairPriceModel


@dataclass(frozen=True)
class TrainingResult:
    trained: TrainedModel
    evaluation: Evaluation
    gate_failures: list[str]

    @property
    def passed(self) -> bool:
        return not self.gate_failures


def evaluate_strategy(
    prices: pd.DataFrame, settings: ModelSettings, strategy: str | None = None
) -> Evaluation:
    model = FairPriceModel(strategy or settings.strategy, settings.horizon)
    rows = backtest(price_panel(prices), model, settings.backtest)
    return evaluate(rows, settings.horizon, settings.thresholds, settings.backtest.min_price)


def train(prices: pd.DataFrame, settings: ModelSettings) -> TrainingResult:
    evaluation = evaluate_strategy(prices, settings)
    trained = build_trained_model(
        prices, FairPriceModel(settings.strategy, settings.horizon), settings.backtest
    )
    start, end = trained.data_window
    trained.info.update(
        {
            "metrics": evaluation.metrics,
            "signal_returns": evaluation.signals.reset_index().to_dict(orient="records"),
            "data_start": start,
            "data_end": end,
            "items": len(trained.items),
            "rows": len(trained.predictions),
        }
    )
    return TrainingResult(trained, evaluation, gate_failures(evaluation.metrics, settings.gate))
