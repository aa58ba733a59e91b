"""What the two reference apps share: settings, the model from the store, the queries."""

from __future__ import annotations

import os
from pathlib import Path

import orjson

from model.artifact import load_trained_model
from model.predictor import Predictor
from service.settings import ServiceSettings


def load_predictor(settings: ServiceSettings) -> Predictor:
    """The service's model (`service.model_tag`) from the BentoML store, as PokeWatch loads it."""
    import bentoml

    stored = bentoml.models.get(settings.service.model_tag)
    trained = load_trained_model(Path(stored.path))
    return Predictor(trained, str(stored.tag), settings.model.thresholds)


def query_bodies() -> list[bytes]:
    """The request bodies the load generator sends (one JSON object a line)."""
    path = Path(os.environ["BENCH_QUERIES"])
    return [line for line in path.read_bytes().splitlines() if line]


def parse(body: bytes) -> tuple[str, str | None]:
    query = orjson.loads(body)
    return query["card_id"], query.get("date")
