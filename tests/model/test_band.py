from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from model.band import BandSettings, calibrate, coverage
from model.evaluation import evaluate, signal_returns
from model.signals import SignalSettings

nan = np.nan


def test_coverage_by_hand() -> None:
    target = np.array([1.0, 2.0, 3.0, 4.0])
    low = np.array([0.0, 2.5, 3.0, nan])
    high = np.array([2.0, 3.0, 3.0, 5.0])
    # 1 in [0, 2]; 2 not in [2.5, 3]; 3 in [3, 3] (inclusive); the last row has no band.
    inside, share = coverage(target, low, high)
    assert inside == pytest.approx(2 / 3)
    assert share == 0.75
    assert np.isnan(coverage(target, low * nan, high)[0])


def test_calibrating_the_naive_forecast_by_hand() -> None:
    # One item alternating 100, 110; the naive fair price is today's price; h = 1.
    prices = np.array([[100.0], [110.0], [100.0], [110.0], [100.0], [110.0]])
    band = calibrate(prices, 1, prices, None, None, [0, 4], BandSettings(coverage=0.5, min_rows=1))
    # Block 0 has no past rows: no band. Block 4 calibrates on origins 0..2 (targets 1..3):
    # log(fair / target) = -a, a, -a and log(target / fair) = a, -a, a with a = log 1.1;
    # their 75 % quantiles (linear) are 0 and a: fair_low = fair, fair_high = fair * 1.1.
    assert np.isnan(band.low[:4]).all()
    assert np.isnan(band.high[:4]).all()
    np.testing.assert_allclose(band.low[4:, 0], [100.0, 110.0])
    np.testing.assert_allclose(band.high[4:, 0], [110.0, 121.0])
    offsets = {"offset_low": pytest.approx(0.0), "offset_high": pytest.approx(np.log(1.1))}
    # Every row is of a short history (under 14 observed days): their own offsets agree.
    assert band.blocks[1] == {"start": 4, "rows": 3, **offsets, "short": {"rows": 3, **offsets}}
    assert band.blocks[0]["offset_low"] is None


def test_short_histories_get_their_own_wider_band() -> None:
    # Item 0 has a long, calm history; item 1 appears late and jumps +-20 % a day. A band
    # calibrated on both would be too narrow for item 1 and too wide for item 0.
    days = 60
    calm = 100.0 * (1 + 0.01 * (np.arange(days) % 2))
    jumpy = np.where(np.arange(days) >= 40, 100.0 * (1 + 0.2 * (np.arange(days) % 2)), np.nan)
    prices = np.column_stack([calm, jumpy])
    settings = BandSettings(coverage=0.8, min_rows=5, short_history_days=14)
    band = calibrate(prices, 1, prices, None, None, [0, 50], settings)
    short = band.blocks[1]["short"]
    # Origins under 14 observed days: item 0's first 13 (0..12) and item 1's 40..48.
    assert short["rows"] == 13 + 9
    assert short["offset_high"] > band.blocks[1]["offset_high"]
    # Day 51: item 1 has 12 observed days (short), item 0 has 52.
    np.testing.assert_allclose(
        band.high[51, 1] / band.low[51, 1],
        np.exp(max(short["offset_low"], 0) + max(short["offset_high"], 0)),
    )
    assert band.high[51, 1] / band.low[51, 1] > band.high[51, 0] / band.low[51, 0]
    # From its 14th observed day on, item 1 gets the offsets of every history.
    assert band.high[53, 1] / band.low[53, 1] == pytest.approx(band.high[53, 0] / band.low[53, 0])


def test_calibration_window_and_raw_band_fallback() -> None:
    prices = np.array([[100.0], [110.0], [100.0], [110.0], [100.0], [110.0]])
    raw_low, raw_high = prices * 0.9, prices * 1.2
    settings = BandSettings(coverage=0.5, min_rows=2, calibration_days=2)
    band = calibrate(prices, 1, prices, raw_low, raw_high, [0, 4], settings)
    # Only origin 2 (target day 3) is within the 2 days before block 4: too few rows, the
    # raw band is kept.
    np.testing.assert_allclose(band.low, raw_low)
    np.testing.assert_allclose(band.high, raw_high)
    assert band.blocks[1]["rows"] == 1


ROWS = pd.DataFrame(
    {
        "item_id": ["a", "a", "b", "b", "c"],
        "date": pd.to_datetime(["2024-01-01"] * 5),
        "market": [10.0, 10.0, 20.0, 20.0, 5.0],
        "target": [11.0, 9.0, 18.0, 21.0, 5.0],
        "naive": [10.0, 10.0, 20.0, 20.0, 5.0],
        "fair": [11.0, 10.5, 19.0, 20.0, 5.0],
        "low": [10.5, 9.5, 18.5, 19.0, nan],
        "high": [12.0, 11.0, 19.5, 21.0, nan],
    }
)


def test_band_signal_backtest_by_hand() -> None:
    # market vs band: a1 10 < 10.5 BUY (fwd +10 %), a2 in band HOLD (target 9 outside: miss),
    # b1 20 > 19.5 SELL (fwd -10 %), b2 in band HOLD (target 21 inside: hit), c no band HOLD.
    table = signal_returns(ROWS, SignalSettings(rule="band"))
    assert table["count"].to_dict() == {"HOLD": 3, "BUY": 1, "SELL": 1}
    assert table.loc["BUY", "mean_forward_return"] == pytest.approx(0.1)
    assert table.loc["BUY", "hit_rate"] == 1.0
    assert table.loc["SELL", "median_forward_return"] == pytest.approx(-0.1)
    assert table.loc["SELL", "hit_rate"] == 1.0
    assert table.loc["HOLD", "mean_forward_return"] == pytest.approx((-0.1 + 0.05 + 0.0) / 3)
    assert table.loc["HOLD", "median_forward_return"] == pytest.approx(0.0)
    assert table.loc["HOLD", "hit_rate"] == 0.5  # c has no band and is not counted


def test_evaluate_reports_band_coverage() -> None:
    metrics = evaluate(ROWS, 1, SignalSettings()).metrics
    # targets inside their band: a1 (11 in 10.5..12) and b2 (21 in 19..21); c has none.
    assert metrics["band_coverage"] == pytest.approx(2 / 4)
    assert metrics["band_share"] == pytest.approx(4 / 5)
