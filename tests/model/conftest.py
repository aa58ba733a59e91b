"""Small hand-built price fixtures shared by the model tests.

`SMALL_PRICES` spans 2024-01-01 (day 0) .. 2024-01-05 (day 4):

    day       0     1     2     3     4
    a      10.0  12.0  14.0  13.0  15.0
    b       2.0     -   4.0   0.5     -
    c      20.0     -  22.0  18.0  20.0
    d         -     -   5.0     -   6.0
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
import pytest
from hypothesis import strategies as st

from model.artifact import TrainedModel, build_trained_model, price_table
from model.evaluation import BacktestSettings
from model.features import price_panel
from model.predictor import Predictor
from model.schema import validate_prices
from model.signals import SignalSettings
from model.strategies import FairPriceModel

START = pd.Timestamp("2024-01-01")

SMALL_PRICES: dict[str, list[tuple[int, float]]] = {
    "a": [(0, 10.0), (1, 12.0), (2, 14.0), (3, 13.0), (4, 15.0)],
    "b": [(0, 2.0), (2, 4.0), (3, 0.5)],
    "c": [(0, 20.0), (2, 22.0), (3, 18.0), (4, 20.0)],
    "d": [(2, 5.0), (4, 6.0)],
}
NAMES = {"a": "Alpha", "b": "Beta", "c": "Gamma", "d": "Delta"}
SET_CODES: dict[str, str | None] = {"a": "sv1", "b": "sv1", "c": "sv2", "d": None}


def day(number: int) -> pd.Timestamp:
    return START + pd.Timedelta(days=number)


def raw_rows(observations: Mapping[str, Sequence[tuple[int, float]]]) -> pd.DataFrame:
    """Raw price rows (the schema's columns) from `{item: [(day number, price), ...]}`."""
    records = [
        {
            "item_id": item,
            "date": day(number).date().isoformat(),
            "market_price": price,
            "name": NAMES.get(item, item.upper()),
            "source": "test",
            "set_code": SET_CODES.get(item),
        }
        for item, points in observations.items()
        for number, price in points
    ]
    return pd.DataFrame.from_records(records)


def make_prices(observations: Mapping[str, Sequence[tuple[int, float]]]) -> pd.DataFrame:
    """Validated long price rows; fails if any hand-built row is rejected."""
    validated = validate_prices(raw_rows(observations))
    assert validated.rejected.empty, validated.rejected
    return validated.valid


def make_panel(values: Mapping[str, Sequence[float]], start: pd.Timestamp = START) -> pd.DataFrame:
    """A daily panel (named axes, like `price_panel` builds) from `{item: [price or nan]}`."""
    length = len(next(iter(values.values())))
    index = pd.date_range(start, periods=length, freq="D", name="date")
    columns = pd.Index(list(values), name="item_id")
    data = np.array([list(column) for column in values.values()], dtype="float64").T
    return pd.DataFrame(data, index=index, columns=columns)


@pytest.fixture
def small_prices() -> pd.DataFrame:
    return make_prices(SMALL_PRICES)


@pytest.fixture
def small_panel(small_prices: pd.DataFrame) -> pd.DataFrame:
    return price_panel(small_prices)


@pytest.fixture
def trained(small_prices: pd.DataFrame) -> TrainedModel:
    """mean3 with horizon 1, every day priced (min_history_days=1)."""
    return build_trained_model(
        small_prices, FairPriceModel("mean3", horizon=1), BacktestSettings(min_history_days=1)
    )


@pytest.fixture
def predictor(trained: TrainedModel) -> Predictor:
    return Predictor(price_table(trained), "test-version", SignalSettings(rule="fixed"))


# Random gappy panels for the no-look-ahead property tests.
PRICE = st.one_of(
    st.just(np.nan),
    st.floats(min_value=0.01, max_value=10_000.0, allow_nan=False, allow_infinity=False),
)


@st.composite
def panel_and_perturbed_suffix(draw: st.DrawFn) -> tuple[pd.DataFrame, pd.DataFrame, int]:
    """A random gappy panel, a copy with the prices after day `t` redrawn, and `t`."""
    days = draw(st.integers(min_value=1, max_value=30))
    items = draw(st.integers(min_value=1, max_value=4))
    values = np.array(
        draw(st.lists(PRICE, min_size=days * items, max_size=days * items)), dtype="float64"
    ).reshape(days, items)
    cut = draw(st.integers(min_value=0, max_value=days - 1))
    suffix = (days - cut - 1) * items
    changed = values.copy()
    changed[cut + 1 :] = np.array(
        draw(st.lists(PRICE, min_size=suffix, max_size=suffix)), dtype="float64"
    ).reshape(days - cut - 1, items)
    columns = {f"i{k}": values[:, k].tolist() for k in range(items)}
    changed_columns = {f"i{k}": changed[:, k].tolist() for k in range(items)}
    return make_panel(columns), make_panel(changed_columns), cut
