from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from model.artifact import (
    ARTIFACT_FORMAT,
    INFO_FILE,
    ITEMS_FILE,
    PREDICTIONS_FILE,
    TrainedModel,
    build_trained_model,
    load_trained_model,
    save_trained_model,
)
from model.evaluation import BacktestSettings
from model.features import FEATURE_SCHEMA_VERSION
from model.strategies import STRATEGIES, FairPriceModel, Strategy
from tests.model.conftest import day


def test_build_trained_model(trained: TrainedModel, small_prices: pd.DataFrame) -> None:
    predictions = trained.predictions
    assert list(predictions.columns) == ["item_id", "date", "market_price", "fair_price"]
    assert len(predictions) == len(small_prices)
    fair = predictions.set_index(["item_id", "date"])["fair_price"]
    # mean3 of each item's observations so far.
    assert fair[("a", day(3))] == pytest.approx(13.0)
    assert fair[("b", day(3))] == pytest.approx(6.5 / 3)
    assert fair[("c", day(2))] == pytest.approx(21.0)
    assert fair[("d", day(4))] == pytest.approx(5.5)
    assert predictions["fair_price"].notna().all()

    items = trained.items.set_index("item_id")
    assert items.index.tolist() == ["a", "b", "c", "d"]
    assert items.loc["b", "name"] == "Beta"
    assert items.loc["b", "first_date"] == day(0)
    assert items.loc["b", "last_date"] == day(3)
    assert items.loc["b", "last_price"] == 0.5
    assert items.loc["b", "observations"] == 3
    assert items.loc["d", "first_date"] == day(2)
    assert items.loc["c", "set_code"] == "sv2"

    assert trained.data_window == ("2024-01-01", "2024-01-05")
    assert trained.model == FairPriceModel("mean3", horizon=1)
    assert trained.info == {
        "format": ARTIFACT_FORMAT,
        "feature_schema_version": FEATURE_SCHEMA_VERSION,
        "strategy": "mean3",
        "horizon": 1,
        "params": {},
    }


def test_round_trip(trained: TrainedModel, tmp_path: Path) -> None:
    directory = tmp_path / "nested" / "artifact"
    save_trained_model(trained, directory)
    assert {path.name for path in directory.iterdir()} == {ITEMS_FILE, PREDICTIONS_FILE, INFO_FILE}

    loaded = load_trained_model(directory)
    assert loaded.model == trained.model
    assert loaded.info == trained.info
    assert loaded.data_window == trained.data_window
    pd.testing.assert_frame_equal(loaded.items, trained.items)
    pd.testing.assert_frame_equal(loaded.predictions, trained.predictions)


def test_round_trip_keeps_fitted_numpy_params(
    small_prices: pd.DataFrame, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def fit(panel: pd.DataFrame, horizon: int) -> dict[str, float]:
        return {"scale": np.float64(len(panel)) / 10}

    def predict(panel: pd.DataFrame, params: Mapping[str, float]) -> pd.DataFrame:
        return panel.ffill() * params.get("scale", 1.0)

    monkeypatch.setitem(STRATEGIES, "scaled", Strategy("scaled", "test", predict, fit))
    trained = build_trained_model(
        small_prices, FairPriceModel("scaled", horizon=1), BacktestSettings(min_history_days=2)
    )
    assert trained.model.params == {"scale": 0.5}  # the final fit sees all 5 days

    save_trained_model(trained, tmp_path)
    loaded = load_trained_model(tmp_path)
    assert loaded.model == FairPriceModel("scaled", 1, {"scale": 0.5})
    assert isinstance(loaded.model.params["scale"], float)
    pd.testing.assert_frame_equal(loaded.predictions, trained.predictions)


@pytest.mark.parametrize("bad_format", [None, 0, ARTIFACT_FORMAT + 1, "1"])
def test_format_mismatch_raises(trained: TrainedModel, tmp_path: Path, bad_format: object) -> None:
    save_trained_model(trained, tmp_path)
    info = json.loads((tmp_path / INFO_FILE).read_text())
    if bad_format is None:
        del info["format"]
    else:
        info["format"] = bad_format
    (tmp_path / INFO_FILE).write_text(json.dumps(info))

    with pytest.raises(ValueError, match=r"model artifact format .* is not 1; retrain"):
        load_trained_model(tmp_path)
