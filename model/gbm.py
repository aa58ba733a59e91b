"""The quantile gradient-boosting strategy (`quantile_gbm`): features, fit, predict.

For an item observed on day t the strategy forecasts the log return to day t + h,
y = log p[t+h] - log p[t] (clipped to +-`clip`), at the quantiles 0.1, 0.5 and 0.9 with
three scikit-learn `HistGradientBoostingRegressor(loss="quantile")` models trained on
every (item, day) row of the panel whose target day is before the fit's cut-off. The fair
price is p[t] * exp(median forecast); the 10 % and 90 % forecasts are the raw band, which
`model.band` then calibrates.

The features (`FEATURES`) are causal functions of the price panels (`model.features`): the
market price's history, the market's, and where the source sends them (TCGCSV) the
listings: the lowest listing, the mid and the direct-low listing relative to the market
price, the change of the lowest listing's ratio and how persistently it sat above the
market price (items without listings have NaN there, which the trees route on their own).
The value on day t uses observations on days <= t only, so computing them once on the whole
panel and fitting on the rows before a cut-off is the same as computing them on the panel
cut at that day. `out_of_sample` relies on this to build the features once per backtest.

scikit-learn (and skops, which stores a fit) are imported inside the fitting, scoring and
state code only: `import model` and the service, which answer from precomputed tables, do
not need them.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from model import features
from model.features import LISTING_COLUMNS, Panels

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

QUANTILES = (0.1, 0.5, 0.9)
# log(listing / market price) is clipped to +-this: a $0.01 listing on a $50 card, or a
# parked one, says "far off", not how far.
LISTING_RATIO_CLIP = 2.0
LISTING_FEATURES = (
    "low_to_market",
    "mid_to_market",
    "direct_low_to_market",
    "low_to_market_change_7d",
    "low_above_market_share_7d",
)
RETURN_DAYS = (1, 7, 28, 90)
MARKET_DAYS = (7, 28, 90)
FEATURES: tuple[str, ...] = (
    *(f"return_{days}d" for days in RETURN_DAYS),
    "days_since_previous_observation",
    "deviation_from_median_7d",
    "deviation_from_median_28d",
    "deviation_from_previous_median_7d",
    "deviation_from_mean_28d",
    "deviation_from_max_28d",
    "deviation_from_min_28d",
    "deviation_from_median_90d",
    "days_since_change",
    "volatility_28d",
    "mean_abs_move_28d",
    "change_share_28d",
    "observations_28d",
    "log_price",
    "age_days",
    "observed_on_first_day",
    *(f"market_median_return_{days}d" for days in MARKET_DAYS),
    *(f"market_mean_return_{days}d" for days in MARKET_DAYS),
    *LISTING_FEATURES,
)

# Hyper-parameters (numbers, so that configuration and JSON records stay simple).
DEFAULTS: dict[str, float] = {
    "max_iter": 80,  # boosting iterations per quantile model
    "learning_rate": 0.1,
    "max_leaf_nodes": 31,
    "min_samples_leaf": 200,
    "sample_rows": 60_000,  # random subsample of the training rows per fit
    "min_train_rows": 1_000,  # fewer training rows: keep the prior (the naive forecast)
    "clip": 1.0,  # targets are clipped to +-clip in log space
    "seed": 0,
    # OpenMP threads per fit (0: all cores). One is the default: on a shared or busy
    # machine two spinning OpenMP threads made a fit 8x slower (86 s against 11 s).
    "threads": 1,
}


def feature_panels(panels: Panels) -> Iterator[tuple[str, pd.DataFrame]]:
    """Every feature of `FEATURES` as a panel like the market panel (meaningful on
    observation days), one at a time: a caller that keeps only what it needs of each holds
    one panel at once (31 M rows are 250 MB a panel)."""
    panel = panels.market
    logp = features.log_prices(panel)
    observed = panel.notna()
    returns = {days: features.change_since(logp, days) for days in RETURN_DAYS}
    for days, values in returns.items():
        yield f"return_{days}d", values
    yield "days_since_previous_observation", features.days_since_previous_observation(panel)
    for days in (7, 28):
        yield (
            f"deviation_from_median_{days}d",
            logp - features.rolling_over_days(logp, days, "median"),
        )
    yield (
        "deviation_from_previous_median_7d",
        logp - features.rolling_over_days(logp.shift(1), 7, "median"),
    )
    for how in ("mean", "max", "min"):
        yield f"deviation_from_{how}_28d", logp - features.rolling_over_days(logp, 28, how)
    yield "deviation_from_median_90d", logp - features.rolling_over_days(logp, 90, "median")
    yield "days_since_change", features.days_since_change(logp)
    yield "volatility_28d", features.rolling_volatility(logp, 28)
    yield "mean_abs_move_28d", features.rolling_mean_abs_move(logp, 28)
    yield "change_share_28d", features.rolling_over_days(features.changed(logp), 28, "mean")
    yield "observations_28d", features.rolling_over_days(observed.astype("float64"), 28, "sum")
    yield "log_price", logp
    yield "age_days", features.days_since_first_observation(panel)
    on_first_day = observed.iloc[0].astype("float64") if len(panel) else observed.iloc[:0]
    yield "observed_on_first_day", across_days(panel, on_first_day.to_numpy())
    for days in MARKET_DAYS:
        for how, clip in (("median", None), ("mean", 0.5)):
            market = features.market_move(returns[days], how, clip).to_numpy()
            yield f"market_{how}_return_{days}d", across_items(panel, market)
    yield from listing_features(panels, logp)


def across_days(panel: pd.DataFrame, per_item: npt.NDArray[Any]) -> pd.DataFrame:
    """A panel holding each item's value on every day (a read-only view, no copy)."""
    values = np.broadcast_to(per_item, panel.shape)
    return pd.DataFrame(values, index=panel.index, columns=panel.columns, copy=False)


def across_items(panel: pd.DataFrame, per_day: npt.NDArray[Any]) -> pd.DataFrame:
    """A panel holding each day's value for every item (a read-only view, no copy)."""
    values = np.broadcast_to(per_day[:, None], panel.shape)
    return pd.DataFrame(values, index=panel.index, columns=panel.columns, copy=False)


def listing_features(panels: Panels, logp: pd.DataFrame) -> Iterator[tuple[str, pd.DataFrame]]:
    """The listing features of `LISTING_FEATURES` (NaN where the item has no listing)."""
    ratios = {
        column: (features.log_prices(panels.listing(column)) - logp).clip(
            -LISTING_RATIO_CLIP, LISTING_RATIO_CLIP
        )
        for column in LISTING_COLUMNS
    }
    low = ratios["low_price"]
    yield "low_to_market", low
    yield "mid_to_market", ratios["mid_price"]
    yield "direct_low_to_market", ratios["direct_low_price"]
    yield "low_to_market_change_7d", features.change_since(low, 7)
    above = (low > 0).astype("float64").where(low.notna())
    yield "low_above_market_share_7d", features.rolling_over_days(above, 7, "mean")


@dataclass(frozen=True)
class FeatureRows:
    """One row per (day, item) with an observation on the day, in day-then-item order."""

    day: IntArray
    item: IntArray
    log_price: FloatArray
    x: npt.NDArray[np.float32]
    target: FloatArray  # log p[t + h] - log p[t]; NaN without an observation on t + h


def feature_rows(panels: Panels, horizon: int) -> FeatureRows:
    """The feature matrix and the target of every observed (day, item)."""
    panel = panels.market
    logp = np.log(panel.to_numpy(dtype="float64"))
    day, item = np.nonzero(~np.isnan(logp))
    # Filled a column at a time in float32: never every feature panel, or a float64
    # matrix, at once.
    x = np.empty((len(day), len(FEATURES)), dtype=np.float32)
    column = {name: index for index, name in enumerate(FEATURES)}
    for name, values in feature_panels(panels):
        x[:, column[name]] = values.to_numpy()[day, item]
    target = np.full(len(day), np.nan)
    ahead = day + horizon < len(panel)
    target[ahead] = logp[day[ahead] + horizon, item[ahead]] - logp[day[ahead], item[ahead]]
    return FeatureRows(
        day.astype(np.int64),
        item.astype(np.int64),
        logp[day, item],
        x,
        target,
    )


def trainable_rows(rows: FeatureRows, panels: Panels) -> npt.NDArray[np.bool_]:
    """Rows a fit may learn from: a known target, and an item not held out."""
    return ~np.isnan(rows.target) & panels.learnable()[rows.item]


@dataclass(frozen=True)
class GbmState:
    """The three fitted quantile models (stored with skops, never as a pickle)."""

    models: tuple[Any, ...]


# The only non-builtin type a stored fit may contain besides skops' defaults: loading
# refuses a file that asks for anything else.
TRUSTED_STATE_TYPES = ("sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",)


def save_state(state: object, path: Path) -> None:
    """Write a fit with skops (a format that cannot run code when loaded)."""
    import skops.io

    if not isinstance(state, GbmState):
        raise TypeError(f"quantile_gbm cannot save a {type(state).__name__}")
    skops.io.dump(state.models, path)


def load_state(path: Path) -> GbmState:
    """Read a fit written by `save_state`; refuses types outside `TRUSTED_STATE_TYPES`."""
    import skops.io

    unexpected = sorted(set(skops.io.get_untrusted_types(file=path)) - set(TRUSTED_STATE_TYPES))
    if unexpected:
        raise ValueError(f"{path}: refusing to load a fit holding types {unexpected}")
    models = skops.io.load(path, trusted=list(TRUSTED_STATE_TYPES))
    if not isinstance(models, tuple) or len(models) != len(QUANTILES):
        raise ValueError(f"{path}: expected {len(QUANTILES)} quantile models")
    return GbmState(models)


def fit_rows(
    rows: FeatureRows, trainable: npt.NDArray[np.bool_], hyper: Mapping[str, float]
) -> tuple[GbmState | None, dict[str, Any]]:
    """Fit the quantile models on the rows marked `trainable` (their targets must be known).

    Returns no state (the prior) when there are fewer than `min_train_rows` of them.
    """
    chosen = np.nonzero(trainable)[0]
    summary: dict[str, Any] = {"training_rows": len(chosen)}
    if len(chosen) < max(int(hyper["min_train_rows"]), 1):
        return None, {**summary, "fitted": False}
    sample = int(hyper["sample_rows"])
    if len(chosen) > sample:
        rng = np.random.default_rng(int(hyper["seed"]))
        chosen = np.sort(rng.choice(chosen, sample, replace=False))
    x = rows.x[chosen]
    # scikit-learn 1.9.1 fails on a feature that is NaN in every training row (a short
    # history has no 28-day volatility yet): make it a constant, which no tree splits on.
    x[:, np.isnan(x).all(axis=0)] = 0.0
    y = np.clip(rows.target[chosen], -hyper["clip"], hyper["clip"])
    from sklearn.ensemble import HistGradientBoostingRegressor

    with _threads(len(chosen), int(hyper["threads"])):
        models = _fit_quantiles(HistGradientBoostingRegressor, x, y, hyper)
    return GbmState(models), {**summary, "fitted": True, "sampled_rows": len(chosen)}


SMALL_ROWS = 20_000  # fewer rows than this: one thread (OpenMP start-up costs more)


def _threads(rows: int, threads: int = 1) -> AbstractContextManager[object]:
    if threads <= 0 and rows >= SMALL_ROWS:
        return nullcontext()
    from threadpoolctl import threadpool_limits

    limit = threads if rows >= SMALL_ROWS else 1
    return threadpool_limits(limits=limit, user_api="openmp")  # type: ignore[no-any-return]


def _fit_quantiles(
    regressor: Any, x: npt.NDArray[np.float32], y: FloatArray, hyper: Mapping[str, float]
) -> tuple[Any, ...]:
    return tuple(
        regressor(
            loss="quantile",
            quantile=quantile,
            max_iter=int(hyper["max_iter"]),
            learning_rate=hyper["learning_rate"],
            max_leaf_nodes=int(hyper["max_leaf_nodes"]),
            min_samples_leaf=int(hyper["min_samples_leaf"]),
            early_stopping=False,
            random_state=int(hyper["seed"]),
        ).fit(x, y)
        for quantile in QUANTILES
    )


def predict_rows(
    state: GbmState | None, x: npt.NDArray[np.float32], threads: int = 1
) -> FloatArray:
    """Quantile log-return forecasts, shape (rows, 3), sorted along each row.

    Without a state (the prior), every quantile is 0: the naive forecast, and no band."""
    if state is None or len(x) == 0:
        return np.zeros((len(x), len(QUANTILES)))
    with _threads(len(x), threads):
        forecasts = np.column_stack([model.predict(x) for model in state.models])
    return np.sort(forecasts.astype(np.float64), axis=1)


@dataclass(frozen=True)
class RowForecast:
    """Forecasts of some rows: log fair price and log band (NaN band for the prior)."""

    index: IntArray
    log_fair: FloatArray
    log_low: FloatArray
    log_high: FloatArray


def forecast_rows(rows: FeatureRows, index: IntArray, state: GbmState | None) -> RowForecast:
    quantiles = predict_rows(state, rows.x[index])
    base = rows.log_price[index]
    low, high = base + quantiles[:, 0], base + quantiles[:, 2]
    if state is None:
        low = high = np.full(len(index), np.nan)
    return RowForecast(index, base + quantiles[:, 1], low, high)


def to_panels(
    panel: pd.DataFrame, rows: FeatureRows, forecasts: Sequence[RowForecast]
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Fair, low and high price panels (NaN on days without an observation)."""
    out = [np.full(panel.shape, np.nan) for _ in range(3)]
    for forecast in forecasts:
        day, item = rows.day[forecast.index], rows.item[forecast.index]
        for array, values in zip(
            out, (forecast.log_fair, forecast.log_low, forecast.log_high), strict=True
        ):
            array[day, item] = np.exp(values)
    fair, low, high = (
        pd.DataFrame(array, index=panel.index, columns=panel.columns) for array in out
    )
    return fair, low, high
