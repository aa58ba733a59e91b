from __future__ import annotations

import os
from pathlib import Path

import pytest

from model.settings import (
    SHIPPED_CONFIG,
    ConfigurationError,
    ModelSettings,
    Settings,
    config_path,
    load_settings,
)
from model.signals import SignalSettings


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No POKEWATCH_* variables and a working directory without a configuration.yaml."""
    for name in list(os.environ):
        if name.upper().startswith("POKEWATCH_"):
            monkeypatch.delenv(name)
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)


def write_config(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_shipped_configuration_loads() -> None:
    assert config_path() == SHIPPED_CONFIG
    settings = load_settings(Settings)
    assert settings.model == ModelSettings()  # the file spells out the defaults
    assert settings.model.strategy == "quantile_gbm"
    assert settings.model.horizon == 7
    assert settings.model.thresholds == SignalSettings(rule="band", buy_at=-0.10, sell_at=0.15)
    assert settings.model.band.coverage == 0.8
    assert settings.model.hyperparameters == {}
    assert settings.model.gate.max_mape == 0.10
    assert settings.model.backtest.min_history_days == 56
    assert settings.data.prices is None


def test_unknown_hyperparameter_is_rejected(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("POKEWATCH_CONFIG", str(write_config(tmp_path / "c.yaml", BAD_HYPER)))
    with pytest.raises(ConfigurationError, match=r"unknown hyper-parameters \['trees'\]"):
        load_settings(Settings)


BAD_HYPER = "model:\n  strategy: quantile_gbm\n  hyperparameters: {trees: 5}\n"


def test_env_override_of_a_nested_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("POKEWATCH_MODEL__THRESHOLDS__BUY_AT", "-0.08")
    settings = load_settings(Settings)
    assert settings.model.thresholds.buy_at == -0.08
    # The rest still comes from the file.
    assert settings.model.thresholds.sell_at == 0.15
    assert settings.model.horizon == 7


def test_env_override_beats_the_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    path = write_config(tmp_path / "config.yaml", "model:\n  horizon: 14\n")
    monkeypatch.setenv("POKEWATCH_CONFIG", str(path))
    monkeypatch.setenv("POKEWATCH_MODEL__HORIZON", "3")
    assert load_settings(Settings).model.horizon == 3


@pytest.mark.parametrize(
    ("variable", "value", "field"),
    [
        ("POKEWATCH_MODEL__THRESHOLDS__BUY_AT", "0.05", "model.thresholds.buy_at"),
        ("POKEWATCH_MODEL__THRESHOLDS__BUY_AT", "lots", "model.thresholds.buy_at"),
        ("POKEWATCH_MODEL__THRESHOLDS__SELL_AT", "-0.2", "model.thresholds.sell_at"),
        ("POKEWATCH_MODEL__HORIZON", "0", "model.horizon"),
        ("POKEWATCH_MODEL__HORIZON", "400", "model.horizon"),
        ("POKEWATCH_MODEL__GATE__MIN_COVERAGE", "1.5", "model.gate.min_coverage"),
        ("POKEWATCH_MODEL__BACKTEST__REFIT_EVERY_DAYS", "0", "model.backtest.refit_every_days"),
        ("POKEWATCH_MODEL__SURPRISE", "1", "model.surprise"),
    ],
)
def test_invalid_env_value_names_the_field(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, field: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigurationError) as caught:
        load_settings(Settings)
    message = str(caught.value)
    assert f"{field}: " in message
    assert str(SHIPPED_CONFIG) in message


def test_invalid_file_values_are_all_named(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    path = write_config(
        tmp_path / "bad.yaml",
        "model:\n  horizon: -1\n  thresholds:\n    sell_at: 0\n",
    )
    monkeypatch.setenv("POKEWATCH_CONFIG", str(path))
    with pytest.raises(ConfigurationError) as caught:
        load_settings(Settings)
    message = str(caught.value)
    assert str(path) in message
    assert "model.horizon: " in message
    assert "model.thresholds.sell_at: " in message


def test_pokewatch_config_names_the_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    path = write_config(
        tmp_path / "custom.yaml",
        "model:\n  strategy: last\n  horizon: 30\n  thresholds:\n    sell_at: 0.3\n"
        "data:\n  prices: /data/prices.parquet\nservice:\n  workers: 4\n",
    )
    monkeypatch.setenv("POKEWATCH_CONFIG", str(path))
    assert config_path() == path
    settings = load_settings(Settings)
    assert settings.model.strategy == "last"
    assert settings.model.horizon == 30
    assert settings.model.thresholds == SignalSettings(buy_at=-0.10, sell_at=0.3)
    assert settings.model.backtest.min_history_days == 56  # default for keys left out
    assert settings.data.prices == Path("/data/prices.parquet")


def test_local_configuration_file_is_preferred(tmp_path: Path) -> None:
    write_config(Path("configuration.yaml"), "model:\n  horizon: 21\n")
    assert config_path() == Path("configuration.yaml")
    assert load_settings(Settings).model.horizon == 21


def test_missing_named_file_raises(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("POKEWATCH_CONFIG", str(tmp_path / "nowhere.yaml"))
    with pytest.raises(ConfigurationError, match=r"configuration file not found: .*nowhere\.yaml"):
        load_settings(Settings)


def test_unknown_strategy_is_a_configuration_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("POKEWATCH_MODEL__STRATEGY", "no-such-strategy")
    with pytest.raises(ConfigurationError, match=r"model\.strategy"):
        load_settings(Settings)
