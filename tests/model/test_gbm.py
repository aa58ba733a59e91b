"""The quantile gradient-boosting strategy on small synthetic panels (tiny hyper-parameters)."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings

from model import gbm
from model.evaluation import BacktestSettings, out_of_sample
from model.features import Panels
from model.strategies import STRATEGIES, FairPriceModel
from tests.model.conftest import make_panel, panel_and_perturbed_suffix

nan = np.nan
TINY = {"max_iter": 20, "min_samples_leaf": 3, "max_leaf_nodes": 7, "min_train_rows": 10}


def gbm_model(horizon: int = 1, **overrides: float) -> FairPriceModel:
    return FairPriceModel("quantile_gbm", horizon, {**TINY, **overrides})


def spiky_panel(items: int = 12, days: int = 120, seed: int = 0) -> pd.DataFrame:
    """Flat items at different levels with one-day spikes (+50 %) that always revert."""
    rng = np.random.default_rng(seed)
    values = {}
    for k in range(items):
        series = np.full(days, 10.0 * (k + 1))
        for spike in rng.choice(np.arange(5, days - 1), size=12, replace=False):
            series[spike] *= 1.5
        values[f"i{k}"] = series.tolist()
    return make_panel(values)


def test_flat_series_forecasts_the_same_price() -> None:
    panel = make_panel({f"i{k}": [float(k + 1)] * 40 for k in range(5)})
    model = gbm_model().fit(Panels(panel))
    fair = model.forecast(Panels(panel)).fair
    np.testing.assert_allclose(fair.to_numpy(), panel.to_numpy())
    assert model.params["fitted"] is True
    assert model.params["training_rows"] == 39 * 5


def test_one_day_spike_is_expected_to_revert() -> None:
    panel = spiky_panel()
    model = gbm_model().fit(Panels(panel))
    forecast = model.forecast(Panels(panel))
    values = panel.to_numpy()
    spike = values > np.roll(values, 1, axis=0) * 1.2
    spike[0] = False
    # On a spike day the fair price is near the level the price returns to, not the spike.
    ratio = forecast.fair.to_numpy()[spike] / values[spike]
    assert np.median(ratio) == pytest.approx(1 / 1.5, abs=0.08)
    # The raw band is ordered around the fair price.
    assert forecast.low is not None
    assert forecast.high is not None
    assert np.all(forecast.low.to_numpy()[spike] <= forecast.fair.to_numpy()[spike] + 1e-9)
    assert np.all(forecast.high.to_numpy()[spike] >= forecast.fair.to_numpy()[spike] - 1e-9)


def test_step_change_gaps_and_a_new_item() -> None:
    base = spiky_panel(items=6, days=60)
    step = [20.0] * 30 + [30.0] * 30
    gappy = [nan if k % 3 else 50.0 for k in range(60)]
    new = [nan] * 58 + [7.0, 7.0]
    panel = base.assign(step=step, gappy=gappy, new=new)
    fair = gbm_model().fit(Panels(panel)).forecast(Panels(panel)).fair
    observed = panel.notna().to_numpy()
    # Priced on every observation day (the newest item too), never on a day without one.
    assert np.isfinite(fair.to_numpy()[observed]).all()
    assert np.isnan(fair.to_numpy()[~observed]).all()
    assert (fair.to_numpy()[observed] > 0).all()
    # After the step the fair price follows the new level, not the old one.
    assert fair["step"].iloc[-1] == pytest.approx(30.0, rel=0.2)


def test_without_a_fit_the_prior_is_the_naive_forecast_without_band() -> None:
    panel = make_panel({"a": [10.0, nan, 12.0, 11.0], "b": [nan, 5.0, 5.0, nan]})
    forecast = gbm_model().forecast(Panels(panel))
    np.testing.assert_allclose(forecast.fair.to_numpy(), panel.to_numpy(), equal_nan=True)
    assert forecast.low is not None
    assert forecast.low.isna().all().all()
    # Too few training rows: the fit keeps the prior.
    few = gbm_model(min_train_rows=1_000).fit(Panels(panel))
    assert few.state is None
    assert few.params == {"training_rows": 2, "fitted": False}


def test_unknown_hyperparameter_is_rejected() -> None:
    with pytest.raises(ValueError, match=r"unknown hyper-parameters \['trees'\]"):
        FairPriceModel("quantile_gbm", 7, {"trees": 3})
    assert gbm_model().hyper["learning_rate"] == gbm.DEFAULTS["learning_rate"]


def test_fast_out_of_sample_equals_fitting_block_by_block(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    panel = spiky_panel(items=8, days=90)
    model = gbm_model(horizon=2)
    settings = BacktestSettings(min_history_days=30, refit_every_days=20)
    fast = out_of_sample(Panels(panel), model, settings)
    slow_strategy = replace(STRATEGIES["quantile_gbm"], out_of_sample=None)
    monkeypatch.setitem(STRATEGIES, "quantile_gbm", slow_strategy)
    slow = out_of_sample(Panels(panel), model, settings)
    np.testing.assert_allclose(fast.fair, slow.fair, equal_nan=True)
    np.testing.assert_allclose(fast.low, slow.low, equal_nan=True)
    np.testing.assert_allclose(fast.high, slow.high, equal_nan=True)
    assert fast.model.params == slow.model.params
    # The first block (days 0-29) is the prior: the naive forecast.
    np.testing.assert_allclose(fast.fair[:30], panel.to_numpy()[:30])


@settings(max_examples=15, deadline=None)
@given(case=panel_and_perturbed_suffix())
def test_features_have_no_look_ahead(case: tuple[pd.DataFrame, pd.DataFrame, int]) -> None:
    panel, changed, cut = case
    original, perturbed = (
        dict(gbm.feature_panels(Panels(panel))),
        dict(gbm.feature_panels(Panels(changed))),
    )
    assert set(original) == set(gbm.FEATURES)
    for name in gbm.FEATURES:
        pd.testing.assert_frame_equal(
            original[name].iloc[: cut + 1], perturbed[name].iloc[: cut + 1], obj=name
        )


@settings(max_examples=15, deadline=None)
@given(case=panel_and_perturbed_suffix())
def test_fitted_gbm_has_no_look_ahead(case: tuple[pd.DataFrame, pd.DataFrame, int]) -> None:
    panel, changed, cut = case
    model = gbm_model(min_train_rows=3, min_samples_leaf=1, max_iter=5)
    before = panel.index[cut] + pd.Timedelta(days=1)
    fitted, fitted_changed = (
        model.fit(Panels(panel), before=before),
        model.fit(Panels(changed), before=before),
    )
    assert fitted.params == fitted_changed.params
    original = fitted.forecast(Panels(panel))
    perturbed = fitted_changed.forecast(Panels(changed))
    for mine, theirs in ((original.fair, perturbed.fair), (original.low, perturbed.low)):
        assert mine is not None
        assert theirs is not None
        pd.testing.assert_frame_equal(mine.iloc[: cut + 1], theirs.iloc[: cut + 1])


def test_model_package_imports_without_scikit_learn() -> None:
    code = (
        "import sys, model.artifact, model.predictor, model.lookup, model.training, "
        "model.strategies; assert 'sklearn' not in sys.modules, 'sklearn imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
