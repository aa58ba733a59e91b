"""Step (optional): build a Bento from `bentofile.yaml`, only after a promotion.

The Bento carries the model the service class declares: the newest verified production
model of the store, selected by label (`service.store.declared_model_tag`), never
BentoML's `latest` pointer."""

from typing import Annotated, Any

import bentoml
from zenml import log_metadata, step

from pipelines.settings import PROJECT_ROOT


@step
def build_bento(
    model_tag: str, promotion_decision: dict[str, Any]
) -> Annotated[str | None, "bento_tag"]:
    """Offline-capable (pinned packages, no lock step); nothing after a losing challenger."""
    if not promotion_decision["promote"]:
        log_metadata({"skipped": f"{model_tag} was not promoted"})
        return None
    bento = bentoml.bentos.build_bentofile(
        str(PROJECT_ROOT / "bentofile.yaml"), build_ctx=str(PROJECT_ROOT)
    )
    return str(bento.tag)
