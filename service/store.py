"""The store: trained models and their published daily answers, shared by the jobs and the API.

One contract for both sides (the pipelines save, promote, score and publish; the service
selects and loads), so they cannot disagree about what "the production model" is:

    <store.path>/models/pokewatch-fair-price/<version>/           BentoML models
    <store.path>/pokewatch/published/<version>/<day>.<time>.<digest>/   published days
    <store.path>/pokewatch/jobs.json                                the jobs' last runs

`store.path` defaults to BentoML's home (`BENTOML_HOME`). A model's `stage` label says what
it is for: `production` (served) or `challenger-rejected` (kept for the record, never
served). *The production model* is the newest production model whose files match the
checksums recorded when it was saved: a corrupt or half-saved newest model is skipped (and
logged once), the one before it is used. Versions are never relabelled: promoting an older
version (a rollback) saves a new production copy.

A publication is one model's answers on the history up to one day (`model.scoring`),
written to a hidden directory and renamed into place, so a reader sees all of it or none.

Inside a served Bento, BentoML's own model store is the Bento's (its bundled model): the
service falls back to it while `store.path` holds no production model (a new deployment
answers from minute one and switches as soon as the jobs promote one).
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import os
import shutil
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

import bentoml
import pandas as pd
from bentoml._internal.configuration.containers import BentoMLContainer
from bentoml._internal.models.model import ModelStore
from pydantic import BaseModel, ConfigDict

from model.artifact import (
    INFO_FILE,
    ITEMS_FILE,
    MODEL_NAME,
    PREDICTIONS_FILE,
    TrainedModel,
    load_price_table,
    load_trained_model,
    save_trained_model,
)
from model.lookup import PriceTable
from service.files import atomic_write, fsync_directory
from service.settings import StoreSettings

logger = logging.getLogger("pokewatch.store")

STAGE_LABEL = "stage"
CHECKSUMS = "checksums"  # metadata: {file name: sha256} of the artifact when it was saved
MODEL_YAML = "model.yaml"  # BentoML's own record, rewritten by BentoML: not checksummed
REQUIRED_FILES = (INFO_FILE, ITEMS_FILE, PREDICTIONS_FILE)
MANIFEST = "manifest.json"


class Stage(StrEnum):
    PRODUCTION = "production"
    REJECTED = "challenger-rejected"


class StoreError(LookupError):
    """No such model or publication, or one that cannot be used."""


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def file_checksums(
    directory: Path, skip: frozenset[str] = frozenset({MODEL_YAML})
) -> dict[str, str]:
    return {
        path.name: sha256_file(path)
        for path in sorted(directory.iterdir())
        if path.is_file() and path.name not in skip
    }


def _fingerprint(directory: Path) -> tuple[tuple[str, int, int], ...]:
    """Names, sizes and modification times: what must not change for a check to stand."""
    try:
        entries = sorted(directory.iterdir())
    except OSError:
        return ()
    return tuple(
        (path.name, stat.st_size, stat.st_mtime_ns)
        for path in entries
        if path.is_file() and (stat := path.stat())
    )


class _Verifier:
    """Checksum verification, remembered until a file of the directory changes."""

    def __init__(self) -> None:
        self._seen: dict[Path, tuple[tuple[tuple[str, int, int], ...], tuple[str, ...]]] = {}
        self._reported: set[tuple[Path, tuple[str, ...]]] = set()

    def problems(self, directory: Path, recorded: Mapping[str, str] | None) -> list[str]:
        fingerprint = _fingerprint(directory)
        known = self._seen.get(directory)
        if known is not None and known[0] == fingerprint:
            return list(known[1])
        found: list[str] = []
        names = {entry[0] for entry in fingerprint}
        found += [f"{name} is missing" for name in REQUIRED_FILES if name not in names]
        for name, expected in (recorded or {}).items():
            if name not in names:
                if name not in REQUIRED_FILES:
                    found.append(f"{name} is missing")
                continue
            try:
                actual = sha256_file(directory / name)
            except OSError as error:
                found.append(f"{name} is unreadable: {error}")
                continue
            if actual != expected:
                found.append(f"{name} does not match its recorded checksum")
        self._seen[directory] = (fingerprint, tuple(found))
        if found and (directory, tuple(found)) not in self._reported:
            self._reported.add((directory, tuple(found)))
            logger.error("%s is not usable: %s", directory, "; ".join(found))
        return found


@dataclass(frozen=True)
class StoredModel:
    tag: str
    path: Path
    labels: Mapping[str, str]
    metadata: Mapping[str, Any]
    created: datetime

    @property
    def stage(self) -> str | None:
        return self.labels.get(STAGE_LABEL)


class ModelRegistry:
    """The models of one BentoML model store (the jobs' shared store, or a Bento's own)."""

    def __init__(self, bentoml_store: Any, name: str = MODEL_NAME) -> None:
        self.bentoml_store = bentoml_store
        self.root = Path(bentoml_store._path)
        self.name = name
        self._verifier = _Verifier()
        self._unreadable: set[Path] = set()

    @classmethod
    def at(cls, directory: Path, name: str = MODEL_NAME) -> ModelRegistry:
        """The store in `directory` (created when a model is first saved: the service may
        read a read-only volume the jobs have not written yet)."""
        return cls(ModelStore(directory), name)

    def models(self) -> list[StoredModel]:
        """Every readable version, newest first (a version BentoML cannot read is skipped)."""
        found = []
        folder = self.root / self.name
        for version in sorted(folder.iterdir()) if folder.is_dir() else []:
            if not version.is_dir():
                continue
            try:
                stored = self.bentoml_store.get(f"{self.name}:{version.name}")
            # Whatever BentoML's reader raises on a torn or garbled model.yaml (YAML,
            # cattrs and its own errors): that version is unreadable, the others count.
            except Exception as error:
                if version not in self._unreadable:
                    self._unreadable.add(version)
                    logger.error("skipping unreadable model %s: %s", version, error)
                continue
            found.append(
                StoredModel(
                    str(stored.tag),
                    Path(stored.path),
                    dict(stored.info.labels),
                    dict(stored.info.metadata),
                    stored.info.creation_time,
                )
            )
        return sorted(found, key=lambda model: model.created, reverse=True)

    def get(self, tag: str) -> StoredModel:
        for model in self.models():
            if model.tag == tag:
                return model
        raise StoreError(f"no model {tag} in {self.root}")

    def production(self) -> list[StoredModel]:
        return [model for model in self.models() if model.stage == Stage.PRODUCTION]

    def problems(self, model: StoredModel) -> list[str]:
        """Why the model's files cannot be trusted (empty: they match what was saved)."""
        recorded = model.metadata.get(CHECKSUMS)
        return self._verifier.problems(model.path, recorded if isinstance(recorded, dict) else None)

    def newest_production(self, skip: frozenset[str] = frozenset()) -> StoredModel | None:
        """The newest production model that verifies (and is not in `skip`)."""
        for model in self.production():
            if model.tag not in skip and not self.problems(model):
                return model
        return None

    def save(
        self, trained: TrainedModel, stage: Stage, metadata: Mapping[str, Any] | None = None
    ) -> str:
        """Save a trained model with its checksums; returns its tag."""
        start, end = trained.data_window
        labels = {
            "strategy": trained.model.strategy,
            "horizon": str(trained.model.horizon),
            "feature_schema_version": str(trained.info["feature_schema_version"]),
            "data_end": end,
            STAGE_LABEL: stage.value,
        }
        with _scratch(self.root) as scratch:
            save_trained_model(trained, scratch)
            record = {
                "metrics": trained.info.get("metrics", {}),
                "data_start": start,
                "data_end": end,
                "items": len(trained.items),
                "strategy": trained.model.strategy,
                "params": trained.model.params,
                **(metadata or {}),
                CHECKSUMS: file_checksums(scratch),
            }
            return self._create(labels, record, scratch)

    def promote(self, tag: str) -> str:
        """Make a stored version the production model by saving a production copy of it."""
        source = self.get(tag)
        if problems := self.problems(source):
            raise StoreError(f"{tag} cannot be promoted: {'; '.join(problems)}")
        labels = {**source.labels, STAGE_LABEL: Stage.PRODUCTION.value}
        metadata = {**source.metadata, "promoted_from": tag}
        return self._create(labels, metadata, source.path)

    def _create(self, labels: dict[str, str], metadata: dict[str, Any], files: Path) -> str:
        with bentoml.models.create(
            self.name, labels=labels, metadata=metadata, _model_store=self.bentoml_store
        ) as created:
            for entry in files.iterdir():
                if entry.is_file() and entry.name != MODEL_YAML:
                    shutil.copy2(entry, Path(created.path) / entry.name)
        # BentoML keeps its temporary directory's mode (0700): the API reading the shared
        # store may run as another user than the jobs writing it.
        saved = self.get(str(created.tag)).path
        saved.chmod(0o755)
        for entry in saved.iterdir():
            entry.chmod(0o644)
        return str(created.tag)

    def load(self, model: StoredModel, with_state: bool = False) -> TrainedModel:
        return load_trained_model(model.path, with_state=with_state)


@contextmanager
def _scratch(root: Path) -> Iterator[Path]:
    """A private directory beside the store (same filesystem), removed afterwards."""
    scratch = root.parent / f".pokewatch-save-{os.getpid()}-{time.monotonic_ns()}"
    scratch.mkdir(parents=True)
    try:
        yield scratch
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


@dataclass(frozen=True)
class Publication:
    id: str  # "<model tag>@<directory name>": names the model and the data day
    model_tag: str
    data_as_of: date
    digest: str
    path: Path


def table_digest(table: TrainedModel) -> str:
    """A digest of a table's content (rows and item metadata), independent of file bytes."""
    digest = hashlib.sha256()
    for frame in (table.predictions, table.items):
        digest.update(pd.util.hash_pandas_object(frame, index=False).to_numpy().tobytes())
        digest.update(",".join(map(str, frame.columns)).encode())
    return digest.hexdigest()


class Publications:
    """Published tables, one directory per model version and publication."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._verifier = _Verifier()

    def _folder(self, model_tag: str) -> Path:
        name, _, version = model_tag.partition(":")
        return self.root / name / version

    def all(self, model_tag: str) -> list[Publication]:
        """Readable publications of a model, newest (data day, then publish time) first."""
        folder = self._folder(model_tag)
        found = []
        for path in sorted(folder.iterdir(), reverse=True) if folder.is_dir() else []:
            if path.name.startswith(".") or not path.is_dir():
                continue
            try:
                manifest = json.loads((path / MANIFEST).read_text())
                found.append(
                    Publication(
                        f"{model_tag}@{path.name}",
                        model_tag,
                        date.fromisoformat(manifest["data_as_of"]),
                        str(manifest["digest"]),
                        path,
                    )
                )
            except (OSError, ValueError, KeyError, TypeError) as error:
                logger.error("skipping unreadable publication %s: %s", path, error)
        return found

    def newest(self, model_tag: str, skip: frozenset[str] = frozenset()) -> Publication | None:
        """The newest publication of the model whose files verify (and is not in `skip`)."""
        for publication in self.all(model_tag):
            if publication.id not in skip and not self.problems(publication):
                return publication
        return None

    def problems(self, publication: Publication) -> list[str]:
        try:
            manifest = json.loads((publication.path / MANIFEST).read_text())
        except (OSError, ValueError) as error:
            return [f"{MANIFEST} is unreadable: {error}"]
        return self._verifier.problems(publication.path, manifest.get(CHECKSUMS))

    def publish(
        self, model_tag: str, table: TrainedModel, now: datetime | None = None
    ) -> Publication:
        """Publish `table` as the model's newest day; an unchanged table is not published again
        (the newest publication with the same content is returned)."""
        digest = table_digest(table)
        newest = self.newest(model_tag)
        if newest is not None and newest.digest == digest:
            return newest
        when = now or datetime.now(UTC)
        stamp = when.strftime("%Y%m%dT%H%M%S%fZ")
        name = f"{table.data_as_of}.{stamp}.{digest[:12]}"
        folder = self._folder(model_tag)
        folder.mkdir(parents=True, exist_ok=True)
        publication_id = f"{model_tag}@{name}"
        staging = folder / f".{name}.partial"
        staging.mkdir()
        try:
            info = {**table.info, "published": publication_id, "model_tag": model_tag}
            save_trained_model(
                TrainedModel(table.model, table.items, table.predictions, info), staging
            )
            for path in staging.iterdir():
                with path.open("rb") as stream:
                    os.fsync(stream.fileno())
            manifest = {
                "model_tag": model_tag,
                "data_as_of": table.data_as_of,
                "published_at": when.isoformat(),
                "digest": digest,
                "rows": len(table.predictions),
                CHECKSUMS: file_checksums(staging),
            }
            atomic_write(staging / MANIFEST, json.dumps(manifest, indent=2).encode())
            staging.rename(folder / name)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        fsync_directory(folder)
        return Publication(
            publication_id, model_tag, date.fromisoformat(table.data_as_of), digest, folder / name
        )

    def load(self, publication: Publication) -> TrainedModel:
        return load_trained_model(publication.path)

    def prune(self, production_tag: str, keep: int, max_partial_age_seconds: float = 3600) -> int:
        """Keep the production model's newest `keep` publications and other models' newest
        one; remove what a killed publish left behind. Returns the directories removed."""
        removed = 0
        now = time.time()
        for name_folder in self.root.iterdir() if self.root.is_dir() else []:
            for version in name_folder.iterdir() if name_folder.is_dir() else []:
                tag = f"{name_folder.name}:{version.name}"
                kept = keep if tag == production_tag else 1
                for stale in self.all(tag)[kept:]:
                    shutil.rmtree(stale.path, ignore_errors=True)
                    removed += 1
                for partial in version.glob(".*.partial"):
                    with suppress(OSError):
                        if now - partial.stat().st_mtime > max_partial_age_seconds:
                            shutil.rmtree(partial, ignore_errors=True)
                            removed += 1
        return removed


class JobRun(BaseModel):
    model_config = ConfigDict(extra="ignore")

    last_success: datetime | None = None
    last_failure: datetime | None = None
    detail: str | None = None


class JobsFile:
    """The jobs' last successful and failed runs (`pokewatch daily`, `score`, `retrain`)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def read(self) -> dict[str, JobRun]:
        try:
            raw = json.loads(self.path.read_text())
        except (OSError, ValueError):
            return {}
        if not isinstance(raw, dict):
            return {}
        runs = {}
        for job, value in raw.items():
            with suppress(ValueError):
                runs[str(job)] = JobRun.model_validate(value)
        return runs

    def record(
        self, job: str, ok: bool, detail: str | None = None, now: datetime | None = None
    ) -> None:
        when = now or datetime.now(UTC)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with (self.path.parent / f".{self.path.name}.lock").open("a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            runs = self.read()
            previous = runs.get(job, JobRun())
            runs[job] = previous.model_copy(
                update={"last_success" if ok else "last_failure": when, "detail": detail}
            )
            payload = {name: run.model_dump(mode="json") for name, run in sorted(runs.items())}
            atomic_write(self.path, json.dumps(payload, indent=2).encode())


def store_root(settings: StoreSettings) -> Path:
    return settings.path or Path(BentoMLContainer.bentoml_home.get())


def state_directory(settings: StoreSettings) -> Path:
    """PokeWatch's own state beside the models: publications, job status, alerts."""
    return store_root(settings) / "pokewatch"


@dataclass(frozen=True)
class Selection:
    """What to serve: a production model, and its newest publication if it has one."""

    model: StoredModel
    registry: ModelRegistry
    publication: Publication | None

    @property
    def version(self) -> str:
        return self.publication.id if self.publication else self.model.tag

    @property
    def path(self) -> Path:
        """The directory of the table served: the publication's, else the model's."""
        return self.publication.path if self.publication else self.model.path


@dataclass
class Store:
    """The jobs' store (models, publications, job status) and, for the service, the
    models BentoML itself holds (a served Bento's bundled model) as the fallback."""

    registry: ModelRegistry
    publications: Publications
    jobs: JobsFile
    fallbacks: list[ModelRegistry] = field(default_factory=list)

    @classmethod
    def from_settings(cls, settings: StoreSettings, name: str = MODEL_NAME) -> Store:
        """The store of the settings; `name` is the model name (`service.model_tag`'s)."""
        root = store_root(settings)
        registry = ModelRegistry.at(root / "models", name)
        active = BentoMLContainer.model_store.get()
        same = Path(active._path).resolve() == registry.root.resolve()
        fallbacks = [] if same else [ModelRegistry(active, name)]
        state = state_directory(settings)
        return cls(
            registry, Publications(state / "published"), JobsFile(state / "jobs.json"), fallbacks
        )

    @property
    def registries(self) -> list[ModelRegistry]:
        return [self.registry, *self.fallbacks]

    def select(
        self, pinned: str | None = None, skip: frozenset[str] = frozenset()
    ) -> Selection | None:
        """The pinned model (a tag with a version), else the newest production model that
        verifies, from the shared store first; with its newest publication."""
        for registry in self.registries:
            model = (
                registry.newest_production(skip) if pinned is None else _pinned(registry, pinned)
            )
            if model is not None:
                return Selection(model, registry, self.publications.newest(model.tag, skip))
        return None

    def find(self, version: str) -> Selection | None:
        """The table a version names (`Selection.version`: a model tag, or a publication
        id), if the store still holds it and its files verify."""
        tag = version.partition("@")[0]
        for registry in self.registries:
            model = _pinned(registry, tag)
            if model is None:
                continue
            if tag == version:
                return Selection(model, registry, None)
            publication = next(
                (found for found in self.publications.all(tag) if found.id == version), None
            )
            if publication is None or self.publications.problems(publication):
                return None
            return Selection(model, registry, publication)
        return None

    def load(self, selection: Selection) -> TrainedModel:
        if selection.publication is not None:
            return self.publications.load(selection.publication)
        return selection.registry.load(selection.model)

    def table(self, selection: Selection) -> PriceTable:
        """The selection's served table, memory-mapped (`model.lookup`)."""
        return load_price_table(selection.path)


def _pinned(registry: ModelRegistry, tag: str) -> StoredModel | None:
    try:
        model = registry.get(tag)
    except StoreError:
        return None
    return None if registry.problems(model) else model


def pinned_tag(configured: str) -> str | None:
    """The tag `service.model_tag` pins, or None for `name:latest` (the production model)."""
    version = configured.partition(":")[2]
    return configured if version not in ("", "latest") else None


def declared_model_tag(configured: str) -> str | None:
    """The model the service class declares (and a Bento built from it carries): the pinned
    tag, else the newest verified production model of BentoML's own store at import time."""
    pinned = pinned_tag(configured)
    if pinned is not None:
        return pinned
    registry = ModelRegistry(BentoMLContainer.model_store.get(), configured.partition(":")[0])
    model = registry.newest_production()
    return model.tag if model else None
