"""The singles model on real TCGCSV singles (tests/fixtures/singles, cut from ../shared by
scripts/build_tcgcsv_fixtures.py): the price-file importer, the listing features, held-out
sets, the `expected` rule and buying at the listing."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from model import gbm
from model.artifact import price_table
from model.data import load_prices
from model.evaluation import BacktestSettings, backtest, evaluate, signal_returns
from model.features import LISTING_COLUMNS, Panels, held_out_items, price_panels
from model.report import Breakdown, compare
from model.schema import PLACEHOLDER_PREFIX, tcgplayer_item_id
from model.settings import ModelSettings
from model.signals import (
    BUY_CODE,
    HOLD_CODE,
    SELL_CODE,
    BuyPrice,
    SignalRule,
    SignalSettings,
    expected_price,
    rule_codes,
)
from tests.model.test_gbm import gbm_model

SINGLES = Path(__file__).resolve().parents[1] / "fixtures" / "singles" / "prices.parquet"
SHORT = BacktestSettings(min_history_days=7, refit_every_days=7)


@pytest.fixture(scope="module")
def singles() -> pd.DataFrame:
    return load_prices(SINGLES).valid


def test_price_files_load_as_printings_with_listings_and_set_names() -> None:
    raw = pd.read_parquet(SINGLES)
    loaded = load_prices(SINGLES)
    # Rows without a market price are rejected with the reason, never dropped silently.
    assert len(loaded.valid) + len(loaded.rejected) == len(raw)
    assert set(loaded.rejected["reason"]) <= {"missing market_price"}
    valid = loaded.valid
    reverse = raw[(raw["sub_type_name"] == "Reverse Holofoil") & raw["market_price"].notna()].iloc[
        0
    ]
    item = tcgplayer_item_id(int(reverse["product_id"]), "Reverse Holofoil")
    row = valid[(valid["item_id"] == item) & (valid["date"] == pd.Timestamp(reverse["date"]))]
    assert len(row) == 1
    for column in ("low_price", "mid_price", "high_price", "market_price"):
        assert row[column].iloc[0] == pytest.approx(reverse[column])
    assert row["set_code"].iloc[0] == str(reverse["group_id"])
    assert set(valid["set_name"]) == {
        "Fossil",
        "Double Crisis",
        "Shining Fates: Shiny Vault",
        "Crown Zenith: Galarian Gallery",
    }
    assert valid["name"].str.startswith(PLACEHOLDER_PREFIX).all()  # names are not in price files


def test_listing_features_are_causal(singles: pd.DataFrame) -> None:
    panels = price_panels(singles)
    assert set(panels.listings) == set(LISTING_COLUMNS)
    cut = 20
    changed = {
        name: panel.where(
            np.broadcast_to(np.arange(len(panel))[:, None] <= cut, panel.shape), panel * 3.0
        )
        for name, panel in panels.listings.items()
    }
    original = dict(gbm.feature_panels(panels))
    perturbed = dict(gbm.feature_panels(Panels(panels.market, changed)))
    for name in gbm.LISTING_FEATURES:
        pd.testing.assert_frame_equal(
            original[name].iloc[: cut + 1], perturbed[name].iloc[: cut + 1]
        )
    assert (
        not original["low_to_market"]
        .iloc[cut + 1 :]
        .equals(perturbed["low_to_market"].iloc[cut + 1 :])
    )


def test_listing_features_are_clipped_and_missing_without_listings(singles: pd.DataFrame) -> None:
    found = dict(gbm.feature_panels(price_panels(singles)))
    low = found["low_to_market"].to_numpy()
    assert np.nanmax(np.abs(low)) <= gbm.LISTING_RATIO_CLIP
    share = found["low_above_market_share_7d"].to_numpy()
    assert np.nanmin(share) >= 0
    assert np.nanmax(share) <= 1
    # Sealed history and PokemonPriceTracker have no listings: the features are NaN.
    bare = dict(gbm.feature_panels(Panels(price_panels(singles).market)))
    for name in gbm.LISTING_FEATURES:
        assert bare[name].isna().all().all()


def test_held_out_sets_are_stable_whole_sets_and_never_learned_from(singles: pd.DataFrame) -> None:
    held = held_out_items(singles, 0.5)
    assert held == held_out_items(singles.sample(frac=1.0, random_state=1), 0.5)
    sets = singles.drop_duplicates("item_id").set_index("item_id")["set_code"]
    held_sets = set(sets[list(held)])
    assert 0 < len(held_sets) < sets.nunique()
    assert set(sets[sets.isin(held_sets)].index) == held  # whole sets
    panels = price_panels(singles, 0.5)
    rows = backtest(panels, ModelSettings().model_for("last"), SHORT)
    assert set(rows["item_id"]) <= held
    # A fit learns only from the other sets' rows.
    feature_rows = gbm.feature_rows(panels, 7)
    trainable = gbm.trainable_rows(feature_rows, panels)
    learned = set(panels.market.columns[feature_rows.item[trainable]])
    assert learned
    assert not learned & held
    model = gbm_model(horizon=7, min_train_rows=10).fit(panels)
    assert model.params["training_rows"] == int(trainable.sum())


def test_the_expected_rule_uses_the_band_skew() -> None:
    market = np.array([100.0, 100.0, 100.0, 100.0])
    fair = np.array([100.0, 100.0, 100.0, 100.0])
    low = np.array([99.0, 90.0, 99.0, np.nan])
    high = np.array([120.0, 101.0, 101.0, np.nan])
    expected = expected_price(fair, low, high)
    np.testing.assert_allclose(expected[:3], np.cbrt(low[:3] * fair[:3] * high[:3]))
    assert expected[3] == 100.0  # no band: the fair price
    rule = SignalSettings(rule=SignalRule.EXPECTED, buy_at=-0.03, sell_at=0.012)
    codes = rule_codes(market, fair, low, high, rule)
    assert codes.tolist() == [BUY_CODE, SELL_CODE, HOLD_CODE, HOLD_CODE]


def test_buy_on_listing_buys_below_the_band_at_the_price_a_buyer_pays() -> None:
    market = np.array([100.0, 100.0, 100.0, 130.0])
    buy = np.array([85.0, 99.0, np.nan, 80.0])
    low, high = np.full(4, 95.0), np.full(4, 120.0)
    fair = np.full(4, 100.0)
    on_market = rule_codes(market, fair, low, high, SignalSettings(), buy)
    assert on_market.tolist() == [HOLD_CODE, HOLD_CODE, HOLD_CODE, SELL_CODE]
    listing = SignalSettings(buy_on=BuyPrice.LISTING)
    assert rule_codes(market, fair, low, high, listing, buy).tolist() == [
        BUY_CODE,
        HOLD_CODE,
        HOLD_CODE,  # no listing: the market price, inside the band
        BUY_CODE,  # a listing under the band beats a market price above it
    ]


def test_signal_table_has_shares_and_a_buy_at_listing_line() -> None:
    rows = pd.DataFrame(
        {
            "market": [100.0, 100.0, 100.0],
            "buy": [80.0, 100.0, np.nan],
            "target": [110.0, 90.0, 100.0],
            "fair": [100.0, 100.0, 100.0],
            "low": [95.0, 95.0, 95.0],
            "high": [105.0, 105.0, 105.0],
        }
    )
    table = signal_returns(rows, SignalSettings())
    assert table.loc["HOLD", "count"] == 3
    assert table.loc["HOLD", "share"] == 1.0
    assert table.loc["BUY@listing", "count"] == 1
    assert table.loc["BUY@listing", "mean_forward_return"] == pytest.approx(110 / 80 - 1)


def test_evaluation_on_singles_with_short_histories_and_breakdowns(singles: pd.DataFrame) -> None:
    settings = ModelSettings(
        backtest=SHORT,
        thresholds=SignalSettings(rule=SignalRule.EXPECTED, buy_at=-0.03, sell_at=0.012),
        hyperparameters={"min_train_rows": 200, "min_samples_leaf": 20},
    )
    comparison = compare(price_panels(singles, 0.5), settings, ["quantile_gbm"])
    (run,) = comparison.runs
    metrics = run.evaluation.metrics
    assert metrics["rows"] > 0
    assert metrics["coverage"] == 1.0
    assert 0 < metrics["band_coverage"] <= 1
    assert run.computed.model.params["fitted"]
    document = comparison.as_json()
    assert document["strategies"]["quantile_gbm"]["metrics"]["rows"] == metrics["rows"]
    sets = singles.drop_duplicates("item_id").set_index("item_id")["set_code"]
    by_set = comparison.breakdown(Breakdown.SET, sets, settings)
    assert by_set["rows"].sum() == metrics["rows"]
    by_price = comparison.breakdown(Breakdown.PRICE_BUCKET, sets, settings)
    assert set(by_price.index.get_level_values("price-bucket")) <= {
        "< $1",
        "$1-10",
        "$10-100",
        "> $100",
    }
    assert by_price["rows"].sum() == metrics["rows"]
    again = evaluate(run.rows, 7, settings.thresholds, settings.backtest.min_price)
    assert again.metrics == metrics


def test_sets_are_named_from_the_groups_file(singles: pd.DataFrame) -> None:
    from model.catalog import Catalog
    from model.predictor import Predictor
    from model.training import train

    trained = train(singles, ModelSettings(strategy="last", backtest=SHORT)).trained
    sets = Catalog(Predictor(price_table(trained), "v", SignalSettings())).sets()
    named = {entry["set_code"]: entry["set_name"] for entry in sets}
    assert named == {
        "630": "Fossil",
        "1525": "Double Crisis",
        "2781": "Shining Fates: Shiny Vault",
        "17689": "Crown Zenith: Galarian Gallery",
    }


def test_search_finds_the_cards_of_a_set_by_its_name(singles: pd.DataFrame) -> None:
    from model.catalog import CardQuery, Catalog
    from model.predictor import Predictor
    from model.training import train

    trained = train(singles, ModelSettings(strategy="last", backtest=SHORT)).trained
    catalog = Catalog(Predictor(price_table(trained), "v", SignalSettings()))
    page = catalog.search(CardQuery(text="shiny vault"), 10_000)
    expected = set(singles.loc[singles["set_name"] == "Shining Fates: Shiny Vault", "item_id"])
    assert page.total == len(expected)
