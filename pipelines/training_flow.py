"""The training flow's steps as plain functions.

The ZenML pipeline (`pipelines.training`) runs each in its own step; `pokewatch train` runs
the same functions in the same order without ZenML:

    gather -> validate -> fit -> evaluate (an MLflow run, always) -> gate -> register
           -> publish (score the production model, `pipelines.daily`) -> [Bento]

`evaluate` decides champion/challenger only for a model that passed the gate, and writes
the MLflow run either way, so a failed model leaves its numbers behind. `register` saves a
winner as production and a loser as a rejected challenger; a Bento is built only after a
promotion (`pipelines.steps.build_bento`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from model.schema import ValidatedPrices
from model.training import TrainingResult, train
from pipelines.history import gather_history, validate_history
from pipelines.progress import Steps
from pipelines.promotion import PromotionDecision, decide
from pipelines.publishing import Published, score_and_publish
from pipelines.settings import PipelineSettings
from service.store import Stage, Store


class GateFailedError(RuntimeError):
    """The trained model failed the validation gate (`model.gate`)."""


@dataclass(frozen=True)
class Evaluated:
    decision: PromotionDecision | None  # None: the model failed the gate
    mlflow_run_id: str


def gather(settings: PipelineSettings, data: Path | None = None) -> pd.DataFrame:
    return gather_history(settings, data)


def validate(raw: pd.DataFrame, settings: PipelineSettings) -> ValidatedPrices:
    checked = validate_history(raw, settings)
    if checked.valid.empty:
        raise ValueError(f"no valid price rows to train on: {checked.summary()}")
    return checked


def fit(prices: pd.DataFrame, settings: PipelineSettings) -> TrainingResult:
    return train(prices, settings.model)


def evaluate(
    result: TrainingResult,
    prices: pd.DataFrame,
    settings: PipelineSettings,
    store: Store,
    run_name: str | None = None,
    params: dict[str, Any] | None = None,
) -> Evaluated:
    # Imported here: MLflow takes seconds to import, and only training needs it.
    from pipelines.tracking import log_training, tracking_run

    decision = (
        decide(result, prices, settings.model, settings.promotion, store.registry)
        if result.passed
        else None
    )
    with tracking_run(settings.mlflow, run_name=run_name) as run_id:
        log_training(result, settings.model, decision, params)
    return Evaluated(decision, run_id)


def gate(result: TrainingResult, evaluated: Evaluated) -> PromotionDecision:
    """The promotion decision of a model that passed the gate; raises GateFailedError."""
    if evaluated.decision is None:
        raise GateFailedError("; ".join(result.gate_failures))
    return evaluated.decision


def register(
    result: TrainingResult,
    decision: PromotionDecision,
    mlflow_run_id: str,
    settings: PipelineSettings,
    store: Store,
    metadata: dict[str, Any] | None = None,
) -> str:
    from pipelines.tracking import log_registration, tracking_run

    stage = Stage.PRODUCTION if decision.promote else Stage.REJECTED
    tag = store.registry.save(
        result.trained,
        stage,
        {"mlflow_run_id": mlflow_run_id, "promotion": decision.as_dict(), **(metadata or {})},
    )
    with tracking_run(settings.mlflow, run_id=mlflow_run_id):
        log_registration(tag, stage)
    return tag


def build_bento(decision: PromotionDecision) -> str | None:
    """A Bento of this checkout after a promotion (None after a losing challenger): it
    carries the production model the service class declares, selected by label."""
    if not decision.promote:
        return None
    import bentoml

    from pipelines.settings import PROJECT_ROOT

    bento = bentoml.bentos.build_bentofile(
        str(PROJECT_ROOT / "bentofile.yaml"), build_ctx=str(PROJECT_ROOT)
    )
    return str(bento.tag)


@dataclass(frozen=True)
class Trained:
    result: TrainingResult
    decision: PromotionDecision
    tag: str
    published: Published | None  # the production model's answers after registration


def train_and_register(
    settings: PipelineSettings,
    store: Store,
    data: Path | None = None,
    steps: Steps | None = None,
) -> Trained:
    """The flow without ZenML (`pokewatch train`, and the daily job's first run on an empty
    store); raises GateFailedError after the MLflow run is written."""
    steps = steps or Steps.silent()
    steps.step("gathering the price history")
    raw = gather(settings, data)
    steps.step("validating")
    prices = validate(raw, settings).valid
    steps.step(f"fitting and backtesting {settings.model.strategy} on {len(prices)} rows")
    result = fit(prices, settings)
    steps.step("evaluating against the production model")
    evaluated = evaluate(result, prices, settings, store, run_name="pokewatch-train")
    decision = gate(result, evaluated)
    steps.step("registering")
    tag = register(result, decision, evaluated.mlflow_run_id, settings, store)
    steps.step("scoring and publishing the production model")
    published = score_and_publish(settings, store) if decision.promote else None
    return Trained(result, decision, tag, published)
