from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from model.artifact import (
    ARTIFACT_FORMAT,
    INFO_FILE,
    ITEMS_FILE,
    PREDICTIONS_FILE,
    STATE_FILE,
    TrainedModel,
    build_trained_model,
    load_price_table,
    load_trained_model,
    price_table,
    save_trained_model,
)
from model.evaluation import BacktestSettings
from model.features import FEATURE_SCHEMA_VERSION, Panels
from model.lookup import INDEX_FILE, ROWS_FILE
from model.strategies import STRATEGIES, FairPriceModel, Fitted, Forecast, Hyper, Strategy
from tests.model.conftest import day


def test_build_trained_model(trained: TrainedModel, small_prices: pd.DataFrame) -> None:
    predictions = trained.predictions
    assert list(predictions.columns) == [
        "item_id",
        "date",
        "market_price",
        "buy_price",
        "fair_price",
        "fair_low",
        "fair_high",
    ]
    assert len(predictions) == len(small_prices)
    fair = predictions.set_index(["item_id", "date"])["fair_price"]
    # mean3 of each item's observations so far.
    assert fair[("a", day(3))] == pytest.approx(13.0)
    assert fair[("b", day(3))] == pytest.approx(6.5 / 3)
    assert fair[("c", day(2))] == pytest.approx(21.0)
    assert fair[("d", day(4))] == pytest.approx(5.5)
    assert predictions["fair_price"].notna().all()
    # Too few past residuals to calibrate a band on 5 days: none (mean3 has no raw band).
    assert predictions["fair_low"].isna().all()
    assert predictions["fair_high"].isna().all()

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
        "hyperparameters": {},
        "params": {},
        "scores_from": "2024-01-02",
        "band": {
            "coverage": 0.8,
            "calibration_days": 90,
            "min_rows": 100,
            "short_history_days": 14,
            "latest_calibration": {
                "start": "2024-01-02",
                "rows": 0,
                "offset_low": None,
                "offset_high": None,
            },
        },
    }


def test_round_trip(trained: TrainedModel, tmp_path: Path) -> None:
    directory = tmp_path / "nested" / "artifact"
    save_trained_model(trained, directory)
    assert {path.name for path in directory.iterdir()} == {
        ITEMS_FILE,
        PREDICTIONS_FILE,
        INFO_FILE,
        ROWS_FILE,
        INDEX_FILE,
    }

    loaded = load_trained_model(directory)
    assert loaded.model == trained.model
    assert loaded.info == trained.info
    assert loaded.data_window == trained.data_window
    pd.testing.assert_frame_equal(loaded.items, trained.items)
    pd.testing.assert_frame_equal(loaded.predictions, trained.predictions)


def test_round_trip_keeps_fitted_numpy_params(
    small_prices: pd.DataFrame, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def fit(panels: Panels, horizon: int, hyper: Hyper) -> Fitted:
        panel = panels.market
        scale = np.float64(len(panel)) / 10
        return Fitted(scale, {"scale": scale})

    def predict(panels: Panels, horizon: int, state: object, hyper: Hyper) -> Forecast:
        panel = panels.market
        return Forecast(panel.ffill() * (state if isinstance(state, float) else 1.0))

    monkeypatch.setitem(STRATEGIES, "scaled", Strategy("scaled", "test", predict, fit))
    trained = build_trained_model(
        small_prices, FairPriceModel("scaled", horizon=1), BacktestSettings(min_history_days=2)
    )
    # The model kept is the last block's fit: blocks start on days 0 and 2, so it saw 2 days.
    assert trained.model.params == {"scale": 0.2}

    save_trained_model(trained, tmp_path)
    loaded = load_trained_model(tmp_path)
    assert loaded.model == FairPriceModel("scaled", 1, {}, {"scale": 0.2})
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

    for load in (load_trained_model, load_price_table):
        with pytest.raises(
            ValueError, match=r"model artifact format .* is not one of 1, 2, 3, 4, 5; retrain"
        ):
            load(tmp_path)


def test_the_served_table_is_mapped_from_the_artifact(
    trained: TrainedModel, tmp_path: Path
) -> None:
    save_trained_model(trained, tmp_path)
    served = load_price_table(tmp_path)
    assert not served.days.flags.owndata  # mapped, not read
    built = price_table(trained)
    assert served.item_ids == built.item_ids
    assert served.data_as_of == built.data_as_of
    assert served.info == trained.info
    pd.testing.assert_frame_equal(served.items, built.items)
    rows = np.arange(built.rows)
    assert np.array_equal(served.day_numbers(rows), built.day_numbers(rows))
    for name, column in built.prices.items():
        assert np.array_equal(served.prices[name].take(rows), column.take(rows), equal_nan=True)


def test_an_artifact_without_the_served_layout_is_built_from_its_predictions(
    trained: TrainedModel, tmp_path: Path
) -> None:
    # Format 4 and older: no table files.
    save_trained_model(trained, tmp_path)
    (tmp_path / ROWS_FILE).unlink()
    (tmp_path / INDEX_FILE).unlink()
    served = load_price_table(tmp_path)
    assert served.days.flags.owndata
    assert served.item_ids == price_table(trained).item_ids


def panel_prices(panel: pd.DataFrame) -> pd.DataFrame:
    """Validated price rows of a panel's observations."""
    from model.schema import validate_prices

    rows = panel.stack().reset_index()
    rows.columns = pd.Index(["date", "item_id", "market_price"])
    return validate_prices(rows.assign(name=rows["item_id"], source="test")).valid


def test_a_fit_is_stored_without_pickle_and_predicts_the_same(tmp_path: Path) -> None:
    from model.evaluation import out_of_sample
    from tests.model.test_gbm import gbm_model, spiky_panel

    panel = spiky_panel(items=6, days=60)
    prices = panel_prices(panel)
    settings = BacktestSettings(min_history_days=30, refit_every_days=10)
    model = gbm_model()
    trained = build_trained_model(
        prices, model, settings, computed=out_of_sample(Panels(panel), model, settings)
    )
    assert trained.model.state is not None
    save_trained_model(trained, tmp_path)
    assert (tmp_path / STATE_FILE).is_file()
    assert not load_trained_model(tmp_path).model.state  # the service never loads the fit
    loaded = load_trained_model(tmp_path, with_state=True)
    np.testing.assert_array_equal(
        loaded.model.forecast(Panels(panel)).fair.to_numpy(),
        trained.model.forecast(Panels(panel)).fair.to_numpy(),
    )


def test_a_stored_fit_asking_for_other_types_is_refused(tmp_path: Path) -> None:
    import skops.io

    from model import gbm

    skops.io.dump((np.arange(3), [1.0]), tmp_path / STATE_FILE)
    with pytest.raises(ValueError, match="expected 3 quantile models"):
        gbm.load_state(tmp_path / STATE_FILE)
    skops.io.dump(FairPriceModel("last"), tmp_path / "other.skops")
    with pytest.raises(ValueError, match="refusing to load a fit holding types"):
        gbm.load_state(tmp_path / "other.skops")


def test_a_fitted_artifact_without_its_fit_cannot_score(tmp_path: Path) -> None:
    from model.evaluation import out_of_sample
    from tests.model.test_gbm import gbm_model, spiky_panel

    panel = spiky_panel(items=6, days=60)
    prices = panel_prices(panel)
    settings = BacktestSettings(min_history_days=30, refit_every_days=10)
    trained = build_trained_model(
        prices, gbm_model(), settings, computed=out_of_sample(Panels(panel), gbm_model(), settings)
    )
    save_trained_model(trained, tmp_path)
    (tmp_path / STATE_FILE).unlink()
    with pytest.raises(ValueError, match="holds no fit"):
        load_trained_model(tmp_path, with_state=True)
