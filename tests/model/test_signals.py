from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from model.signals import (
    BUY_CODE,
    HOLD_CODE,
    LABELS,
    SELL_CODE,
    Signal,
    SignalSettings,
    deviation,
    signal_codes,
)

DEFAULT = SignalSettings()


def signal_of(deviation_pct: float, thresholds: SignalSettings) -> Signal:
    """The `fixed` rule's signal for one deviation."""
    return LABELS[int(signal_codes(np.array([deviation_pct]), thresholds)[0])]


def one(market: float, fair: float) -> tuple[float, Signal]:
    pct = float(deviation(np.array([market]), np.array([fair]))[0])
    return pct, signal_of(pct, DEFAULT)


def test_codes_map_to_labels() -> None:
    assert LABELS[HOLD_CODE] is Signal.HOLD
    assert LABELS[BUY_CODE] is Signal.BUY
    assert LABELS[SELL_CODE] is Signal.SELL


def test_default_thresholds() -> None:
    assert DEFAULT.buy_at == -0.10
    assert DEFAULT.sell_at == 0.15


@pytest.mark.parametrize(
    ("market", "fair", "expected_pct", "expected"),
    [
        (90.0, 100.0, -0.10, Signal.BUY),  # exactly at buy_at: inclusive
        (115.0, 100.0, 0.15, Signal.SELL),  # exactly at sell_at: inclusive
        (90.01, 100.0, -0.0999, Signal.HOLD),  # just inside
        (114.99, 100.0, 0.1499, Signal.HOLD),  # just inside
        (89.99, 100.0, -0.1001, Signal.BUY),
        (115.01, 100.0, 0.1501, Signal.SELL),
        (100.0, 100.0, 0.0, Signal.HOLD),
        (50.0, 100.0, -0.5, Signal.BUY),
        (300.0, 100.0, 2.0, Signal.SELL),
    ],
)
def test_deviation_and_signal_boundaries(
    market: float, fair: float, expected_pct: float, expected: Signal
) -> None:
    pct, signal = one(market, fair)
    assert pct == pytest.approx(expected_pct, abs=1e-12)
    assert signal is expected


@pytest.mark.parametrize("fair", [0.0, -5.0, np.nan])
def test_unusable_fair_price_is_hold_with_nan_deviation(fair: float) -> None:
    with np.errstate(all="raise"):  # no warning escapes either
        pct, signal = one(10.0, fair)
    assert np.isnan(pct)
    assert signal is Signal.HOLD


def test_vectorized_codes() -> None:
    market = np.array([90.0, 115.0, 100.0, 10.0, 10.0, 50.0])
    fair = np.array([100.0, 100.0, 100.0, 0.0, np.nan, 100.0])
    pct = deviation(market, fair)
    np.testing.assert_allclose(pct, [-0.1, 0.15, 0.0, np.nan, np.nan, -0.5], equal_nan=True)
    assert signal_codes(pct, DEFAULT).tolist() == [
        BUY_CODE,
        SELL_CODE,
        HOLD_CODE,
        HOLD_CODE,
        HOLD_CODE,
        BUY_CODE,
    ]
    assert signal_codes(pct, DEFAULT).dtype == np.int8


def test_custom_thresholds() -> None:
    thresholds = SignalSettings(buy_at=-0.05, sell_at=0.05)
    assert signal_of(-0.05, thresholds) is Signal.BUY
    assert signal_of(-0.04, thresholds) is Signal.HOLD
    assert signal_of(0.05, thresholds) is Signal.SELL
    assert signal_of(-0.07, DEFAULT) is Signal.HOLD


@pytest.mark.parametrize(
    "values",
    [
        {"buy_at": 0.0},
        {"buy_at": 0.05},
        {"sell_at": 0.0},
        {"sell_at": -0.05},
        {"buy_at": 0.2, "sell_at": 0.1},
        {"hold_band": 0.1},
    ],
)
def test_thresholds_validation(values: dict[str, float]) -> None:
    with pytest.raises(ValidationError):
        SignalSettings(**values)


def test_thresholds_are_frozen() -> None:
    with pytest.raises(ValidationError):
        DEFAULT.buy_at = -0.2  # type: ignore[misc]


@settings(max_examples=50, deadline=None)
@given(
    pct=st.one_of(st.just(np.nan), st.floats(min_value=-2.0, max_value=2.0)),
    buy_at=st.floats(min_value=-1.0, max_value=-0.001),
    sell_at=st.floats(min_value=0.001, max_value=1.0),
)
def test_signal_codes_follow_the_fixed_rule(pct: float, buy_at: float, sell_at: float) -> None:
    signal = signal_of(pct, SignalSettings(buy_at=buy_at, sell_at=sell_at))
    if np.isnan(pct):
        assert signal is Signal.HOLD
    elif pct <= buy_at:
        assert signal is Signal.BUY
    elif pct >= sell_at:
        assert signal is Signal.SELL
    else:
        assert signal is Signal.HOLD
