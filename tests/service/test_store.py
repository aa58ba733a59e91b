"""The store contract: stages, checksums, selection by label, publications, the jobs file."""

from __future__ import annotations

import json
import shutil
import threading
from dataclasses import replace
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from model.artifact import PREDICTIONS_FILE, TrainedModel
from model.scoring import score
from service.store import (
    MANIFEST,
    JobsFile,
    ModelRegistry,
    Publications,
    Stage,
    Store,
    StoreError,
)
from tests.model.conftest import SMALL_PRICES, make_prices


def corrupt(path: Path) -> None:
    path.write_bytes(path.read_bytes()[:-10] + b"0123456789")


def test_a_saved_model_verifies_and_a_tampered_one_is_skipped(
    store: Store, trained: TrainedModel
) -> None:
    registry = store.registry
    older = registry.save(trained, Stage.PRODUCTION)
    newer = registry.save(trained, Stage.PRODUCTION)
    assert [model.tag for model in registry.production()] == [newer, older]
    assert registry.problems(registry.get(newer)) == []
    chosen = registry.newest_production()
    assert chosen is not None
    assert chosen.tag == newer

    corrupt(registry.get(newer).path / PREDICTIONS_FILE)
    assert registry.problems(registry.get(newer)) == [
        f"{PREDICTIONS_FILE} does not match its recorded checksum"
    ]
    fallback = registry.newest_production()
    assert fallback is not None
    assert fallback.tag == older


def test_a_half_saved_model_is_never_selected(store: Store, trained: TrainedModel) -> None:
    registry = store.registry
    good = registry.save(trained, Stage.PRODUCTION)
    torn = registry.save(trained, Stage.PRODUCTION)
    (registry.get(torn).path / PREDICTIONS_FILE).unlink()  # killed before this file was copied
    # A version directory without BentoML's model.yaml (killed even earlier) is skipped too.
    (registry.root / registry.name / "halfway").mkdir()
    assert [model.tag for model in registry.models()] == [torn, good]
    assert registry.problems(registry.get(torn)) == [f"{PREDICTIONS_FILE} is missing"]
    chosen = registry.newest_production()
    assert chosen is not None
    assert chosen.tag == good


def test_selection_is_by_label_never_by_bentomls_latest_pointer(
    store: Store, trained: TrainedModel
) -> None:
    registry = store.registry
    production = registry.save(trained, Stage.PRODUCTION)
    rejected = registry.save(trained, Stage.REJECTED)
    latest = (registry.root / registry.name / "latest").read_text().strip()
    assert rejected.endswith(latest)  # what BentoModel("name:latest") would pack
    selection = store.select()
    assert selection is not None
    assert selection.model.tag == production


def test_promote_copies_and_refuses_an_unusable_model(store: Store, trained: TrainedModel) -> None:
    registry = store.registry
    rejected = registry.save(trained, Stage.REJECTED)
    promoted = registry.promote(rejected)
    copy = registry.get(promoted)
    assert (copy.stage, copy.metadata["promoted_from"]) == (Stage.PRODUCTION, rejected)
    assert registry.problems(copy) == []
    corrupt(registry.get(rejected).path / PREDICTIONS_FILE)
    with pytest.raises(StoreError, match="cannot be promoted"):
        registry.promote(rejected)
    with pytest.raises(StoreError, match="no model"):
        registry.promote("pokewatch-fair-price:doesnotexist")


def test_the_shared_store_wins_over_the_bundled_model(
    store: Store, trained: TrainedModel, tmp_path: Path
) -> None:
    bundled = ModelRegistry.at(tmp_path / "bento-models")
    bundled_tag = bundled.save(trained, Stage.PRODUCTION)
    both = replace(store, fallbacks=[bundled])
    first = both.select()
    assert first is not None
    assert (first.model.tag, first.registry) == (bundled_tag, bundled)
    shared = store.registry.save(trained, Stage.PRODUCTION)
    second = both.select()
    assert second is not None
    assert second.model.tag == shared
    pinned = both.select(pinned=bundled_tag)
    assert pinned is not None
    assert pinned.model.tag == bundled_tag


def test_publications_are_atomic_deduplicated_verified_and_pruned(
    store: Store, trained: TrainedModel
) -> None:
    tag = store.registry.save(trained, Stage.PRODUCTION)
    publications = store.publications
    assert publications.newest(tag) is None
    day_one = publications.publish(tag, trained, datetime(2026, 12, 1, 3, tzinfo=UTC))
    assert day_one.id.startswith(f"{tag}@2024-01-05.20261201T030000")
    assert publications.publish(tag, trained) == day_one  # unchanged: not published again
    later = replace(trained, info={**trained.info, "data_as_of": "2024-01-06"})
    day_two = publications.publish(tag, score(later, make_prices(SMALL_PRICES)))
    assert day_two != day_one
    assert publications.newest(tag) == day_two
    loaded = publications.load(day_two)
    assert loaded.info["published"] == day_two.id
    assert loaded.info["model_tag"] == tag

    # A corrupt newest publication falls back to the one before; a torn one is invisible.
    corrupt(day_two.path / PREDICTIONS_FILE)
    assert publications.newest(tag) == day_one
    partial = day_one.path.parent / ".2030-01-01.x.partial"
    shutil.copytree(day_one.path, partial)
    (partial / MANIFEST).unlink()
    assert publications.newest(tag) == day_one
    assert publications.prune(tag, keep=1, max_partial_age_seconds=0) == 2
    assert [publication.id for publication in publications.all(tag)] == [day_two.id]
    assert not partial.exists()


def test_jobs_file_keeps_last_success_and_failure_per_job(tmp_path: Path) -> None:
    jobs = JobsFile(tmp_path / "state" / "jobs.json")
    assert jobs.read() == {}
    jobs.record("collect", True, "12 rows", now=datetime(2026, 12, 1, 3, tzinfo=UTC))
    jobs.record("collect", False, "503", now=datetime(2026, 12, 2, 3, tzinfo=UTC))
    run = jobs.read()["collect"]
    assert run.last_success == datetime(2026, 12, 1, 3, tzinfo=UTC)
    assert run.last_failure == datetime(2026, 12, 2, 3, tzinfo=UTC)
    assert run.detail == "503"
    # Concurrent jobs (daily and retrain) never lose each other's record.
    threads = [threading.Thread(target=jobs.record, args=(f"job{k}", True)) for k in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert {f"job{k}" for k in range(20)} <= set(jobs.read())
    # An unreadable file reads as no runs (the next record rewrites it).
    jobs.path.write_text("{not json")
    assert jobs.read() == {}
    jobs.record("score", True)
    assert set(json.loads(jobs.path.read_text())) == {"score"}


def test_data_day_of_a_publication(store: Store, trained: TrainedModel) -> None:
    tag = store.registry.save(trained, Stage.PRODUCTION)
    publication = store.publications.publish(tag, trained)
    assert publication.data_as_of == date(2024, 1, 5)


def test_what_the_jobs_write_the_api_can_read_as_another_user(
    store: Store, trained: TrainedModel
) -> None:
    tag = store.registry.save(trained, Stage.PRODUCTION)
    saved = store.registry.get(tag).path
    assert saved.stat().st_mode & 0o777 == 0o755
    assert {path.stat().st_mode & 0o777 for path in saved.iterdir()} == {0o644}
    publication = store.publications.publish(tag, trained)
    assert {path.stat().st_mode & 0o777 for path in publication.path.iterdir()} == {0o644}
    store.jobs.record("daily", True)
    assert store.jobs.path.stat().st_mode & 0o777 == 0o644


def test_a_store_the_jobs_have_not_written_yet_selects_nothing(tmp_path: Path) -> None:
    """An API pod may start before the first job run: a missing (read-only) store is empty."""
    missing = Store(
        ModelRegistry.at(tmp_path / "absent" / "models"),
        Publications(tmp_path / "absent" / "published"),
        JobsFile(tmp_path / "absent" / "jobs.json"),
    )
    assert missing.select() is None
    assert missing.jobs.read() == {}
    assert not (tmp_path / "absent").exists()
