"""The trained artifact: the fair-price table the service answers from, and its files.

A trained model carries the price history it was trained on and the fair price for every
observation day, so a service needs nothing but the artifact directory to answer.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from model.evaluation import BacktestSettings, out_of_sample_fair
from model.features import FEATURE_SCHEMA_VERSION, price_panel
from model.schema import OPTIONAL_TEXT_COLUMNS
from model.strategies import FairPriceModel

MODEL_NAME = "pokewatch-fair-price"  # the name in the BentoML model store
ARTIFACT_FORMAT = 1
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
    prices: pd.DataFrame, model: FairPriceModel, backtest: BacktestSettings
) -> TrainedModel:
    """Fit on all rows and price every observation day out of sample (see `out_of_sample_fair`)."""
    panel = price_panel(prices)
    first_origin = panel.index[0] + pd.Timedelta(days=backtest.min_history_days)
    fair = pd.DataFrame(
        out_of_sample_fair(panel, model, first_origin, backtest.refit_every_days),
        index=panel.index,
        columns=panel.columns,
    )
    fair_long = fair.stack().rename("fair_price")  # type: ignore[call-overload]
    predictions = prices[["item_id", "date", "market_price"]].join(
        fair_long, on=["date", "item_id"]
    )
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
    final = model.fit(panel)
    info = {
        "format": ARTIFACT_FORMAT,
        "feature_schema_version": FEATURE_SCHEMA_VERSION,
        "strategy": final.strategy,
        "horizon": final.horizon,
        "params": final.params,
    }
    return TrainedModel(final, items, predictions.reset_index(drop=True), info)


def save_trained_model(trained: TrainedModel, directory: Path) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    trained.items.to_parquet(directory / ITEMS_FILE, index=False)
    trained.predictions.to_parquet(directory / PREDICTIONS_FILE, index=False)
    (directory / INFO_FILE).write_text(json.dumps(trained.info, indent=2, default=_json_default))


def load_trained_model(directory: Path) -> TrainedModel:
    info = json.loads((directory / INFO_FILE).read_text())
    if info.get("format") != ARTIFACT_FORMAT:
        raise ValueError(
            f"model artifact format {info.get('format')!r} in {directory} is not "
            f"{ARTIFACT_FORMAT}; retrain with this version (pokewatch train)"
        )
    model = FairPriceModel(info["strategy"], int(info["horizon"]), dict(info["params"]))
    return TrainedModel(
        model,
        pd.read_parquet(directory / ITEMS_FILE),
        pd.read_parquet(directory / PREDICTIONS_FILE),
        info,
    )


def _json_default(value: object) -> object:
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"not JSON serializable: {type(value).__name__}")
