"""Step: score the production model on the full history and publish its answers (after a
promotion, the new model's; after a losing challenger, the unchanged ones again: a no-op)."""

from typing import Annotated

from zenml import log_metadata, step

from model.settings import load_settings
from pipelines.publishing import score_and_publish
from pipelines.settings import PipelineSettings
from service.store import Store


@step
def publish_answers(model_tag: str) -> Annotated[str, "publication"]:
    """`model_tag` (the registered model) orders this step after registration."""
    settings = load_settings(PipelineSettings)
    published = score_and_publish(settings, Store.from_settings(settings.store))
    log_metadata({"summary": published.summary(), "registered": model_tag})
    return published.publication.id
