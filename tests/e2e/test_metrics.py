"""PokeWatch's metrics on BentoML's /metrics add up across worker processes."""

import re

import httpx
import pytest

from tests.e2e.conftest import bentoml_serve

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

REQUESTS = 40


def metric_total(text: str, name: str, labels: str = "") -> float:
    pattern = re.compile(rf"^{name}(?:\{{([^}}]*)\}})? ([0-9.e+]+)$", re.MULTILINE)
    return sum(float(value) for found, value in pattern.findall(text) if labels in found)


def test_counts_add_up_across_two_workers(model_tag: str, api_key: str) -> None:
    with bentoml_serve("service:PokeWatch", env={"POKEWATCH_SERVICE__WORKERS": "2"}) as base:
        for n in range(REQUESTS):
            # A new connection each time, so both workers take requests.
            response = httpx.post(
                f"{base}/fair_price",
                json={"card_id": "tcg-133777", "date": f"2024-06-{1 + n % 28:02d}"},
                headers={"X-API-Key": api_key},
            )
            assert response.status_code == 200
        httpx.post(
            f"{base}/batch_predict",
            json={"items": [{"card_id": "tcg-133777"}] * 5},
            headers={"X-API-Key": api_key},
        )
        text = httpx.get(f"{base}/metrics").text
    assert (
        metric_total(text, "pokewatch_prediction_seconds_count", 'endpoint="fair_price"')
        == REQUESTS
    )
    assert metric_total(text, "pokewatch_signals_total") == REQUESTS + 5
    assert metric_total(text, "pokewatch_batch_size_count") == 1
    assert metric_total(text, "pokewatch_batch_size_sum") == 5
    lookups = metric_total(text, "pokewatch_cache_lookups_total", 'tier="local"')
    assert lookups == REQUESTS + 5
    assert (
        metric_total(text, "pokewatch_rate_limit_decisions_total", 'decision="allowed"')
        == REQUESTS + 1
    )
    # Label values are bounded: endpoints and tiers, never ids or raw paths.
    assert "tcg-133777" not in text
