"""Out-of-sample evaluation: rolling-origin backtest, error metrics, signal returns, the gate.

Every row of a backtest is an (item, origin day t) with an observation on t and on t + h.
The model's fair price on t (fitted only on targets before t's block) and the naive
forecast (the last price on t) are both scored against the observed price on t + h, on
the same rows. Rows whose target is under `min_price` are left out of the error metrics:
a few cents' move on a $0.25 item would otherwise dominate MAPE.

`out_of_sample` computes the fair prices and the band of every day once; the backtest
and the trained artifact (`model.artifact`) both use that one result
(`evaluate_out_of_sample` returns it with the backtest and its evaluation).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from pydantic import Field

from model import features
from model.band import BandSettings, calibrate, coverage
from model.features import Panels
from model.frozen import FrozenSettings
from model.signals import (
    BUY_CODE,
    LABELS,
    BuyPrice,
    FloatArray,
    Signal,
    SignalRule,
    SignalSettings,
    paid_price,
    rule_codes,
)
from model.strategies import FairPriceModel, Forecast


class BacktestSettings(FrozenSettings):
    min_history_days: int = Field(default=56, ge=1)
    refit_every_days: int = Field(default=28, ge=1)
    min_price: float = Field(default=1.0, ge=0)


class GateSettings(FrozenSettings):
    """A model is saved only if it passes all of these (all computed out of sample)."""

    max_mape: float = Field(default=0.10, gt=0)
    max_mape_ratio_to_naive: float = Field(default=1.0, gt=0)
    min_coverage: float = Field(default=0.95, ge=0, le=1)


@dataclass(frozen=True)
class Evaluation:
    horizon: int
    metrics: dict[str, float]
    signals: pd.DataFrame

    def table(self) -> pd.DataFrame:
        """Model next to the naive forecast, one row per metric."""
        names = ("mape", "median_ape", "rmse", "bias")
        return pd.DataFrame(
            {
                "model": [self.metrics[name] for name in names],
                "naive": [self.metrics[f"naive_{name}"] for name in names],
            },
            index=pd.Index(names, name="metric"),
        )


@dataclass(frozen=True)
class OutOfSample:
    """Fair price and calibrated band panels (days x items) of one strategy, every block
    priced by a fit on the targets before it; `model` is the last block's fit."""

    fair: FloatArray
    low: FloatArray
    high: FloatArray
    model: FairPriceModel
    blocks: list[dict[str, Any]] = field(default_factory=list)


def first_origin(panel: pd.DataFrame, settings: BacktestSettings) -> pd.Timestamp:
    """The first day a fitted strategy is scored on: `min_history_days` into the panel."""
    return pd.Timestamp(panel.index[0]) + pd.Timedelta(days=settings.min_history_days)


def block_starts(panel: pd.DataFrame, settings: BacktestSettings) -> list[pd.Timestamp]:
    """The first day (the prior's block), then every `refit_every_days` from the first origin."""
    return [
        panel.index[0],
        *pd.date_range(
            first_origin(panel, settings), panel.index[-1], freq=f"{settings.refit_every_days}D"
        ),
    ]


def out_of_sample(
    panels: Panels,
    model: FairPriceModel,
    settings: BacktestSettings,
    band: BandSettings | None = None,
) -> OutOfSample:
    """Fair prices and band where each block of days uses a fit on targets before the block.

    Days before the first origin use the strategy's prior (a fit on nothing). A strategy's
    `out_of_sample` fast path, when it has one, gives the same result in one pass.
    """
    panel = panels.market
    starts = block_starts(panel, settings)
    forecast, fitted = _block_forecasts(panels, model, starts)
    positions = [int(position) for position in panel.index.searchsorted(starts)]
    calibrated = calibrate(
        panel.to_numpy(dtype="float64"),
        model.horizon,
        forecast.fair.to_numpy(dtype="float64"),
        None if forecast.low is None else forecast.low.to_numpy(dtype="float64"),
        None if forecast.high is None else forecast.high.to_numpy(dtype="float64"),
        positions,
        band or BandSettings(),
        panels.learnable(),
    )
    blocks = [
        {**block, "start": panel.index[block["start"]].date().isoformat()}
        for block in calibrated.blocks
    ]
    return OutOfSample(
        forecast.fair.to_numpy(dtype="float64"), calibrated.low, calibrated.high, fitted, blocks
    )


def _block_forecasts(
    panels: Panels, model: FairPriceModel, starts: list[pd.Timestamp]
) -> tuple[Forecast, FairPriceModel]:
    if not model.needs_fit:
        return model.forecast(panels), model
    fast = model.definition.out_of_sample
    if fast is not None:
        forecast, last = fast(panels, model.horizon, model.hyper, starts)
        return forecast, model.with_fit(last)
    ends = [*starts[1:], panels.market.index[-1] + pd.Timedelta(days=1)]
    parts: dict[str, list[pd.DataFrame]] = {"fair": [], "low": [], "high": []}
    fitted = model
    for start, end in zip(starts, ends, strict=True):
        fitted = model.fit(panels, before=start)
        upto_block_end = panels.before(end)
        forecast = fitted.forecast(upto_block_end)
        in_block = upto_block_end.market.index >= start
        parts["fair"].append(forecast.fair[in_block])
        if forecast.low is not None and forecast.high is not None:
            parts["low"].append(forecast.low[in_block])
            parts["high"].append(forecast.high[in_block])
    has_band = len(parts["low"]) == len(starts)
    return (
        Forecast(
            pd.concat(parts["fair"]),
            pd.concat(parts["low"]) if has_band else None,
            pd.concat(parts["high"]) if has_band else None,
        ),
        fitted,
    )


def backtest(
    panels: Panels,
    model: FairPriceModel,
    settings: BacktestSettings | None = None,
    band: BandSettings | None = None,
    computed: OutOfSample | None = None,
) -> pd.DataFrame:
    """Rows `item_id, date, market, buy, target, naive, fair, low, high` for every scorable
    origin (`buy`: the lowest listing on the origin day, NaN without one).

    `computed` is `out_of_sample`'s result when the caller already has it.
    """
    settings = settings or BacktestSettings()
    horizon = model.horizon
    panel = panels.market
    dates = panel.index
    first = first_origin(panel, settings)
    last_origin = dates[-1] - pd.Timedelta(days=horizon)
    if computed is None:
        computed = out_of_sample(panels, model, settings, band)

    observed = panel.to_numpy()
    target = panel.shift(-horizon).to_numpy()
    in_window = ((dates >= first) & (dates <= last_origin))[:, None]
    # With sets held out of fitting, only their items are scored.
    scored_items = ~panels.learnable() if panels.held_out else np.ones(panel.shape[1], bool)
    scorable = in_window & scored_items[None, :] & ~np.isnan(observed) & ~np.isnan(target)
    day_index, item_index = np.nonzero(scorable)
    return pd.DataFrame(
        {
            "item_id": panel.columns.to_numpy()[item_index],
            "date": dates.to_numpy()[day_index],
            "market": observed[day_index, item_index],
            "buy": panels.listing("low_price").to_numpy()[day_index, item_index],
            "target": target[day_index, item_index],
            "naive": features.last_price(panel).to_numpy()[day_index, item_index],
            "fair": computed.fair[day_index, item_index],
            "low": computed.low[day_index, item_index],
            "high": computed.high[day_index, item_index],
        }
    )


@dataclass(frozen=True)
class Backtested:
    """One strategy priced out of sample once, the backtest rows scored on those prices,
    and their evaluation."""

    computed: OutOfSample
    rows: pd.DataFrame
    evaluation: Evaluation


def evaluate_out_of_sample(
    panels: Panels,
    model: FairPriceModel,
    settings: BacktestSettings,
    band: BandSettings | None,
    thresholds: SignalSettings,
) -> Backtested:
    """Price `model` out of sample (`out_of_sample`, once), backtest it on those prices and
    evaluate the rows with the signal rule `thresholds`."""
    computed = out_of_sample(panels, model, settings, band)
    rows = backtest(panels, model, settings, band, computed)
    evaluation = evaluate(rows, model.horizon, thresholds, settings.min_price)
    return Backtested(computed, rows, evaluation)


def evaluate(
    rows: pd.DataFrame,
    horizon: int,
    thresholds: SignalSettings,
    min_price: float = 1.0,
) -> Evaluation:
    """Error metrics of fair and naive on the same rows, coverage, band coverage, signals."""
    scored = rows[rows["target"] >= min_price]
    priced = scored[np.isfinite(scored["fair"])]
    target = priced["target"].to_numpy()
    metrics: dict[str, float] = {
        "horizon": float(horizon),
        "rows": float(len(scored)),
        "items": float(scored["item_id"].nunique()),
        "coverage": len(priced) / len(scored) if len(scored) else 0.0,
    }
    for prefix, forecast in (("", priced["fair"]), ("naive_", priced["naive"])):
        metrics.update(_errors(prefix, forecast.to_numpy(), target))
    metrics["mape_ratio_to_naive"] = (
        metrics["mape"] / metrics["naive_mape"] if metrics["naive_mape"] > 0 else float("nan")
    )
    low, high = _band_columns(priced)
    metrics["band_coverage"], metrics["band_share"] = coverage(target, low, high)
    return Evaluation(horizon=horizon, metrics=metrics, signals=signal_returns(priced, thresholds))


def _band_columns(rows: pd.DataFrame) -> tuple[FloatArray, FloatArray]:
    if "low" not in rows or "high" not in rows:
        missing = np.full(len(rows), np.nan)
        return missing, missing
    return rows["low"].to_numpy(dtype="float64"), rows["high"].to_numpy(dtype="float64")


def _errors(prefix: str, forecast: FloatArray, target: FloatArray) -> dict[str, float]:
    if len(target) == 0:
        return {f"{prefix}{name}": float("nan") for name in ("mape", "median_ape", "rmse", "bias")}
    signed = (forecast - target) / target
    return {
        f"{prefix}mape": float(np.mean(np.abs(signed))),
        f"{prefix}median_ape": float(np.median(np.abs(signed))),
        f"{prefix}rmse": float(np.sqrt(np.mean((forecast - target) ** 2))),
        f"{prefix}bias": float(np.mean(signed)),
    }


def signal_returns(rows: pd.DataFrame, thresholds: SignalSettings) -> pd.DataFrame:
    """Per signal: count, share of the rows, mean and median forward return over the
    horizon, hit rate; where rows have a buy price (the lowest listing), a `BUY@listing`
    line: the rule's BUY decided and bought at that price (`buy_on: listing`).

    A forward return is the target over the price paid, minus 1: the market price, or for
    a BUY with `buy_on: listing` the listing. A hit is a BUY followed by a rise, a SELL by
    a fall, a HOLD by a target within the rule's no-signal zone: inside the band (`band`
    rule; rows without a band do not count), or a move strictly between the thresholds
    (`fixed` and `expected` rules).
    """
    buy = rows["buy"].to_numpy(dtype="float64") if "buy" in rows else None
    table = _signal_table(rows, thresholds, buy)
    if buy is not None and np.isfinite(buy).any() and thresholds.buy_on != BuyPrice.LISTING:
        listing = thresholds.model_copy(update={"buy_on": BuyPrice.LISTING})
        bought = _signal_table(rows, listing, buy).loc[[Signal.BUY.value]]
        table = pd.concat([table, bought.rename(index={Signal.BUY.value: "BUY@listing"})])
    return table


def _signal_table(
    rows: pd.DataFrame, thresholds: SignalSettings, buy: FloatArray | None
) -> pd.DataFrame:
    market = rows["market"].to_numpy(dtype="float64")
    target = rows["target"].to_numpy(dtype="float64")
    low, high = _band_columns(rows)
    fair = rows["fair"].to_numpy(dtype="float64")
    codes = rule_codes(market, fair, low, high, thresholds, buy)
    paid = market
    if thresholds.buy_on == BuyPrice.LISTING and buy is not None:
        paid = np.where(codes == BUY_CODE, paid_price(market, buy), market)
    forward = target / paid - 1.0
    if thresholds.rule == SignalRule.BAND:
        hold_hit = np.where(np.isfinite(low), (target >= low) & (target <= high), np.nan)
    else:
        hold_hit = ((forward > thresholds.buy_at) & (forward < thresholds.sell_at)).astype(float)
    table = []
    for code, label in enumerate(LABELS):
        chosen = codes == code
        moves = forward[chosen]
        hits = {
            "BUY": (moves > 0).astype(float),
            "SELL": (moves < 0).astype(float),
            "HOLD": hold_hit[chosen],
        }[label.value]
        hits = hits[np.isfinite(hits)]
        table.append(
            {
                "signal": label.value,
                "count": len(moves),
                "share": len(moves) / len(rows) if len(rows) else float("nan"),
                "mean_forward_return": float(moves.mean()) if len(moves) else float("nan"),
                "median_forward_return": float(np.median(moves)) if len(moves) else float("nan"),
                "hit_rate": float(hits.mean()) if len(hits) else float("nan"),
            }
        )
    return pd.DataFrame(table).set_index("signal")


def gate_failures(metrics: dict[str, float], gate: GateSettings) -> list[str]:
    """Reasons the model fails the validation gate (empty when it passes)."""
    failures = []
    if not metrics["mape"] <= gate.max_mape:
        failures.append(f"MAPE {metrics['mape']:.4f} above the maximum {gate.max_mape:.4f}")
    if not metrics["mape_ratio_to_naive"] <= gate.max_mape_ratio_to_naive:
        failures.append(
            f"MAPE is {metrics['mape_ratio_to_naive']:.3f}x the naive forecast's, "
            f"above the maximum {gate.max_mape_ratio_to_naive:.3f}x"
        )
    if not metrics["coverage"] >= gate.min_coverage:
        failures.append(
            f"coverage {metrics['coverage']:.3f} below the minimum {gate.min_coverage:.3f}"
        )
    return failures
