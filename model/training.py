"""Fit, evaluate out of sample, and gate a fair-price model (what `pokewatch train` runs).

The out-of-sample fair prices and band are computed once (`out_of_sample`, the expensive
part for a fitted strategy) and used both for the evaluation and for the artifact.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from model.artifact import TrainedModel, build_trained_model
from model.evaluation import Evaluation, evaluate_out_of_sample, gate_failures
from model.features import price_panels
from model.settings import ModelSettings


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
    """Backtest a strategy (the configured one by default) on the prices and score it with
    the settings' rule and cut-offs."""
    model = settings.model_for(strategy)
    return evaluate_out_of_sample(
        price_panels(prices), model, settings.backtest, settings.band, settings.thresholds
    ).evaluation


def train(prices: pd.DataFrame, settings: ModelSettings) -> TrainingResult:
    panels = price_panels(prices)
    model = settings.model_for()
    run = evaluate_out_of_sample(
        panels, model, settings.backtest, settings.band, settings.thresholds
    )
    evaluation = run.evaluation
    trained = build_trained_model(prices, model, settings.backtest, settings.band, run.computed)
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
