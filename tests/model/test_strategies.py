from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings

from model.features import Panels
from model.strategies import (
    DEFAULT_STRATEGY,
    STRATEGIES,
    FairPriceModel,
    Fitted,
    Forecast,
    Hyper,
    Strategy,
)
from tests.model.conftest import make_panel, panel_and_perturbed_suffix

nan = np.nan


def test_default_strategy_is_registered() -> None:
    assert DEFAULT_STRATEGY in STRATEGIES
    assert FairPriceModel().strategy == DEFAULT_STRATEGY
    for name, strategy in STRATEGIES.items():
        assert strategy.name == name
        assert strategy.description


def test_last_and_mean3_on_a_gappy_panel() -> None:
    panel = make_panel(
        {"a": [10.0, nan, 16.0, 13.0, nan, 20.0], "b": [nan, 3.0, nan, nan, 6.0, 9.0]}
    )

    last = FairPriceModel("last").forecast(Panels(panel)).fair
    mean3 = FairPriceModel("mean3").forecast(Panels(panel)).fair

    np.testing.assert_allclose(
        last.to_numpy(),
        np.array([[10, nan], [10, 3], [16, 3], [13, 3], [13, 6], [20, 9]]),
        equal_nan=True,
    )
    np.testing.assert_allclose(
        mean3.to_numpy(),
        np.array([[10, nan], [10, 3], [13, 3], [13, 3], [13, 4.5], [49 / 3, 6]]),
        equal_nan=True,
    )


def test_unknown_strategy_and_bad_horizon_are_rejected() -> None:
    with pytest.raises(ValueError, match="unknown strategy 'nope'"):
        FairPriceModel("nope")
    with pytest.raises(ValueError, match="horizon must be at least 1"):
        FairPriceModel(horizon=0)


def test_parameter_free_strategy_fit_is_identity() -> None:
    model = FairPriceModel("last")
    assert not model.needs_fit
    assert model.fit(Panels(make_panel({"a": [1.0, 2.0]}))) is model


def test_fit_sees_only_days_before_the_cut_off(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[pd.DataFrame] = []

    def fit(panels: Panels, horizon: int, hyper: Hyper) -> Fitted:
        panel = panels.market
        seen.append(panel)
        return Fitted(len(panel), {"days": float(len(panel)), "horizon": float(horizon)})

    def predict(panels: Panels, horizon: int, state: object, hyper: Hyper) -> Forecast:
        panel = panels.market
        return Forecast(panel)

    monkeypatch.setitem(STRATEGIES, "probe", Strategy("probe", "test probe", predict, fit))
    panel = make_panel({"a": [1.0, 2.0, 3.0, 4.0, 5.0]})
    model = FairPriceModel("probe", horizon=3)

    assert model.needs_fit
    fitted = model.fit(Panels(panel), before=pd.Timestamp("2024-01-04"))
    assert fitted.params == {"days": 3.0, "horizon": 3.0}
    assert fitted.state == 3
    assert seen[-1].index.max() == pd.Timestamp("2024-01-03")
    assert model.params == {}  # fit returns a new model
    assert model.fit(Panels(panel)).params["days"] == 5.0


@pytest.mark.parametrize("name", sorted(STRATEGIES))
@settings(max_examples=50, deadline=None)
@given(case=panel_and_perturbed_suffix())
def test_strategy_has_no_look_ahead(
    name: str, case: tuple[pd.DataFrame, pd.DataFrame, int]
) -> None:
    panel, changed, cut = case
    # Fitted parameters come from days before the cut-off, so they are the same for both.
    before = panel.index[cut] + pd.Timedelta(days=1)
    model = FairPriceModel(name, horizon=1)
    fitted = model.fit(Panels(panel), before=before)
    fitted_changed = model.fit(Panels(changed), before=before)
    assert fitted.params == fitted_changed.params

    original = fitted.forecast(Panels(panel)).fair
    perturbed = fitted_changed.forecast(Panels(changed)).fair
    assert original.shape == panel.shape
    pd.testing.assert_frame_equal(original.iloc[: cut + 1], perturbed.iloc[: cut + 1])
