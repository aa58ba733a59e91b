"""Out-of-sample evaluation: rolling-origin backtest, error metrics, signal returns, the gate.

Every row of a backtest is an (item, origin day t) with an observation on t and on t + h.
The model's fair price on t (fitted only on targets before t's block) and the naive
forecast (the last price on t) are both scored against the observed price on t + h, on
the same rows. Rows whose target is under `min_price` are left out of the error metrics:
a few cents' move on a $0.25 item would otherwise dominate MAPE.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

from model import features
from model.signals import LABELS, SignalThresholds, deviation, signal_codes
from model.strategies import FairPriceModel


class BacktestSettings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    min_history_days: int = Field(default=56, ge=1)
    refit_every_days: int = Field(default=28, ge=1)
    min_price: float = Field(default=1.0, ge=0)


class GateThresholds(BaseModel):
    """A model is saved only if it passes all of these (all computed out of sample)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

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


def backtest(
    panel: pd.DataFrame, model: FairPriceModel, settings: BacktestSettings | None = None
) -> pd.DataFrame:
    """Rows `item_id, date, market, target, naive, fair` for every scorable origin."""
    settings = settings or BacktestSettings()
    horizon = model.horizon
    dates = panel.index
    first_origin = dates[0] + pd.Timedelta(days=settings.min_history_days)
    last_origin = dates[-1] - pd.Timedelta(days=horizon)
    fair = out_of_sample_fair(panel, model, first_origin, settings.refit_every_days)

    observed = panel.to_numpy()
    target = panel.shift(-horizon).to_numpy()
    in_window = ((dates >= first_origin) & (dates <= last_origin))[:, None]
    day_index, item_index = np.nonzero(in_window & ~np.isnan(observed) & ~np.isnan(target))
    return pd.DataFrame(
        {
            "item_id": panel.columns.to_numpy()[item_index],
            "date": dates.to_numpy()[day_index],
            "market": observed[day_index, item_index],
            "target": target[day_index, item_index],
            "naive": features.last_price(panel).to_numpy()[day_index, item_index],
            "fair": fair[day_index, item_index],
        }
    )


def out_of_sample_fair(
    panel: pd.DataFrame, model: FairPriceModel, first_origin: pd.Timestamp, refit_every: int
) -> np.ndarray:
    """Fair prices where each block of days uses parameters fitted before the block.

    Days before `first_origin` use the strategy's prior (parameters fitted on nothing).
    """
    if not model.needs_fit:
        return model.fair_prices(panel).to_numpy()
    fair = np.full(panel.shape, np.nan)
    block_starts = [
        panel.index[0],
        *pd.date_range(first_origin, panel.index[-1], freq=f"{refit_every}D"),
    ]
    block_ends = [*block_starts[1:], panel.index[-1] + pd.Timedelta(days=1)]
    for start, end in zip(block_starts, block_ends, strict=True):
        fitted = model.fit(panel, before=start)
        upto_block_end = panel[panel.index < end]
        block = (upto_block_end.index >= start).nonzero()[0]
        fair[block] = fitted.fair_prices(upto_block_end).to_numpy()[block]
    return fair


def evaluate(
    rows: pd.DataFrame,
    horizon: int,
    thresholds: SignalThresholds,
    min_price: float = 1.0,
) -> Evaluation:
    """Error metrics of fair and naive on the same rows, coverage, and signal returns."""
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
    return Evaluation(horizon=horizon, metrics=metrics, signals=signal_returns(priced, thresholds))


def _errors(prefix: str, forecast: np.ndarray, target: np.ndarray) -> dict[str, float]:
    if len(target) == 0:
        return {f"{prefix}{name}": float("nan") for name in ("mape", "median_ape", "rmse", "bias")}
    signed = (forecast - target) / target
    return {
        f"{prefix}mape": float(np.mean(np.abs(signed))),
        f"{prefix}median_ape": float(np.median(np.abs(signed))),
        f"{prefix}rmse": float(np.sqrt(np.mean((forecast - target) ** 2))),
        f"{prefix}bias": float(np.mean(signed)),
    }


def signal_returns(rows: pd.DataFrame, thresholds: SignalThresholds) -> pd.DataFrame:
    """Per signal: count, mean and median forward return over the horizon, hit rate.

    A hit is a BUY followed by a rise, a SELL by a fall, a HOLD by a move within the
    thresholds' band.
    """
    market = rows["market"].to_numpy()
    codes = signal_codes(deviation(market, rows["fair"].to_numpy()), thresholds)
    forward = rows["target"].to_numpy() / market - 1.0
    table = []
    for code, label in enumerate(LABELS):
        moves = forward[codes == code]
        hits = {
            "BUY": moves > 0,
            "SELL": moves < 0,
            "HOLD": (moves > thresholds.buy_at) & (moves < thresholds.sell_at),
        }[label.value]
        table.append(
            {
                "signal": label.value,
                "count": len(moves),
                "mean_forward_return": float(moves.mean()) if len(moves) else float("nan"),
                "median_forward_return": float(np.median(moves)) if len(moves) else float("nan"),
                "hit_rate": float(hits.mean()) if len(moves) else float("nan"),
            }
        )
    return pd.DataFrame(table).set_index("signal")


def gate_failures(metrics: dict[str, float], gate: GateThresholds) -> list[str]:
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
