from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from model.evaluation import (
    BacktestSettings,
    GateSettings,
    backtest,
    evaluate,
    gate_failures,
    out_of_sample,
)
from model.features import Panels
from model.signals import SignalSettings
from model.strategies import STRATEGIES, FairPriceModel, Fitted, Forecast, Hyper, Strategy
from tests.model.conftest import day, make_panel

# Backtest of mean3, horizon 1, first origin day 2, last origin day 3 on SMALL_PRICES
# (see conftest): origins need an observation on t and on t + 1.
#   item day market target naive fair
#   a    2   14     13     14    (10+12+14)/3 = 12
#   b    2    4      0.5    4    (2+4)/2 = 3        <- target under min_price 1
#   c    2   22     18     22    (20+22)/2 = 21
#   a    3   13     15     13    (12+14+13)/3 = 13
#   c    3   18     20     18    (20+22+18)/3 = 20
# b on day 3 has no target (no price on day 4); d has no consecutive observations.
SETTINGS = BacktestSettings(min_history_days=2, refit_every_days=28, min_price=1.0)
MODEL = FairPriceModel("mean3", horizon=1)
FIXED = SignalSettings(rule="fixed")

SCORED = [  # (fair, naive, target) of the rows at or above min_price
    (12.0, 14.0, 13.0),
    (21.0, 22.0, 18.0),
    (13.0, 13.0, 15.0),
    (20.0, 18.0, 20.0),
]


@pytest.fixture
def rows(small_panel: pd.DataFrame) -> pd.DataFrame:
    return backtest(Panels(small_panel), MODEL, SETTINGS)


def test_backtest_rows(rows: pd.DataFrame) -> None:
    assert list(rows.columns) == [
        "item_id",
        "date",
        "market",
        "buy",
        "target",
        "naive",
        "fair",
        "low",
        "high",
    ]
    assert rows["item_id"].tolist() == ["a", "b", "c", "a", "c"]
    assert rows["date"].tolist() == [day(2), day(2), day(2), day(3), day(3)]
    assert rows["market"].tolist() == [14.0, 4.0, 22.0, 13.0, 18.0]
    assert rows["target"].tolist() == [13.0, 0.5, 18.0, 15.0, 20.0]
    assert rows["naive"].tolist() == [14.0, 4.0, 22.0, 13.0, 18.0]
    np.testing.assert_allclose(rows["fair"], [12.0, 3.0, 21.0, 13.0, 20.0])


def test_backtest_window_follows_settings(small_panel: pd.DataFrame) -> None:
    later = backtest(Panels(small_panel), MODEL, BacktestSettings(min_history_days=3))
    assert later["date"].unique().tolist() == [day(3)]
    longer = backtest(Panels(small_panel), FairPriceModel("mean3", horizon=2), SETTINGS)
    # horizon 2: origins day 2 only (day 4 - 2); a: 14 -> 15, c: 22 -> 20, d: 5 -> 6 (b: none).
    assert longer["item_id"].tolist() == ["a", "c", "d"]
    assert longer["target"].tolist() == [15.0, 20.0, 6.0]
    assert backtest(Panels(small_panel), MODEL, BacktestSettings(min_history_days=10)).empty


def _errors(pairs: list[tuple[float, float]]) -> dict[str, float]:
    signed = [(forecast - target) / target for forecast, target in pairs]
    absolute = sorted(abs(value) for value in signed)
    middle = len(absolute) // 2
    return {
        "mape": sum(absolute) / len(absolute),
        "median_ape": (absolute[middle - 1] + absolute[middle]) / 2,
        "rmse": math.sqrt(sum((f - t) ** 2 for f, t in pairs) / len(pairs)),
        "bias": sum(signed) / len(signed),
    }


def test_evaluate_metrics_by_hand(rows: pd.DataFrame) -> None:
    evaluation = evaluate(rows, 1, SignalSettings(), min_price=1.0)
    metrics = evaluation.metrics

    model = _errors([(fair, target) for fair, _, target in SCORED])
    naive = _errors([(naive, target) for _, naive, target in SCORED])
    # The same numbers written out: model APEs 1/13, 1/6, 2/15, 0; naive 1/13, 2/9, 2/15, 1/10.
    assert model["mape"] == pytest.approx((1 / 13 + 1 / 6 + 2 / 15 + 0) / 4)
    assert model["median_ape"] == pytest.approx((1 / 13 + 2 / 15) / 2)
    assert model["rmse"] == pytest.approx(math.sqrt((1 + 9 + 4 + 0) / 4))
    assert model["bias"] == pytest.approx((-1 / 13 + 1 / 6 - 2 / 15 + 0) / 4)
    assert naive["mape"] == pytest.approx((1 / 13 + 2 / 9 + 2 / 15 + 1 / 10) / 4)

    assert metrics["horizon"] == 1.0
    assert metrics["rows"] == 4.0
    assert metrics["items"] == 2.0
    assert metrics["coverage"] == 1.0
    for name, value in model.items():
        assert metrics[name] == pytest.approx(value), name
    for name, value in naive.items():
        assert metrics[f"naive_{name}"] == pytest.approx(value), name
    assert metrics["mape_ratio_to_naive"] == pytest.approx(model["mape"] / naive["mape"])

    table = evaluation.table()
    assert table.loc["mape", "model"] == pytest.approx(model["mape"])
    assert table.loc["rmse", "naive"] == pytest.approx(naive["rmse"])
    assert list(table.index) == ["mape", "median_ape", "rmse", "bias"]


def test_signal_return_table_by_hand(rows: pd.DataFrame) -> None:
    # deviation (market - fair) / fair and forward return target / market - 1:
    #   a d2: 14/12-1 = +16.7 % SELL, forward 13/14-1 = -1/14   (hit: it fell)
    #   c d2: 22/21-1 =  +4.8 % HOLD, forward 18/22-1 = -2/11   (miss: left the band)
    #   a d3: 13/13-1 =   0   % HOLD, forward 15/13-1 = +2/13   (miss: above +15 %)
    #   c d3: 18/20-1 = -10   % BUY,  forward 20/18-1 = +1/9    (hit: it rose)
    signals = evaluate(rows, 1, FIXED, min_price=1.0).signals

    assert list(signals.index) == ["HOLD", "BUY", "SELL"]
    assert signals["count"].tolist() == [2, 1, 1]
    assert signals.loc["BUY", "mean_forward_return"] == pytest.approx(1 / 9)
    assert signals.loc["BUY", "hit_rate"] == 1.0
    assert signals.loc["SELL", "mean_forward_return"] == pytest.approx(-1 / 14)
    assert signals.loc["SELL", "median_forward_return"] == pytest.approx(-1 / 14)
    assert signals.loc["SELL", "hit_rate"] == 1.0
    assert signals.loc["HOLD", "mean_forward_return"] == pytest.approx((-2 / 11 + 2 / 13) / 2)
    assert signals.loc["HOLD", "median_forward_return"] == pytest.approx((-2 / 11 + 2 / 13) / 2)
    assert signals.loc["HOLD", "hit_rate"] == 0.0


def test_signal_table_for_an_empty_signal_is_nan(rows: pd.DataFrame) -> None:
    wide = SignalSettings(rule="fixed", buy_at=-0.5, sell_at=0.5)
    signals = evaluate(rows, 1, wide).signals
    assert signals["count"].tolist() == [4, 0, 0]
    assert signals.loc["HOLD", "hit_rate"] == 1.0  # every forward return is within +-50 %
    for column in ("mean_forward_return", "median_forward_return", "hit_rate"):
        assert signals[column].isna().tolist() == [False, True, True], column


def test_min_price_exclusion(rows: pd.DataFrame) -> None:
    with_cheap = evaluate(rows, 1, SignalSettings(), min_price=0.0).metrics
    assert with_cheap["rows"] == 5.0
    assert with_cheap["items"] == 3.0
    # b's row (fair 3 vs target 0.5: APE 5.0) dominates the MAPE once it is included.
    assert with_cheap["mape"] == pytest.approx((1 / 13 + 1 / 6 + 2 / 15 + 0 + 5.0) / 5)

    only_dear = evaluate(rows, 1, SignalSettings(), min_price=16.0).metrics
    assert only_dear["rows"] == 2.0  # targets 18 and 20
    assert only_dear["items"] == 1.0


def test_coverage_counts_rows_without_a_fair_price(rows: pd.DataFrame) -> None:
    unpriced = pd.DataFrame(
        [
            {
                "item_id": "e",
                "date": day(2),
                "market": 5.0,
                "target": 6.0,
                "naive": 5.0,
                "fair": np.nan,
            }
        ]
    )
    metrics = evaluate(pd.concat([rows, unpriced], ignore_index=True), 1, SignalSettings()).metrics
    assert metrics["rows"] == 5.0
    assert metrics["coverage"] == pytest.approx(4 / 5)
    # Errors are over the priced rows only (the same as without the unpriced row).
    assert metrics["mape"] == pytest.approx((1 / 13 + 1 / 6 + 2 / 15 + 0) / 4)


def test_evaluate_without_rows_gives_nan_and_fails_the_gate(rows: pd.DataFrame) -> None:
    metrics = evaluate(rows.iloc[:0], 1, SignalSettings()).metrics
    assert metrics["rows"] == 0.0
    assert metrics["coverage"] == 0.0
    assert np.isnan(metrics["mape"])
    assert np.isnan(metrics["mape_ratio_to_naive"])
    assert len(gate_failures(metrics, GateSettings())) == 3


def test_gate_failures(rows: pd.DataFrame) -> None:
    metrics = evaluate(rows, 1, SignalSettings()).metrics  # mape ~0.0942
    strict = GateSettings(max_mape=0.05, max_mape_ratio_to_naive=0.5, min_coverage=1.0)
    unpriced = {**metrics, "coverage": 0.9}
    failures = gate_failures(unpriced, strict)
    assert len(failures) == 3
    assert failures[0].startswith("MAPE 0.0942 above the maximum 0.0500")
    assert "naive forecast" in failures[1]
    assert failures[2] == "coverage 0.900 below the minimum 1.000"

    loose = GateSettings(max_mape=1.0, max_mape_ratio_to_naive=10.0, min_coverage=0.5)
    assert gate_failures(unpriced, loose) == []
    assert gate_failures(metrics, GateSettings()) == []  # the defaults pass on these rows
    # Boundaries are inclusive.
    exact = GateSettings(
        max_mape=metrics["mape"], max_mape_ratio_to_naive=metrics["mape_ratio_to_naive"]
    )
    assert gate_failures(metrics, exact) == []


def _fake_fitted_strategy(
    monkeypatch: pytest.MonkeyPatch,
) -> tuple[list[pd.Timestamp | None], list[pd.Timestamp]]:
    """Register `probe`: fit records the last day it saw and learns how many days it saw;
    predict records the last day it was given and prices every day at that count."""
    fitted_upto: list[pd.Timestamp | None] = []
    predicted_upto: list[pd.Timestamp] = []

    def fit(panels: Panels, horizon: int, hyper: Hyper) -> Fitted:
        panel = panels.market
        fitted_upto.append(panel.index.max() if len(panel) else None)
        return Fitted(float(len(panel)), {"seen": float(len(panel))})

    def predict(panels: Panels, horizon: int, state: object, hyper: Hyper) -> Forecast:
        panel = panels.market
        predicted_upto.append(panel.index.max())
        assert isinstance(state, float)
        return Forecast(pd.DataFrame(state, index=panel.index, columns=panel.columns))

    monkeypatch.setitem(STRATEGIES, "probe", Strategy("probe", "test probe", predict, fit))
    return fitted_upto, predicted_upto


def test_out_of_sample_fits_only_on_days_before_each_block(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fitted_upto, predicted_upto = _fake_fitted_strategy(monkeypatch)
    panel = make_panel({"a": [float(k + 1) for k in range(20)], "b": [2.0] * 20})
    # Blocks start on days 0 (the prior), 5, 9, 13 and 17.
    settings = BacktestSettings(min_history_days=5, refit_every_days=4)
    computed = out_of_sample(Panels(panel), FairPriceModel("probe", horizon=2), settings)
    fair = computed.fair

    assert fitted_upto == [None, day(4), day(8), day(12), day(16)]
    assert predicted_upto == [day(4), day(8), day(12), day(16), day(19)]
    expected = np.repeat([0.0, 5.0, 9.0, 13.0, 17.0], [5, 4, 4, 4, 3])
    np.testing.assert_array_equal(fair[:, 0], expected)
    np.testing.assert_array_equal(fair[:, 1], expected)
    assert computed.model.params == {"seen": 17.0}  # the last block's fit


def test_backtest_of_a_fitted_strategy_is_out_of_sample(monkeypatch: pytest.MonkeyPatch) -> None:
    fitted_upto, _ = _fake_fitted_strategy(monkeypatch)
    panel = make_panel({"a": [10.0] * 12})
    settings = BacktestSettings(min_history_days=4, refit_every_days=3, min_price=0.0)
    rows = backtest(Panels(panel), FairPriceModel("probe", horizon=1), settings)

    assert rows["date"].tolist() == [day(k) for k in range(4, 11)]
    # Each origin's fair price is the number of days its block's fit saw: all before it.
    assert rows["fair"].tolist() == [4.0, 4.0, 4.0, 7.0, 7.0, 7.0, 10.0]
    # Blocks start on days 0, 4, 7 and 10; each fit saw only the days before its block.
    assert fitted_upto == [None, day(3), day(6), day(9)]
