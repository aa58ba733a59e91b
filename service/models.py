"""Which fair-price model the service answers from, and swapping it while serving.

The configured tag `name:latest` means "the newest model of that name whose `stage`
label is `production`" (a losing challenger is never served); a tag with a version pins
exactly that model and turns reloading off. Each worker re-checks the store every
`service.reload_seconds` and swaps in a newly promoted model atomically: requests in
flight finish on the model they started with, and cache keys carry the model tag, so no
old answer is served as new.
"""

from __future__ import annotations

import asyncio
import gc
import logging
from collections.abc import Callable
from pathlib import Path

import bentoml
from bentoml.exceptions import NotFound

from model.artifact import load_trained_model
from model.predictor import Predictor
from model.signals import SignalThresholds

logger = logging.getLogger("pokewatch.models")

# What pipelines/registry.py labels the models it saves with.
STAGE_LABEL = "stage"
PRODUCTION_STAGE = "production"


def newest_production(name: str) -> bentoml.Model | None:
    """The newest model of that name labelled `stage=production`, or None."""
    try:
        models = bentoml.models.list(name)
    except NotFound:
        return None
    production = [m for m in models if m.info.labels.get(STAGE_LABEL) == PRODUCTION_STAGE]
    return max(production, key=lambda m: m.info.creation_time, default=None)


def select_model_tag(configured: str) -> str | None:
    """The tag to serve for the configured one, or None when the store has no such model."""
    name, _, version = configured.partition(":")
    if version and version != "latest":
        return configured
    newest = newest_production(name)
    return str(newest.tag) if newest else None


def load_predictor(tag: str, thresholds: SignalThresholds) -> Predictor:
    stored = bentoml.models.get(tag)
    return Predictor(load_trained_model(Path(stored.path)), str(stored.tag), thresholds)


class ModelWatcher:
    """Polls the store and calls `swap` with a predictor for each newly selected model."""

    def __init__(
        self,
        configured: str,
        thresholds: SignalThresholds,
        current: Callable[[], str | None],
        swap: Callable[[Predictor], None],
    ) -> None:
        self.configured = configured
        self.thresholds = thresholds
        self.current = current
        self.swap = swap
        self.pinned = configured.partition(":")[2] not in ("", "latest")

    async def check(self) -> bool:
        """Load and swap in the selected model if it changed; whether it did."""
        tag = await asyncio.to_thread(select_model_tag, self.configured)
        if tag is None or tag == self.current():
            return False
        try:
            predictor = await asyncio.to_thread(load_predictor, tag, self.thresholds)
        except Exception:
            logger.exception("could not load %s; still serving %s", tag, self.current())
            return False
        previous = self.current()
        self.swap(predictor)
        gc.collect()
        gc.freeze()
        logger.warning("now serving %s (was %s)", tag, previous)
        return True

    async def run(self, every_seconds: float) -> None:
        while True:
            await asyncio.sleep(every_seconds)
            try:
                await self.check()
            except Exception:
                logger.exception("model check failed; will retry")
