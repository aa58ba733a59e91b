"""Step: log the evaluation to MLflow, fail a gated model, and decide on promotion.

The MLflow run is written before the gate is applied, so a failed model leaves its
numbers behind; then the step fails, and the pipeline run with it, naming each failure.
"""

from typing import Annotated, Any

import pandas as pd
from zenml import get_step_context, log_metadata, step

from model.settings import load_settings
from model.training import TrainingResult
from pipelines.promotion import decide
from pipelines.settings import PipelineSettings
from pipelines.tracking import log_training, tracking_run


class GateFailedError(RuntimeError):
    """The trained model failed the validation gate (`model.gate`)."""


@step
def evaluate_model(
    training_result: TrainingResult, prices: pd.DataFrame
) -> tuple[Annotated[dict[str, Any], "promotion_decision"], Annotated[str, "mlflow_run_id"]]:
    settings = load_settings(PipelineSettings)
    run = get_step_context().pipeline_run
    decision = (
        decide(training_result, prices, settings.model, settings.promotion)
        if training_result.passed
        else None
    )
    with tracking_run(settings.mlflow, run_name=run.name) as mlflow_run_id:
        log_training(
            training_result,
            settings.model,
            decision,
            {"zenml.pipeline_run_id": str(run.id), "zenml.pipeline_run": run.name},
        )
    if decision is None:
        raise GateFailedError("; ".join(training_result.gate_failures))
    log_metadata({"decision": decision.summary(), **decision.as_dict()})
    return decision.as_dict(), mlflow_run_id
