"""Scoring: the production model applied to a longer history, causally."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from model.artifact import TrainedModel, build_trained_model
from model.evaluation import BacktestSettings, out_of_sample
from model.features import Panels, price_panel
from model.scoring import ScoringError, score
from model.strategies import FairPriceModel
from tests.model.test_artifact import panel_prices
from tests.model.test_gbm import gbm_model, spiky_panel

SETTINGS = BacktestSettings(min_history_days=30, refit_every_days=10)
KEYS = ["item_id", "date"]


def trained_on(prices: pd.DataFrame, model: FairPriceModel) -> TrainedModel:
    panel = price_panel(prices)
    return build_trained_model(
        prices, model, SETTINGS, computed=out_of_sample(Panels(panel), model, SETTINGS)
    )


@pytest.fixture(scope="module", params=["quantile_gbm", "mean3"])
def setup(request: pytest.FixtureRequest) -> tuple[pd.DataFrame, TrainedModel, pd.DataFrame]:
    """Prices of 60 days, a model trained on the first 45, and the 15 days after."""
    prices = panel_prices(spiky_panel(items=6, days=60))
    model = gbm_model() if request.param == "quantile_gbm" else FairPriceModel("mean3", 1)
    cut = prices["date"].min() + pd.Timedelta(days=45)
    return prices, trained_on(prices[prices["date"] < cut], model), prices[prices["date"] >= cut]


def test_scoring_the_training_history_reproduces_the_model_table(
    setup: tuple[pd.DataFrame, TrainedModel, pd.DataFrame],
) -> None:
    prices, trained, later = setup
    history = prices[~prices.index.isin(later.index)]
    table = score(trained, history)
    merged = table.predictions.merge(trained.predictions, on=KEYS, suffixes=("", "_trained"))
    assert len(merged) == len(trained.predictions) == len(history)
    for column in ("fair_price", "fair_low", "fair_high"):
        np.testing.assert_allclose(merged[column], merged[f"{column}_trained"], equal_nan=True)
    assert table.data_as_of == trained.data_window[1]


def test_new_days_are_priced_and_earlier_answers_never_change(
    setup: tuple[pd.DataFrame, TrainedModel, pd.DataFrame],
) -> None:
    prices, trained, later = setup
    full = score(trained, prices).predictions.set_index(KEYS).sort_index()
    assert full.loc[later.set_index(KEYS).index, "fair_price"].notna().all()
    assert full.loc[later.set_index(KEYS).index, "fair_low"].notna().all()
    # The fair price of day t depends on prices up to t: scoring with fewer later days gives
    # the same answers for every day it has.
    for days in (1, 7):
        upto = later["date"].min() + pd.Timedelta(days=days)
        partial = score(trained, prices[prices["date"] < upto]).predictions.set_index(KEYS)
        pd.testing.assert_frame_equal(partial.sort_index(), full.loc[partial.index].sort_index())


def test_an_item_seen_for_the_first_time_is_priced(
    setup: tuple[pd.DataFrame, TrainedModel, pd.DataFrame],
) -> None:
    prices, trained, _ = setup
    last_day = prices["date"].max()
    newcomer = prices[prices["date"] == last_day].head(1).assign(item_id="newcomer")
    table = score(trained, pd.concat([prices, newcomer], ignore_index=True))
    row = table.predictions[table.predictions["item_id"] == "newcomer"]
    assert len(row) == 1
    assert np.isfinite(row[["fair_price", "fair_low", "fair_high"]].to_numpy()).all()
    items = table.items.set_index("item_id")
    assert items.loc["newcomer", "observations"] == 1
    assert table.info["scored_rows"] > 0


def test_old_rows_the_model_never_saw_stay_unpriced(
    setup: tuple[pd.DataFrame, TrainedModel, pd.DataFrame],
) -> None:
    prices, trained, _ = setup
    first_day = prices["date"].min()
    imported = prices[prices["date"] == first_day].head(1).assign(item_id="imported")
    table = score(trained, pd.concat([prices, imported], ignore_index=True))
    row = table.predictions[table.predictions["item_id"] == "imported"]
    assert row["fair_price"].isna().all()
    assert row["market_price"].tolist() == imported["market_price"].tolist()


def test_an_artifact_without_a_stored_fit_is_refused(
    setup: tuple[pd.DataFrame, TrainedModel, pd.DataFrame],
) -> None:
    prices, trained, _ = setup
    older = replace(
        trained, info={key: v for key, v in trained.info.items() if key != "scores_from"}
    )
    with pytest.raises(ScoringError, match="no stored fit"):
        score(older, prices)
    with pytest.raises(ScoringError, match="no prices"):
        score(trained, prices.iloc[:0])


def test_a_fit_of_other_features_is_not_scored(
    setup: tuple[pd.DataFrame, TrainedModel, pd.DataFrame],
) -> None:
    prices, trained, _ = setup
    older = replace(trained, info={**trained.info, "feature_schema_version": "1"})
    if not trained.model.needs_fit:
        assert len(score(older, prices).predictions) == len(prices)  # nothing fitted to misread
        return
    with pytest.raises(ScoringError, match="features of version 1, these are version 2"):
        score(older, prices)


def test_listings_become_the_buy_price_of_scored_rows() -> None:
    from model.data import load_prices
    from tests.model.test_singles import SINGLES

    prices = load_prices(SINGLES).valid
    cut = prices["date"].min() + pd.Timedelta(days=30)
    trained = trained_on(prices[prices["date"] < cut], FairPriceModel("mean3", 7))
    table = score(trained, prices).predictions.merge(prices, on=KEYS)
    np.testing.assert_allclose(table["buy_price"], table["low_price"], equal_nan=True)
    assert table["buy_price"].notna().mean() > 0.9
