"""The project's settings: `configuration.yaml`, overridable by `POKEWATCH_*` variables.

`POKEWATCH_CONFIG` names the file (default: `configuration.yaml` in the working directory,
else the one shipped beside the code). Nested keys use `__` in variable names, e.g.
`POKEWATCH_MODEL__THRESHOLDS__BUY_AT=-0.08`. Each consumer declares the sections it
reads by subclassing `ConfigFileSettings`; other sections are ignored.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TypeVar

from pydantic import Field, ValidationError, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    YamlConfigSettingsSource,
)

from model.band import BandSettings
from model.evaluation import BacktestSettings, GateSettings
from model.frozen import FrozenSettings
from model.signals import SignalSettings
from model.strategies import DEFAULT_STRATEGY, STRATEGIES, FairPriceModel

SHIPPED_CONFIG = Path(__file__).resolve().parent.parent / "configuration.yaml"


class ConfigurationError(ValueError):
    """The configuration is invalid; the message names the file and every bad field."""


def config_path() -> Path:
    named = os.environ.get("POKEWATCH_CONFIG")
    if named:
        return Path(named)
    local = Path("configuration.yaml")
    return local if local.is_file() else SHIPPED_CONFIG


class ModelSettings(FrozenSettings):
    strategy: str = DEFAULT_STRATEGY
    horizon: int = Field(default=7, ge=1, le=365)
    thresholds: SignalSettings = SignalSettings()
    gate: GateSettings = GateSettings()
    backtest: BacktestSettings = BacktestSettings()
    band: BandSettings = BandSettings()
    # Overrides of the configured strategy's hyper-parameter defaults (see model/gbm.py).
    hyperparameters: dict[str, float] = Field(default_factory=dict)
    # Answers give a fair price and a signal once an item was observed on this many days.
    min_observed_days: int = Field(default=1, ge=1)

    @field_validator("strategy")
    @classmethod
    def _known_strategy(cls, name: str) -> str:
        if name not in STRATEGIES:
            raise ValueError(f"unknown strategy {name!r}; choose one of {sorted(STRATEGIES)}")
        return name

    @model_validator(mode="after")
    def _known_hyperparameters(self) -> ModelSettings:
        known = STRATEGIES[self.strategy].defaults
        unknown = sorted(set(self.hyperparameters) - set(known))
        if unknown:
            raise ValueError(
                f"unknown hyper-parameters {unknown} for strategy {self.strategy!r}; "
                f"known: {sorted(known)}"
            )
        return self

    def model_for(self, strategy: str | None = None) -> FairPriceModel:
        """The configured model, or `strategy` with its defaults (the overrides apply to
        the configured strategy only)."""
        if strategy is None or strategy == self.strategy:
            return FairPriceModel(self.strategy, self.horizon, dict(self.hyperparameters))
        return FairPriceModel(strategy, self.horizon)


class DataSettings(FrozenSettings):
    """The base price history; the jobs add the collected days to it (`pipelines.history`)."""

    # A file or partition directory; None: the sample bundled with the code, unless
    # `bundled` is false (then the collected days alone).
    prices: Path | None = None
    bundled: bool = True


class ConfigFileSettings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="POKEWATCH_", env_nested_delimiter="__", extra="ignore", frozen=True
    )

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        path = config_path()
        if not path.is_file():
            raise ConfigurationError(f"configuration file not found: {path}")
        return (init_settings, env_settings, YamlConfigSettingsSource(settings_cls, path))


class Settings(ConfigFileSettings):
    """What model training and evaluation read."""

    model: ModelSettings = ModelSettings()
    data: DataSettings = DataSettings()


SettingsT = TypeVar("SettingsT", bound=ConfigFileSettings)


def load_settings(settings_class: type[SettingsT]) -> SettingsT:
    """Read the settings, turning validation errors into one clear message."""
    try:
        return settings_class()
    except ValidationError as error:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in issue['loc'])}: {issue['msg']}"
            for issue in error.errors()
        )
        raise ConfigurationError(
            f"invalid configuration in {config_path()} or POKEWATCH_* variables: {problems}"
        ) from None
