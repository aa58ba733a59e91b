"""Step (optional): build a Bento from `bentofile.yaml`, only after a promotion.

The Bento carries the model the service class declares: the newest verified production
model of the store, selected by label (`service.store.declared_model_tag`), never
BentoML's `latest` pointer."""

from typing import Annotated, Any

from zenml import log_metadata, step

from pipelines.promotion import PromotionDecision
from pipelines.training_flow import build_bento as build_bento_after_promotion


@step
def build_bento(
    model_tag: str, promotion_decision: dict[str, Any]
) -> Annotated[str | None, "bento_tag"]:
    """Offline-capable (pinned packages, no lock step); nothing after a losing challenger."""
    tag = build_bento_after_promotion(PromotionDecision.from_dict(promotion_decision))
    log_metadata({"bento": tag or f"skipped: {model_tag} was not promoted"})
    return tag
