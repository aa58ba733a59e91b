"""Step (optional): build a Bento from `bentofile.yaml` with BentoML's build API."""

from typing import Annotated

import bentoml
from zenml import step

from pipelines.settings import PROJECT_ROOT


@step
def build_bento(model_tag: str) -> Annotated[str, "bento_tag"]:
    """Offline-capable (pinned packages, no lock step); `model_tag` orders it after
    registration, so the Bento carries the store's newest production model."""
    bento = bentoml.bentos.build_bentofile(
        str(PROJECT_ROOT / "bentofile.yaml"), build_ctx=str(PROJECT_ROOT)
    )
    return str(bento.tag)
