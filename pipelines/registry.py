"""The BentoML model store: saving trained models and reading them back."""

from __future__ import annotations

from pathlib import Path

import bentoml
from bentoml.exceptions import NotFound

from model.artifact import MODEL_NAME, TrainedModel, load_trained_model, save_trained_model
from model.training import TrainingResult


def save_to_store(result: TrainingResult, name: str = MODEL_NAME) -> str:
    """Save a trained model; returns its tag. Labels are searchable, metadata is the record."""
    trained = result.trained
    start, end = trained.data_window
    labels = {
        "strategy": trained.model.strategy,
        "horizon": str(trained.model.horizon),
        "feature_schema_version": str(trained.info["feature_schema_version"]),
        "data_end": end,
    }
    metadata = {
        "metrics": result.evaluation.metrics,
        "data_start": start,
        "data_end": end,
        "items": len(trained.items),
        "strategy": trained.model.strategy,
        "params": trained.model.params,
    }
    with bentoml.models.create(name, labels=labels, metadata=metadata) as stored:
        save_trained_model(trained, Path(stored.path))
    return str(stored.tag)


def load_from_store(tag: str = f"{MODEL_NAME}:latest") -> tuple[str, TrainedModel]:
    stored = bentoml.models.get(tag)
    return str(stored.tag), load_trained_model(Path(stored.path))


def has_model(tag: str = f"{MODEL_NAME}:latest") -> bool:
    try:
        bentoml.models.get(tag)
    except NotFound:
        return False
    return True
