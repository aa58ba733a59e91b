from __future__ import annotations

from typing import Any

import pandas as pd
import pytest

from model import artifact, evaluation, training
from model.evaluation import BacktestSettings, out_of_sample
from model.settings import ModelSettings
from model.signals import SignalSettings


def test_train_computes_out_of_sample_fair_prices_once(
    small_prices: pd.DataFrame, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[str] = []
    original = out_of_sample

    def counting(*args: Any, **kwargs: Any) -> Any:
        calls.append(args[1].strategy)
        return original(*args, **kwargs)

    monkeypatch.setattr(evaluation, "out_of_sample", counting)
    monkeypatch.setattr(artifact, "out_of_sample", counting)
    settings = ModelSettings(
        strategy="mean3", horizon=1, backtest=BacktestSettings(min_history_days=1)
    )
    result = training.train(small_prices, settings)

    assert calls == ["mean3"]
    # The artifact's fair prices are the ones the evaluation scored.
    fair = result.trained.predictions.set_index(["item_id", "date"])["fair_price"]
    assert fair[("a", pd.Timestamp("2024-01-03"))] == pytest.approx(12.0)
    assert result.evaluation.metrics["rows"] == 5.0  # origins on days 1-3 with targets >= $1
    assert "band_coverage" in result.evaluation.metrics
    assert result.trained.info["signal_rule"] == SignalSettings().model_dump(mode="json")
