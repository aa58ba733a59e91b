"""What one worker answers from, kept current with the store while it serves.

At start and every `service.reload_seconds`, the worker asks the store (`service.store`)
for the selection (the production model and its newest published day) and, when that
changed, loads it in a thread and swaps it in: requests in flight finish on the table they
started with, and cache keys carry the table's version, so no old answer is served as new.
A selection that does not load is skipped (logged once) and the next one is tried, so a
corrupt newest model or publication never leaves a worker without answers while a good
one exists. Each check also refreshes the freshness and job gauges.

A worker also keeps the catalogs (`model.catalog`) of the last few tables it served, and
loads an older one from the store on demand, so a client paging with a cursor made on a
table that was since replaced (here or by another worker) still sees each item once.
"""

from __future__ import annotations

import asyncio
import gc
import logging
from collections import OrderedDict
from datetime import datetime
from typing import Any

from model.catalog import Catalog
from model.predictor import Predictor, end_of_day
from service.answers import Answers, Clock, utc_now
from service.cache import PredictionCache
from service.errors import model_unavailable
from service.metrics import service_metrics
from service.settings import ServiceSettings
from service.store import Selection, Store, pinned_tag

logger = logging.getLogger("pokewatch.serving")
# Catalogs kept per worker for cursors made on earlier tables (each holds one row per item).
RECENT_CATALOGS = 4
Loaded = tuple[Selection, Predictor, Catalog]


class Serving:
    def __init__(
        self,
        settings: ServiceSettings,
        store: Store,
        cache: PredictionCache | None,
        clock: Clock = utc_now,
    ) -> None:
        self.settings = settings
        self.store = store
        self.cache = cache
        self.clock = clock
        self.pinned = pinned_tag(settings.service.model_tag)
        self.answers: Answers | None = None
        self.selection: Selection | None = None
        # When the table served was swapped in (HTTP caching: `service.v1`).
        self.loaded_at: datetime | None = None
        self.catalogs: OrderedDict[str, Catalog] = OrderedDict()
        self._catalog_lock = asyncio.Lock()
        # Models and publications that failed to load: never tried again by this worker.
        self._failed: set[str] = set()
        self._watching: asyncio.Task[None] | None = None

    @property
    def ready(self) -> bool:
        return self.answers is not None

    def current(self) -> Answers:
        """The answers served now; `model_unavailable` (503) until a model is loaded."""
        answers = self.answers
        if answers is None:
            raise model_unavailable()
        return answers

    @property
    def published(self) -> str | None:
        """The publication served (None: the model's own table, or nothing)."""
        selection = self.selection
        return selection.publication.id if selection and selection.publication else None

    def _predictor(self, selection: Selection) -> tuple[Predictor, Catalog]:
        predictor = Predictor(
            self.store.table(selection),
            selection.model.tag,
            self.settings.model.thresholds,
            self.settings.model.min_observed_days,
        )
        return predictor, Catalog(predictor)

    def _prepare(self) -> Loaded | None:
        """The current selection loaded, when it differs from what is served (else None)."""
        while True:
            selection = self.store.select(self.pinned, frozenset(self._failed))
            if selection is None or (
                self.selection is not None and selection.version == self.selection.version
            ):
                return None
            try:
                predictor, catalog = self._predictor(selection)
            except Exception:
                logger.exception("cannot load %s; trying the next one", selection.version)
                self._failed.add(selection.version)
                continue
            return selection, predictor, catalog

    def _swap(self, prepared: Loaded) -> None:
        selection, predictor, catalog = prepared
        previous = self.selection.version if self.selection else None
        serving = service_metrics().serving
        if self.selection is not None:
            serving.labels(self.selection.model.tag).set(0)
        serving.labels(selection.model.tag).set(1)
        self.selection = selection
        self.answers = Answers(
            predictor, catalog, self.cache, self.settings.service.stale_after_hours, self.clock
        )
        self.loaded_at = self.clock()
        self._remember(catalog)
        # What is loaded now lives as long as it is served: keep it out of every collection.
        gc.collect()
        gc.freeze()
        logger.warning(
            "serving %s (%d items, data as of %s; was %s)",
            selection.version,
            len(predictor.table),
            predictor.data_as_of,
            previous,
        )

    def _remember(self, catalog: Catalog) -> None:
        self.catalogs[catalog.version] = catalog
        self.catalogs.move_to_end(catalog.version)
        while len(self.catalogs) > RECENT_CATALOGS:
            self.catalogs.popitem(last=False)

    async def catalog(self, version: str) -> Catalog | None:
        """The catalog of the table `version` names: a recent one, else loaded from the
        store (one load at a time); None when the store no longer has that table."""
        found = self.catalogs.get(version)
        if found is not None:
            return found
        async with self._catalog_lock:
            if version in self.catalogs:
                return self.catalogs[version]
            selection = await asyncio.to_thread(self.store.find, version)
            if selection is None:
                return None
            _, loaded = await asyncio.to_thread(self._predictor, selection)
            self._remember(loaded)
            return loaded

    def start(self) -> None:
        """Load what to serve now (at worker start); without one, /readyz fails."""
        prepared = self._prepare()
        if prepared is None:
            logger.error("no usable fair-price model in the store; /readyz will fail until one is")
        else:
            self._swap(prepared)
        self.update_gauges()

    async def check(self) -> bool:
        """Swap in a newly promoted model or published day; whether anything changed."""
        prepared = await asyncio.to_thread(self._prepare)
        if prepared is not None:
            self._swap(prepared)
        self.update_gauges()
        return prepared is not None

    def watch(self, every_seconds: float) -> None:
        """Check the store every `every_seconds` (0: never) until `close` (in the worker's
        event loop, at start-up)."""
        if every_seconds > 0:
            self._watching = asyncio.create_task(self._follow(every_seconds))

    async def close(self) -> None:
        """Stop watching the store; close the cache's Redis client."""
        if self._watching is not None:
            self._watching.cancel()
        if self.cache is not None and self.cache.redis is not None:
            await self.cache.redis.guard.close()

    async def _follow(self, every_seconds: float) -> None:
        while True:
            await asyncio.sleep(every_seconds)
            try:
                await self.check()
            except Exception:
                logger.exception("store check failed; will retry")

    def update_gauges(self) -> None:
        metrics = service_metrics()
        now = self.clock()
        if self.answers is not None:
            end = end_of_day(self.answers.predictor.data_as_of)
            metrics.data_as_of.set(end.timestamp())
            metrics.data_age.set(max(0.0, (now - end).total_seconds()))
        newest = self.store.registry.production() if self.pinned is None else []
        served = self.selection.model.tag if self.selection else None
        metrics.model_fallback.set(1 if newest and newest[0].tag != served else 0)
        for job, run in self.store.jobs.read().items():
            if run.last_success is not None:
                metrics.job_last_success.labels(job).set(run.last_success.timestamp())
            if run.last_failure is not None:
                metrics.job_last_failure.labels(job).set(run.last_failure.timestamp())

    def health(self) -> dict[str, Any]:
        """What is served, how fresh it is, and the jobs' last runs (needs `ready`)."""
        assert self.answers is not None
        predictor = self.answers.predictor
        info = predictor.info
        freshness = predictor.freshness(self.clock(), self.settings.service.stale_after_hours)
        health: dict[str, Any] = {
            "status": "ok",
            "model_version": predictor.model_version,
            "published": self.published,
            "strategy": info["strategy"],
            "horizon": info["horizon"],
            "items": len(predictor.table),
            "data_start": predictor.table.start_date().isoformat(),
            "data_end": predictor.table.last_date().isoformat(),
            "data_as_of": freshness.data_as_of.isoformat(),
            "data_age_hours": round(freshness.age_hours, 2),
            "stale": freshness.stale,
            "jobs": {
                job: run.model_dump(mode="json") for job, run in self.store.jobs.read().items()
            },
        }
        if self.cache is not None:
            health["cache"] = {tier: stats.as_dict() for tier, stats in self.cache.stats.items()}
        return health
