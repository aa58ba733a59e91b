"""Scoring: the production model applied to the updated price history (what the daily job
publishes). Nothing is fitted here.

The published table holds every observation of the history. Days before the model's
`scores_from` (the first day of its last backtest block) keep the rows the model priced
when it was trained, each by a fit on targets before its block; from `scores_from` on,
every observation, new days and new items included, is priced by the model's last fit with
its latest band calibration. That fit and that calibration saw targets before
`scores_from` only, so the fair price of day t depends on prices up to day t: adding later
days never changes an earlier answer. Older observations the model has no row for (e.g.
imported after it was trained) stay unpriced until the next retraining.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from model.artifact import (
    PREDICTION_COLUMNS,
    TrainedModel,
    item_table,
    priced_rows,
    with_buy_price,
)
from model.band import BandSettings, apply_calibration, short_history
from model.features import FEATURE_SCHEMA_VERSION, price_panels


class ScoringError(ValueError):
    """The model cannot score (an artifact without a stored fit, or no prices)."""


def score(trained: TrainedModel, prices: pd.DataFrame) -> TrainedModel:
    """The published table of `trained` on the validated price history `prices`."""
    if prices.empty:
        raise ScoringError("no prices to score")
    scores_from = trained.info.get("scores_from")
    model = trained.model
    if scores_from is None or (model.params.get("fitted") and model.state is None):
        raise ScoringError(
            f"this {model.strategy} artifact (format {trained.info.get('format')}) has no "
            "stored fit to score new days with: retrain (pokewatch train)"
        )
    features_of = str(trained.info.get("feature_schema_version"))
    if model.needs_fit and features_of != FEATURE_SCHEMA_VERSION:
        raise ScoringError(
            f"this {model.strategy} model was fitted on features of version {features_of}, "
            f"these are version {FEATURE_SCHEMA_VERSION}: retrain (pokewatch train)"
        )
    cutoff = pd.Timestamp(scores_from)
    recent = prices[prices["date"] >= cutoff]
    fresh = _price_recent(trained, prices, recent)
    older = with_buy_price(prices).loc[
        prices["date"] < cutoff, ["item_id", "date", "market_price", "buy_price"]
    ]
    kept = older.merge(
        trained.predictions[["item_id", "date", "fair_price", "fair_low", "fair_high"]],
        on=["item_id", "date"],
        how="left",
    )
    predictions = pd.concat([kept, fresh], ignore_index=True)[list(PREDICTION_COLUMNS)]
    info: dict[str, Any] = {
        **trained.info,
        "data_as_of": prices["date"].max().date().isoformat(),
        "history_rows": len(prices),
        "scored_rows": len(fresh),
    }
    return TrainedModel(model, item_table(prices), predictions, info)


def _price_recent(
    trained: TrainedModel, prices: pd.DataFrame, recent: pd.DataFrame
) -> pd.DataFrame:
    """Rows of `recent` priced by the model's last fit and latest calibration."""
    if recent.empty:
        return pd.DataFrame(columns=list(PREDICTION_COLUMNS))
    # The whole history up to the last day: the features of day t look back from t.
    panels = price_panels(prices)
    panel = panels.market
    forecast = trained.model.forecast(panels)
    fair = forecast.fair.to_numpy(dtype="float64")
    raw_low = None if forecast.low is None else forecast.low.to_numpy(dtype="float64")
    raw_high = None if forecast.high is None else forecast.high.to_numpy(dtype="float64")
    band = trained.info.get("band") or {}
    calibration = band.get("latest_calibration") or {}
    if calibration.get("offset_low") is not None:
        settings = BandSettings.model_validate(
            {name: band[name] for name in BandSettings.model_fields if name in band}
        )
        low, high = apply_calibration(
            fair,
            fair if raw_low is None else raw_low,
            fair if raw_high is None else raw_high,
            short_history(panel.to_numpy(dtype="float64"), settings),
            calibration,
        )
    elif raw_low is not None and raw_high is not None:
        low, high = raw_low, raw_high  # too little history to calibrate: the raw band
    else:
        low = high = np.full(fair.shape, np.nan)
    return priced_rows(recent, panel, fair, low, high)
