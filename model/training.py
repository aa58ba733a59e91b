"""Fit, evaluate out of sample, and gate a fair-price model (what `pokewatch train` runs).

The out-of-sample fair prices and band are computed once (`out_of_sample`, the expensive
part for a fitted strategy) and used both for the evaluation and for the artifact.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from model.artifact import TrainedModel, build_trained_model
from model.evaluation import Evaluation, backtest, evaluate, gate_failures, out_of_sample
from model.features import Panels, price_panels
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


def evaluate_panel(panels: Panels, settings: ModelSettings, model: FairPriceModel) -> Evaluation:
    """Backtest `model` on price panels and score it with the settings' rule and cut-offs."""
    rows = backtest(panels, model, settings.backtest, settings.band)
    return evaluate(rows, model.horizon, settings.thresholds, settings.backtest.min_price)


def evaluate_strategy(
    prices: pd.DataFrame, settings: ModelSettings, strategy: str | None = None
) -> Evaluation:
    return evaluate_panel(price_panels(prices), settings, settings.model_for(strategy))


def train(prices: pd.DataFrame, settings: ModelSettings) -> TrainingResult:
    panels = price_panels(prices)
    model = settings.model_for()
    computed = out_of_sample(panels, model, settings.backtest, settings.band)
    rows = backtest(panels, model, settings.backtest, settings.band, computed)
    evaluation = evaluate(rows, model.horizon, settings.thresholds, settings.backtest.min_price)
    trained = build_trained_model(prices, model, settings.backtest, settings.band, computed)
    start, end = trained.data_window
    trained.info.update(
        {
            "metrics": evaluation.metrics,
            "signal_rule": settings.thresholds.model_dump(mode="json"),
            "signal_returns": evaluation.signals.reset_index().to_dict(orient="records"),
            "data_start": start,
            "data_end": end,
            "items": len(trained.items),
            "rows": len(trained.predictions),
        }
    )
    return TrainingResult(trained, evaluation, gate_failures(evaluation.metrics, settings.gate))
