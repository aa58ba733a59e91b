"""Step: record the evaluation in MLflow, fail a gated model, decide on promotion.

The MLflow run is written before the gate is applied, so a failed model leaves its
numbers behind; then the step fails, and the pipeline run with it, naming each failure.
"""

from typing import Annotated, Any

import pandas as pd
from zenml import get_step_context, log_metadata, step

from model.settings import load_settings
from model.training import TrainingResult
from pipelines.settings import PipelineSettings
from pipelines.training_flow import evaluate, gate
from service.store import Store


@step
def evaluate_model(
    training_result: TrainingResult, prices: pd.DataFrame
) -> tuple[Annotated[dict[str, Any], "promotion_decision"], Annotated[str, "mlflow_run_id"]]:
    settings = load_settings(PipelineSettings)
    run = get_step_context().pipeline_run
    evaluated = evaluate(
        training_result,
        prices,
        settings,
        Store.from_settings(settings.store),
        run_name=run.name,
        params={"zenml.pipeline_run_id": str(run.id), "zenml.pipeline_run": run.name},
    )
    decision = gate(training_result, evaluated)
    log_metadata({"decision": decision.summary(), **decision.as_dict()})
    return decision.as_dict(), evaluated.mlflow_run_id
