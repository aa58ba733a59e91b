"""The trained artifact: the fair-price table the service answers from, its fit, and its files.

A trained model carries the price history it was trained on and the out-of-sample fair
price and band (`fair_low`, `fair_high`) for every observation day, so a service needs
nothing but the artifact directory to answer (and no scikit-learn). It also keeps the last
fit (`state.skops`, for strategies that fit), which the daily scoring job applies to new
days (`model.scoring`). `model.json` is JSON only: the strategy, its hyper-parameters, the
record of what was fitted and the band's latest calibration; the fit is stored with skops,
never as a pickle.

A published table (`model.scoring`) has the same `items.parquet`, `predictions.parquet`
and `model.json` files, extended to the newest collected day. Every artifact this version
saves (format 5, and publications of older models) also holds the served layout of its
predictions (`model.lookup`: `table.arrow`, `table_items.arrow`), which the service
memory-maps instead of reading the parquet.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from model.band import BandSettings
from model.evaluation import BacktestSettings, OutOfSample, out_of_sample
from model.features import FEATURE_SCHEMA_VERSION, price_panels
from model.lookup import ROWS_FILE, PriceTable
from model.schema import OPTIONAL_TEXT_COLUMNS
from model.strategies import FairPriceModel

MODEL_NAME = "pokewatch-fair-price"  # the name in the BentoML model store
ARTIFACT_FORMAT = 5
# Formats 1 (no band columns), 2 (no stored fit), 3 (no buy price) and 4 (no served
# layout: the service builds it from the parquet) are still read and served; formats 3 to
# 5 can score new days (3 with a fit of its feature version only).
READABLE_FORMATS = (1, 2, 3, 4, 5)
ITEMS_FILE = "items.parquet"
PREDICTIONS_FILE = "predictions.parquet"
INFO_FILE = "model.json"
STATE_FILE = "state.skops"
ITEM_COLUMNS = ("item_id", "name", "source", *OPTIONAL_TEXT_COLUMNS)
PREDICTION_COLUMNS = (
    "item_id",
    "date",
    "market_price",
    "buy_price",  # the lowest listing, where the source sends listings (TCGCSV)
    "fair_price",
    "fair_low",
    "fair_high",
)


@dataclass(frozen=True)
class TrainedModel:
    """Items, one priced row per observation, and the record (`info`) of how they were priced.

    `model.state` is the last fit when it was loaded (`load_trained_model(with_state=True)`).
    """

    model: FairPriceModel
    items: pd.DataFrame
    predictions: pd.DataFrame
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def data_window(self) -> tuple[str, str]:
        dates = self.predictions["date"]
        return dates.min().date().isoformat(), dates.max().date().isoformat()

    @property
    def data_as_of(self) -> str:
        """The newest day the table holds prices for (a published table says so itself)."""
        return str(self.info.get("data_as_of") or self.data_window[1])


def item_table(prices: pd.DataFrame) -> pd.DataFrame:
    """One row per item: its metadata (from its latest row), first and last day, last price,
    and how many days it was observed."""
    latest = prices.groupby("item_id", sort=True).last()
    span = prices.groupby("item_id", sort=True)["date"].agg(["min", "count"])
    return (
        latest.reset_index()[list(ITEM_COLUMNS)]
        .assign(
            first_date=span["min"].to_numpy(),
            last_date=latest["date"].to_numpy(),
            last_price=latest["market_price"].to_numpy(),
            observations=span["count"].to_numpy(),
        )
        .reset_index(drop=True)
    )


def with_buy_price(prices: pd.DataFrame) -> pd.DataFrame:
    """`prices` with `buy_price`: the lowest listing (NaN where the source sends none)."""
    return prices.assign(buy_price=prices.get("low_price", np.nan))


def priced_rows(
    prices: pd.DataFrame,
    panel: pd.DataFrame,
    fair: np.ndarray[Any, np.dtype[np.float64]],
    low: np.ndarray[Any, np.dtype[np.float64]],
    high: np.ndarray[Any, np.dtype[np.float64]],
) -> pd.DataFrame:
    """`prices`' rows with the fair price and band of the panels (days x items of `panel`)."""
    columns = {"fair_price": fair, "fair_low": low, "fair_high": high}
    long = pd.concat(
        {
            name: pd.DataFrame(values, index=panel.index, columns=panel.columns).stack(
                future_stack=True
            )
            for name, values in columns.items()
        },
        axis=1,
    )
    return (
        with_buy_price(prices)[["item_id", "date", "market_price", "buy_price"]]
        .join(long, on=["date", "item_id"])
        .reset_index(drop=True)
    )


def build_trained_model(
    prices: pd.DataFrame,
    model: FairPriceModel,
    backtest: BacktestSettings,
    band: BandSettings | None = None,
    computed: OutOfSample | None = None,
) -> TrainedModel:
    """Price every observation day out of sample (see `out_of_sample`).

    `computed` is `out_of_sample`'s result on `price_panels(prices)` when the caller (the
    training run, which backtests the same fair prices) already has it. The model kept is
    the last block's fit: the one that priced the latest days, and the one that scores the
    days after them (from `scores_from`, the last block's first day, on: it was fitted and
    calibrated on targets before that day only).
    """
    band = band or BandSettings()
    panels = price_panels(prices)
    if computed is None:
        computed = out_of_sample(panels, model, backtest, band)
    predictions = priced_rows(prices, panels.market, computed.fair, computed.low, computed.high)
    final = computed.model
    info = {
        "format": ARTIFACT_FORMAT,
        "feature_schema_version": FEATURE_SCHEMA_VERSION,
        "strategy": final.strategy,
        "horizon": final.horizon,
        "hyperparameters": final.hyper,
        "params": final.params,
        "scores_from": computed.blocks[-1]["start"] if computed.blocks else None,
        "band": {
            **band.model_dump(),
            "latest_calibration": computed.blocks[-1] if computed.blocks else None,
        },
    }
    return TrainedModel(final, item_table(prices), predictions, info)


def save_trained_model(trained: TrainedModel, directory: Path) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    trained.items.to_parquet(directory / ITEMS_FILE, index=False)
    trained.predictions.to_parquet(directory / PREDICTIONS_FILE, index=False)
    price_table(trained).save(directory)
    save_state = trained.model.definition.save_state
    if save_state is not None and trained.model.state is not None:
        save_state(trained.model.state, directory / STATE_FILE)
    (directory / INFO_FILE).write_text(json.dumps(trained.info, indent=2, default=_json_default))


def price_table(trained: TrainedModel) -> PriceTable:
    """The served layout of a trained model's predictions (`model.lookup`)."""
    return PriceTable.build(trained.predictions, trained.items, trained.info)


def load_price_table(directory: Path) -> PriceTable:
    """The served table of the artifact in `directory`: its saved layout memory-mapped, or
    (formats before 5) built from its predictions."""
    info = _read_info(directory)
    if (directory / ROWS_FILE).is_file():
        return PriceTable.load(directory, pd.read_parquet(directory / ITEMS_FILE), info)
    return price_table(load_trained_model(directory))


def _read_info(directory: Path) -> dict[str, Any]:
    info: dict[str, Any] = json.loads((directory / INFO_FILE).read_text())
    if info.get("format") not in READABLE_FORMATS:
        raise ValueError(
            f"model artifact format {info.get('format')!r} in {directory} is not one of "
            f"{', '.join(map(str, READABLE_FORMATS))}; retrain with this version (pokewatch train)"
        )
    return info


def load_trained_model(directory: Path, with_state: bool = False) -> TrainedModel:
    """The artifact in `directory`; `with_state` also loads the fit (needs the train extra)."""
    info = _read_info(directory)
    model = FairPriceModel(
        info["strategy"],
        int(info["horizon"]),
        dict(info.get("hyperparameters", {})),
        dict(info["params"]),
    )
    if with_state:
        model = replace(model, state=_state(model, directory))
    predictions = pd.read_parquet(directory / PREDICTIONS_FILE)
    for column in ("fair_low", "fair_high"):
        if column not in predictions:
            predictions[column] = np.nan
    return TrainedModel(model, pd.read_parquet(directory / ITEMS_FILE), predictions, info)


def _state(model: FairPriceModel, directory: Path) -> object:
    """The stored fit; None for a strategy that does not fit or a fit that kept the prior."""
    load_state = model.definition.load_state
    if load_state is None or not model.params.get("fitted", False):
        return None
    path = directory / STATE_FILE
    if not path.is_file():
        raise ValueError(
            f"{directory} holds no fit ({STATE_FILE}): it cannot score new days; retrain"
        )
    return load_state(path)


def _json_default(value: object) -> object:
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"not JSON serializable: {type(value).__name__}")
