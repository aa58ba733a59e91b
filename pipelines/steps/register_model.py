"""Step: save the model to the store, as production or as a rejected challenger."""

from typing import Annotated, Any

from zenml import get_step_context, log_metadata, step

from model.settings import load_settings
from model.training import TrainingResult
from pipelines.promotion import PromotionDecision
from pipelines.settings import PipelineSettings
from pipelines.training_flow import register
from service.store import Store


@step
def register_model(
    training_result: TrainingResult, promotion_decision: dict[str, Any], mlflow_run_id: str
) -> Annotated[str, "model_tag"]:
    settings = load_settings(PipelineSettings)
    run = get_step_context().pipeline_run
    tag = register(
        training_result,
        PromotionDecision.from_dict(promotion_decision),
        mlflow_run_id,
        settings,
        Store.from_settings(settings.store),
        {"pipeline_run_id": str(run.id), "pipeline_run": run.name},
    )
    log_metadata({"model_tag": tag, "promoted": promotion_decision["promote"]})
    return tag
