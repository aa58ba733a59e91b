"""The trained artifact: the fair-price table the service answers from, and its files.

A trained model carries the price history it was trained on and the out-of-sample fair
price and band (`fair_low`, `fair_high`) for every observation day, so a service needs
nothing but the artifact directory to answer (and no scikit-learn). `model.json` is JSON
only: the strategy, its hyper-parameters and the record of what was fitted, never a pickle.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from model.band import BandSettings
from model.evaluation import BacktestSettings, OutOfSample, out_of_sample
from model.features import FEATURE_SCHEMA_VERSION, price_panel
from model.schema import OPTIONAL_TEXT_COLUMNS
from model.strategies import FairPriceModel

MODEL_NAME = "pokewatch-fair-price"  # the name in the BentoML model store
ARTIFACT_FORMAT = 2
# Format 1 (no band columns) is still read: its answers have no band.
READABLE_FORMATS = (1, 2)
ITEMS_FILE = "items.parquet"
PREDICTIONS_FILE = "predictions.parquet"
INFO_FILE = "model.json"
ITEM_COLUMNS = ("item_id", "name", "source", *OPTIONAL_TEXT_COLUMNS)


@dataclass(frozen=True)
class TrainedModel:
    model: FairPriceModel
    items: pd.DataFrame
    predictions: pd.DataFrame
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def data_window(self) -> tuple[str, str]:
        dates = self.predictions["date"]
        return dates.min().date().isoformat(), dates.max().date().isoformat()


def build_trained_model(
    prices: pd.DataFrame,
    model: FairPriceModel,
    backtest: BacktestSettings,
    band: BandSettings | None = None,
    computed: OutOfSample | None = None,
) -> TrainedModel:
    """Price every observation day out of sample (see `out_of_sample`).

    `computed` is `out_of_sample`'s result on `price_panel(prices)` when the caller (the
    training run, which backtests the same fair prices) already has it. The model kept is
    the last block's fit: the one that priced the latest days.
    """
    band = band or BandSettings()
    panel = price_panel(prices)
    if computed is None:
        first_origin = panel.index[0] + pd.Timedelta(days=backtest.min_history_days)
        computed = out_of_sample(panel, model, first_origin, backtest.refit_every_days, band)
    columns = {"fair_price": computed.fair, "fair_low": computed.low, "fair_high": computed.high}
    long = pd.concat(
        {
            name: pd.DataFrame(values, index=panel.index, columns=panel.columns).stack(
                future_stack=True
            )
            for name, values in columns.items()
        },
        axis=1,
    )
    predictions = prices[["item_id", "date", "market_price"]].join(long, on=["date", "item_id"])
    latest = prices.groupby("item_id", sort=True).last()
    span = prices.groupby("item_id", sort=True)["date"].agg(["min", "count"])
    items = (
        latest.reset_index()[list(ITEM_COLUMNS)]
        .assign(
            first_date=span["min"].to_numpy(),
            last_date=latest["date"].to_numpy(),
            last_price=latest["market_price"].to_numpy(),
            observations=span["count"].to_numpy(),
        )
        .reset_index(drop=True)
    )
    final = computed.model
    info = {
        "format": ARTIFACT_FORMAT,
        "feature_schema_version": FEATURE_SCHEMA_VERSION,
        "strategy": final.strategy,
        "horizon": final.horizon,
        "hyperparameters": final.hyper,
        "params": final.params,
        "band": {
            **band.model_dump(),
            "latest_calibration": computed.blocks[-1] if computed.blocks else None,
        },
    }
    return TrainedModel(final, items, predictions.reset_index(drop=True), info)


def save_trained_model(trained: TrainedModel, directory: Path) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    trained.items.to_parquet(directory / ITEMS_FILE, index=False)
    trained.predictions.to_parquet(directory / PREDICTIONS_FILE, index=False)
    (directory / INFO_FILE).write_text(json.dumps(trained.info, indent=2, default=_json_default))


def load_trained_model(directory: Path) -> TrainedModel:
    info = json.loads((directory / INFO_FILE).read_text())
    if info.get("format") not in READABLE_FORMATS:
        raise ValueError(
            f"model artifact format {info.get('format')!r} in {directory} is not one of "
            f"{', '.join(map(str, READABLE_FORMATS))}; retrain with this version (pokewatch train)"
        )
    model = FairPriceModel(
        info["strategy"],
        int(info["horizon"]),
        dict(info.get("hyperparameters", {})),
        dict(info["params"]),
    )
    predictions = pd.read_parquet(directory / PREDICTIONS_FILE)
    for column in ("fair_low", "fair_high"):
        if column not in predictions:
            predictions[column] = np.nan
    return TrainedModel(model, pd.read_parquet(directory / ITEMS_FILE), predictions, info)


def _json_default(value: object) -> object:
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"not JSON serializable: {type(value).__name__}")
