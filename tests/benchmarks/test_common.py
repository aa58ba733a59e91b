"""The reference apps serve what a PokeWatch worker serves: the worker's own selection."""

from dataclasses import replace
from pathlib import Path

from benchmarks.common import load_predictor
from model.artifact import TrainedModel
from model.settings import load_settings
from service.serving import Serving
from service.settings import ServiceSettings, StoreSettings
from service.store import Stage, Store


def settings_for(store: Path, model_tag: str | None = None) -> ServiceSettings:
    settings = load_settings(ServiceSettings)
    service = settings.service
    if model_tag is not None:
        service = service.model_copy(update={"model_tag": model_tag})
    return settings.model_copy(update={"store": StoreSettings(path=store), "service": service})


def test_the_production_label_wins_over_latest_and_an_unloadable_model_is_skipped(
    tmp_path: Path, trained: TrainedModel
) -> None:
    store = Store.from_settings(StoreSettings(path=tmp_path))
    production = store.registry.save(trained, Stage.PRODUCTION)
    # Newer, but not served: BentoML's `latest` pointer names it.
    rejected = store.registry.save(trained, Stage.REJECTED)
    # The newest production model, in a format the worker cannot load.
    store.registry.save(replace(trained, info={**trained.info, "format": 0}), Stage.PRODUCTION)
    latest = (store.registry.root / store.registry.name / "latest").read_text().strip()
    assert not rejected.endswith(latest)  # the unloadable one is `latest` now
    settings = settings_for(tmp_path)
    worker = Serving(settings, Store.from_settings(settings.store), None)
    worker.start()
    assert worker.answers is not None
    assert worker.answers.model_version == production
    assert load_predictor(settings).model_version == production


def test_a_pinned_model_tag_is_served_whatever_its_label(
    tmp_path: Path, trained: TrainedModel
) -> None:
    store = Store.from_settings(StoreSettings(path=tmp_path))
    store.registry.save(trained, Stage.PRODUCTION)
    rejected = store.registry.save(trained, Stage.REJECTED)
    store.registry.save(trained, Stage.PRODUCTION)
    assert load_predictor(settings_for(tmp_path, rejected)).model_version == rejected
