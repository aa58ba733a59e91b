"""The BentoML model store: saving trained models, stages, and reading them back.

A model's `stage` label says what it is for. The service (and `pokewatch predict`) use
the newest model whose stage is `production`; a challenger that lost to the production
model is kept as `challenger-rejected` for the record and never served. Versions are
never relabelled: promoting an older version (a rollback) saves a new production copy.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import bentoml
from bentoml.exceptions import NotFound

from model.artifact import MODEL_NAME, TrainedModel, load_trained_model, save_trained_model
from model.training import TrainingResult
from service.models import PRODUCTION_STAGE, STAGE_LABEL, newest_production

REJECTED_STAGE = "challenger-rejected"


def save_to_store(
    result: TrainingResult,
    name: str = MODEL_NAME,
    stage: str = PRODUCTION_STAGE,
    extra_metadata: dict[str, Any] | None = None,
) -> str:
    """Save a trained model; returns its tag. Labels are searchable, metadata is the record."""
    trained = result.trained
    start, end = trained.data_window
    labels = {
        "strategy": trained.model.strategy,
        "horizon": str(trained.model.horizon),
        "feature_schema_version": str(trained.info["feature_schema_version"]),
        "data_end": end,
        STAGE_LABEL: stage,
    }
    metadata = {
        "metrics": result.evaluation.metrics,
        "data_start": start,
        "data_end": end,
        "items": len(trained.items),
        "strategy": trained.model.strategy,
        "params": trained.model.params,
        **(extra_metadata or {}),
    }
    with bentoml.models.create(name, labels=labels, metadata=metadata) as stored:
        save_trained_model(trained, Path(stored.path))
    return str(stored.tag)


def production_model(name: str = MODEL_NAME) -> bentoml.Model | None:
    """The newest model labelled `stage=production` (what the service serves), or None."""
    return newest_production(name)


def promote(tag: str) -> str:
    """Make a stored version the production model by saving a production copy of it."""
    source = bentoml.models.get(tag)
    labels = {**source.info.labels, STAGE_LABEL: PRODUCTION_STAGE}
    metadata = {**source.info.metadata, "promoted_from": str(source.tag)}
    with bentoml.models.create(source.tag.name, labels=labels, metadata=metadata) as copy:
        for entry in Path(source.path).iterdir():
            if entry.is_file() and entry.name != "model.yaml":
                shutil.copy2(entry, Path(copy.path) / entry.name)
    return str(copy.tag)


def load_from_store(tag: str | None = None) -> tuple[str, TrainedModel]:
    """A model by tag, by default the production one."""
    stored = bentoml.models.get(tag) if tag else production_model()
    if stored is None:
        raise NotFound(f"no {MODEL_NAME} model labelled {STAGE_LABEL}={PRODUCTION_STAGE}")
    return str(stored.tag), load_trained_model(Path(stored.path))


def has_model() -> bool:
    """Whether a production model exists."""
    return production_model() is not None
