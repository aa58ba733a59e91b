"""What the two reference apps share: settings, the model from the store, the queries."""

from __future__ import annotations

import os
from pathlib import Path

import orjson

from model.predictor import Predictor
from service.serving import Serving
from service.settings import ServiceSettings
from service.store import Store


def load_predictor(settings: ServiceSettings) -> Predictor:
    """What a PokeWatch worker serves, chosen by the worker's own code (`Serving.start`):
    the pinned `service.model_tag`, else the newest verified production model, with its
    newest published day; one that does not load is skipped for the next."""
    model_name = settings.service.model_tag.partition(":")[0]
    serving = Serving(settings, Store.from_settings(settings.store, model_name), cache=None)
    serving.start()
    if serving.answers is None:
        raise SystemExit(
            f"no usable production model in {serving.store.registry.root}: pokewatch train"
        )
    return serving.answers.predictor


def query_bodies() -> list[bytes]:
    """The request bodies the load generator sends (one JSON object a line)."""
    path = Path(os.environ["BENCH_QUERIES"])
    return [line for line in path.read_bytes().splitlines() if line]


def parse(body: bytes) -> tuple[str, str | None]:
    query = orjson.loads(body)
    return query["card_id"], query.get("date")
