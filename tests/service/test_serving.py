"""What a worker serves: fallback at start, swaps on a new model or day, freshness gauges."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest
from prometheus_client import REGISTRY

from model.artifact import PREDICTIONS_FILE, TrainedModel
from model.settings import load_settings
from service.serving import Serving
from service.settings import ServiceSettings
from service.store import Stage, Store
from tests.service.test_store import corrupt

NOW = datetime(2024, 1, 6, 12, tzinfo=UTC)


def serving(store: Store, now: datetime = NOW) -> Serving:
    return Serving(load_settings(ServiceSettings), store, None, clock=lambda: now)


def gauge(name: str, **labels: str) -> float | None:
    return REGISTRY.get_sample_value(name, labels)


def test_a_corrupt_newest_model_falls_back_at_start(
    store: Store, trained: TrainedModel, caplog: pytest.LogCaptureFixture
) -> None:
    good = store.registry.save(trained, Stage.PRODUCTION)
    bad = store.registry.save(trained, Stage.PRODUCTION)
    corrupt(store.registry.get(bad).path / PREDICTIONS_FILE)
    with caplog.at_level(logging.ERROR, "pokewatch.store"):
        worker = serving(store)
        worker.start()
        worker.update_gauges()
    assert worker.ready
    assert worker.answers is not None
    assert worker.answers.model_version == good
    assert gauge("pokewatch_model_fallback") == 1.0
    assert sum("does not match its recorded checksum" in r.message for r in caplog.records) == 1


def test_a_model_that_does_not_load_is_skipped_once(
    store: Store, trained: TrainedModel, caplog: pytest.LogCaptureFixture
) -> None:
    good = store.registry.save(trained, Stage.PRODUCTION)
    store.registry.save(replace(trained, info={**trained.info, "format": 0}), Stage.PRODUCTION)
    worker = serving(store)
    with caplog.at_level(logging.ERROR, "pokewatch.serving"):
        worker.start()
        assert not asyncio.run(worker.check())  # not retried, nothing new
    assert worker.answers is not None
    assert worker.answers.model_version == good
    assert sum("cannot load" in record.message for record in caplog.records) == 1


def test_no_usable_model_means_not_ready(store: Store, trained: TrainedModel) -> None:
    bad = store.registry.save(trained, Stage.PRODUCTION)
    corrupt(store.registry.get(bad).path / PREDICTIONS_FILE)
    worker = serving(store)
    worker.start()
    assert not worker.ready


def test_a_new_publication_and_a_new_model_are_swapped_in(
    store: Store, trained: TrainedModel
) -> None:
    first = store.registry.save(trained, Stage.PRODUCTION)
    worker = serving(store)
    worker.start()
    assert worker.published is None
    assert not asyncio.run(worker.check())

    published = store.publications.publish(first, trained)
    assert asyncio.run(worker.check())
    assert worker.published == published.id
    assert worker.answers is not None
    assert worker.answers.version == published.id  # cache keys follow the table

    second = store.registry.save(trained, Stage.PRODUCTION)
    store.registry.save(trained, Stage.REJECTED)  # a losing challenger is never served
    assert asyncio.run(worker.check())
    assert worker.answers.model_version == second
    assert worker.published is None  # the new model's own table until it is published


def test_health_and_gauges_report_freshness_and_jobs(store: Store, trained: TrainedModel) -> None:
    store.registry.save(trained, Stage.PRODUCTION)
    store.jobs.record("daily", True, now=datetime(2024, 1, 6, 3, tzinfo=UTC))
    worker = serving(store, now=datetime(2024, 1, 7, 13, tzinfo=UTC))
    worker.start()
    health = worker.health()
    assert (health["data_as_of"], health["data_age_hours"], health["stale"]) == (
        "2024-01-05",
        37.0,
        True,
    )
    assert health["jobs"]["daily"]["last_success"] == "2024-01-06T03:00:00Z"
    assert health["data_start"] == "2024-01-01"
    assert gauge("pokewatch_data_age_seconds") == 37 * 3600
    assert (
        gauge("pokewatch_data_as_of_timestamp_seconds")
        == datetime(2024, 1, 6, tzinfo=UTC).timestamp()
    )
    assert (
        gauge("pokewatch_job_last_success_timestamp_seconds", job="daily")
        == datetime(2024, 1, 6, 3, tzinfo=UTC).timestamp()
    )


def test_stale_answers_are_cached_apart_from_fresh_ones(
    store: Store, trained: TrainedModel, tmp_path: Path
) -> None:
    import orjson

    from service.answers import build_cache

    store.registry.save(trained, Stage.PRODUCTION)
    settings = load_settings(ServiceSettings)
    clock = [datetime(2024, 1, 6, 1, tzinfo=UTC)]
    worker = Serving(settings, store, build_cache(settings.cache, None), clock=lambda: clock[0])
    worker.start()
    assert worker.answers is not None
    fresh = asyncio.run(worker.answers.fair_price("a", None))
    clock[0] = datetime(2024, 1, 9, tzinfo=UTC)
    stale = asyncio.run(worker.answers.fair_price("a", None))
    assert orjson.loads(fresh[1])["stale"] is False
    assert orjson.loads(stale[1])["stale"] is True


def test_catalogs_of_earlier_tables_stay_reachable(store: Store, trained: TrainedModel) -> None:
    """A cursor made on a table that was replaced (here, or on another worker that this one
    never served) still finds that table's catalog; a table the store lost is gone."""
    model = store.registry.save(trained, Stage.PRODUCTION)
    worker = serving(store)
    worker.start()
    first = worker.answers
    assert first is not None
    day = store.publications.publish(model, trained)
    assert asyncio.run(worker.check())
    assert worker.answers is not None
    assert worker.answers.version == day.id
    # The table it served before is still there for cursors made on it.
    kept = asyncio.run(worker.catalog(model))
    assert kept is first.catalog
    # A worker that never served the publication loads it from the store.
    other = serving(store)
    other.catalogs.clear()
    loaded = asyncio.run(other.catalog(day.id))
    assert loaded is not None
    assert (loaded.version, len(loaded)) == (day.id, len(first.catalog))
    assert asyncio.run(other.catalog(f"{model}@2020-01-01.gone")) is None
    assert asyncio.run(other.catalog("pokewatch-fair-price:no-such-model")) is None
