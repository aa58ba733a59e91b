from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings

from model import features
from tests.model.conftest import make_panel, make_prices, panel_and_perturbed_suffix

nan = np.nan


def assert_panel(actual: pd.DataFrame, expected: dict[str, list[float]]) -> None:
    np.testing.assert_allclose(
        actual.to_numpy(), make_panel(expected).to_numpy(), rtol=1e-12, equal_nan=True
    )


@pytest.fixture
def gappy() -> pd.DataFrame:
    #      day  0     1     2     3    4     5
    return make_panel(
        {
            "a": [10.0, nan, nan, 16.0, nan, 20.0],
            "b": [nan, 4.0, 8.0, nan, nan, 2.0],
        }
    )


def test_price_panel_complete_daily_index(small_prices: pd.DataFrame) -> None:
    panel = features.price_panel(small_prices)

    assert list(panel.index) == list(pd.date_range("2024-01-01", "2024-01-05", freq="D"))
    assert panel.index.name == "date"
    assert panel.columns.name == "item_id"
    assert list(panel.columns) == ["a", "b", "c", "d"]
    assert_panel(
        panel,
        {
            "a": [10.0, 12.0, 14.0, 13.0, 15.0],
            "b": [2.0, nan, 4.0, 0.5, nan],
            "c": [20.0, nan, 22.0, 18.0, 20.0],
            "d": [nan, nan, 5.0, nan, 6.0],
        },
    )


def test_price_panel_fills_days_nobody_observed() -> None:
    prices = make_prices({"z": [(0, 1.0), (3, 4.0)], "y": [(5, 2.0)]})
    panel = features.price_panel(prices)
    assert len(panel) == 6
    assert list(panel.columns) == ["y", "z"]
    assert panel["z"].isna().tolist() == [False, True, True, False, True, True]


def test_last_price(gappy: pd.DataFrame) -> None:
    assert_panel(
        features.last_price(gappy),
        {"a": [10, 10, 10, 16, 16, 20], "b": [nan, 4, 8, 8, 8, 2]},
    )


def test_rolling_mean_counts_observations_not_days(gappy: pd.DataFrame) -> None:
    # a's last 2 observations on day 5 are 16 and 20 although 16 is 2 days back and
    # 10 (3 observations back) is 5 days back; between observations the value is carried.
    assert_panel(
        features.rolling_mean(gappy, 2),
        {"a": [10, 10, 10, 13, 13, 18], "b": [nan, 4, 6, 6, 6, 5]},
    )


def test_days_since_last_observation(gappy: pd.DataFrame) -> None:
    assert_panel(
        features.days_since_last_observation(gappy),
        {"a": [0, 1, 2, 0, 1, 0], "b": [nan, 0, 0, 1, 2, 0]},
    )


def test_features_keep_the_panel_shape(gappy: pd.DataFrame) -> None:
    for result in (
        features.rolling_mean(gappy, 3),
        features.days_since_last_observation(gappy),
        features.change_since(gappy, 1),
    ):
        assert result.index.equals(gappy.index)
        assert result.columns.equals(gappy.columns)


def test_item_without_observations_stays_nan() -> None:
    panel = make_panel({"a": [1.0, 2.0, 3.0], "empty": [nan, nan, nan]})
    for result in (
        features.rolling_mean(panel, 2),
        features.days_since_last_observation(panel),
    ):
        assert result["empty"].isna().all()
        assert result["a"].notna().all()


# --- no look-ahead -------------------------------------------------------------------------

CAUSAL_FEATURES: dict[str, Callable[[pd.DataFrame], pd.DataFrame]] = {
    "last_price": features.last_price,
    "rolling_mean_3": lambda panel: features.rolling_mean(panel, 3),
    "days_since_last_observation": features.days_since_last_observation,
}


@pytest.mark.parametrize("name", sorted(CAUSAL_FEATURES))
@settings(max_examples=50, deadline=None)
@given(case=panel_and_perturbed_suffix())
def test_feature_has_no_look_ahead(name: str, case: tuple[pd.DataFrame, pd.DataFrame, int]) -> None:
    panel, changed, cut = case
    function = CAUSAL_FEATURES[name]
    pd.testing.assert_frame_equal(
        function(panel).iloc[: cut + 1], function(changed).iloc[: cut + 1]
    )
