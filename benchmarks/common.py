"""What the two reference apps share: settings, the model from the store, the queries."""

from __future__ import annotations

import os
from pathlib import Path

import orjson

from model.predictor import Predictor
from service.settings import ServiceSettings
from service.store import Store, pinned_tag


def load_predictor(settings: ServiceSettings) -> Predictor:
    """What PokeWatch serves: the store's selection (the production model and its newest
    published day, or the pinned `service.model_tag`)."""
    configured = settings.service.model_tag
    store = Store.from_settings(settings.store, configured.partition(":")[0])
    selection = store.select(pinned_tag(configured))
    if selection is None:
        raise SystemExit(f"no usable production model in {store.registry.root}: pokewatch train")
    return Predictor(
        store.table(selection),
        selection.model.tag,
        settings.model.thresholds,
        settings.model.min_observed_days,
    )


def query_bodies() -> list[bytes]:
    """The request bodies the load generator sends (one JSON object a line)."""
    path = Path(os.environ["BENCH_QUERIES"])
    return [line for line in path.read_bytes().splitlines() if line]


def parse(body: bytes) -> tuple[str, str | None]:
    query = orjson.loads(body)
    return query["card_id"], query.get("date")
