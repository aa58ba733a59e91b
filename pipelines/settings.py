"""What the data and training jobs read from `configuration.yaml` (beside `model` and `data`).

Sections: `sources` (endpoints, timeouts, retries, the PokemonPriceTracker call budget),
`tracked_items` (which items the collector follows), `collector` (where partitions, the
day cache and the catalogue go), `schedule` (when the jobs run), `mlflow` (tracking),
`promotion` (champion/challenger), `store` (shared with the service: where models and
published answers live) and `alerts` (shared too: watchlists, webhooks, deliveries).
Secrets never live here: the PokemonPriceTracker key is read from the environment variable
`sources` names.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import yaml
from pydantic import AliasChoices, Field, model_validator

from model.frozen import FrozenSettings
from model.settings import Settings
from service.settings import AlertsSettings, ScheduleSettings, StoreSettings

PROJECT_ROOT = Path(__file__).resolve().parent.parent


class RetrySettings(FrozenSettings):
    """Retries of connection errors, timeouts, 429 and 5xx (never 401/403/404)."""

    attempts: int = Field(default=5, ge=1)
    initial_wait_seconds: float = Field(default=1.0, ge=0)
    # Full-jitter backoff: a wait is uniform in [0, min(max, initial * 2^n)].
    max_wait_seconds: float = Field(default=30.0, ge=0)
    # A server's Retry-After is honoured up to this; past it we would stall a daily job.
    max_retry_after_seconds: float = Field(default=120.0, ge=0)


class TcgcsvSettings(FrozenSettings):
    base_url: str = "https://tcgcsv.com"
    category_id: int = 3  # Pokémon (85 is Pokémon Japan)
    timeout_seconds: float = Field(default=30.0, gt=0)


class PokemonPriceTrackerSettings(FrozenSettings):
    base_url: str = "https://www.pokemonpricetracker.com/api/v2"
    api_key_env: str = "POKEMONPRICETRACKER_API_KEY"
    # Every HTTP request counts, retries included, across all runs of a UTC day (the count
    # is kept in the collector's state directory): the free tier allows about 100 a day.
    # `max_calls_per_run`, its former name, is still read.
    max_calls_per_day: int = Field(
        default=90, ge=1, validation_alias=AliasChoices("max_calls_per_day", "max_calls_per_run")
    )
    timeout_seconds: float = Field(default=30.0, gt=0)


class SourcesSettings(FrozenSettings):
    tcgcsv: TcgcsvSettings = TcgcsvSettings()
    pokemonpricetracker: PokemonPriceTrackerSettings = PokemonPriceTrackerSettings()
    retry: RetrySettings = RetrySettings()


class TrackedTcgcsvSettings(FrozenSettings):
    """Items of one TCGplayer group (set), or of `all` groups of the category: explicit
    ids, the `top` N printings by market price that day, or (neither) every printing."""

    group: int | Literal["all"]
    items: list[str] = Field(default_factory=list)
    top: int | None = Field(default=None, ge=1)

    @model_validator(mode="after")
    def _one_way(self) -> TrackedTcgcsvSettings:
        if self.items and self.top is not None:
            raise ValueError(f"group {self.group}: give `items` or `top`, not both")
        if self.items and self.group == "all":
            raise ValueError("group all: explicit `items` need their group id")
        return self


class TrackedPokemonPriceTrackerSettings(FrozenSettings):
    """Cards of one vendor set: explicit TCGplayer ids (one call each), or the `top` N."""

    set_id: str
    # Our item ids are `<set_slug>_<card name and number>`, e.g. sv2a_151_charizard_ex___201_165.
    set_slug: str
    language: str = "english"
    tcgplayer_ids: list[str] = Field(default_factory=list)
    top: int | None = Field(default=None, ge=1)

    @model_validator(mode="after")
    def _one_way(self) -> TrackedPokemonPriceTrackerSettings:
        if bool(self.tcgplayer_ids) == (self.top is not None):
            raise ValueError(f"set {self.set_id}: give exactly one of `tcgplayer_ids` or `top`")
        return self


class TrackedItemsSettings(FrozenSettings):
    """Inline selections, or `file`: a YAML file with the same two keys (it wins when set)."""

    file: Path | None = None
    tcgcsv: list[TrackedTcgcsvSettings] = Field(default_factory=list)
    pokemonpricetracker: list[TrackedPokemonPriceTrackerSettings] = Field(default_factory=list)

    def effective(self) -> TrackedItemsSettings:
        if self.file is None:
            return self
        path = self.file if self.file.is_absolute() else PROJECT_ROOT / self.file
        return TrackedItemsSettings.model_validate(yaml.safe_load(path.read_text()) or {})


class CollectorSettings(FrozenSettings):
    # Relative paths are relative to the project directory.
    raw_dir: Path = Path("data/raw")
    quarantine_dir: Path = Path("data/quarantine")
    archive_dir: Path = Path("data/archives")
    # TCGCSV's answers per data day (each file is fetched at most once a day) and the
    # product catalogue (names, numbers, rarities), and the jobs' own state (call budgets).
    cache_dir: Path = Path("data/cache")
    catalogue_file: Path = Path("data/catalogue/tcgcsv.parquet")
    state_dir: Path = Path("data/state")

    def resolve(self, path: Path) -> Path:
        return path if path.is_absolute() else PROJECT_ROOT / path


class MlflowSettings(FrozenSettings):
    # None: sqlite in the project's data directory (data/mlruns/mlflow.db). MLflow 3 refuses
    # plain file stores unless told otherwise, so any tracking URI given here is a server's
    # or a database's.
    tracking_uri: str | None = None
    # Where a newly created experiment keeps artifacts (None: data/mlruns/artifacts).
    artifact_location: str | None = None
    experiment: str = "pokewatch-fair-price"

    def resolved_uri(self) -> str:
        if self.tracking_uri:
            return self.tracking_uri
        database = PROJECT_ROOT / "data" / "mlruns" / "mlflow.db"
        database.parent.mkdir(parents=True, exist_ok=True)
        return f"sqlite:///{database}"

    def resolved_artifact_location(self) -> str:
        return self.artifact_location or (PROJECT_ROOT / "data" / "mlruns" / "artifacts").as_uri()


class PromotionSettings(FrozenSettings):
    """A challenger replaces the production model unless its score is worse by > margin."""

    metric: str = "mape"  # any evaluation metric where lower is better
    # Relative: 0.01 promotes a challenger whose MAPE is at most 1 % above the champion's.
    margin: float = Field(default=0.01, ge=0)


class PipelineSettings(Settings):
    """Everything the `pokewatch` data and pipeline commands read."""

    sources: SourcesSettings = SourcesSettings()
    tracked_items: TrackedItemsSettings = TrackedItemsSettings()
    collector: CollectorSettings = CollectorSettings()
    schedule: ScheduleSettings = ScheduleSettings()
    mlflow: MlflowSettings = MlflowSettings()
    promotion: PromotionSettings = PromotionSettings()
    store: StoreSettings = StoreSettings()
    alerts: AlertsSettings = AlertsSettings()
