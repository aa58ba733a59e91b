"""Step: save the model to the BentoML store, as production or as a rejected challenger."""

from typing import Annotated, Any

from zenml import get_step_context, log_metadata, step

from model.settings import load_settings
from model.training import TrainingResult
from pipelines.registry import REJECTED_STAGE, save_to_store
from pipelines.settings import PipelineSettings
from pipelines.tracking import log_registration, tracking_run
from service.models import PRODUCTION_STAGE


@step
def register_model(
    training_result: TrainingResult, promotion_decision: dict[str, Any], mlflow_run_id: str
) -> Annotated[str, "model_tag"]:
    settings = load_settings(PipelineSettings)
    stage = PRODUCTION_STAGE if promotion_decision["promote"] else REJECTED_STAGE
    run = get_step_context().pipeline_run
    tag = save_to_store(
        training_result,
        stage=stage,
        extra_metadata={
            "pipeline_run_id": str(run.id),
            "pipeline_run": run.name,
            "mlflow_run_id": mlflow_run_id,
            "promotion": promotion_decision,
        },
    )
    with tracking_run(settings.mlflow, run_id=mlflow_run_id):
        log_registration(tag, stage)
    log_metadata({"model_tag": tag, "stage": stage})
    return tag
