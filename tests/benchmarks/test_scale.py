"""The scale workload's table: real series repeated under new ids, served like any table."""

import numpy as np
import pandas as pd
import pytest

from benchmarks.scale import parse_rows, synthesize
from model.artifact import TrainedModel, price_table
from model.predictor import Predictor
from model.signals import SignalSettings


@pytest.mark.parametrize(
    ("text", "rows"), [("31M", 31_000_000), ("1.5M", 1_500_000), ("300k", 300_000), ("42", 42)]
)
def test_row_counts(text: str, rows: int) -> None:
    assert parse_rows(text) == rows


def test_a_bad_row_count_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="not a row count"):
        parse_rows("lots")


def test_items_are_real_series_cycled_over_consecutive_days(trained: TrainedModel) -> None:
    real_items = trained.predictions["item_id"].nunique()
    scaled = synthesize(trained, rows=(real_items + 1) * 20, days=20)
    predictions = scaled.predictions
    assert len(predictions) == (real_items + 1) * 20
    ids = predictions["item_id"].astype(str)
    assert ids.nunique() == real_items + 1 == len(scaled.items)
    assert set(scaled.items["item_id"]) == set(ids)
    last = trained.predictions["date"].max()
    for _, rows in predictions.groupby(ids):
        assert list(rows["date"]) == list(pd.date_range(end=last, periods=20, freq="D"))
    # The copy of the first real item (and the one after the last wraps to it) repeats its
    # observations in order.
    first_real = sorted(trained.predictions["item_id"].unique())[0]
    real = trained.predictions[trained.predictions["item_id"] == first_real].sort_values("date")
    for copy in (0, real_items):
        series = predictions[ids == f"{first_real}~{copy}"]["market_price"].to_numpy()
        expected = np.resize(real["market_price"].to_numpy(), 20)
        assert np.array_equal(series, expected)


def test_the_scaled_table_is_served(trained: TrainedModel) -> None:
    scaled = synthesize(trained, rows=200, days=40)
    predictor = Predictor(price_table(scaled), "test:scaled", SignalSettings())
    card_id = str(scaled.items["item_id"].iloc[-1])
    answer = predictor.fair_price(card_id, None)
    assert answer["card_id"] == card_id
    assert answer["history_days"] == 40
