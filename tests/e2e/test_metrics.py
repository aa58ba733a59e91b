"""PokeWatch's metrics on BentoML's /metrics add up across worker processes."""

import re

import httpx
import pytest

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

REQUESTS = 40


def metric_total(text: str, name: str, labels: str = "") -> float:
    pattern = re.compile(rf"^{name}(?:\{{([^}}]*)\}})? ([0-9.e+]+)$", re.MULTILINE)
    return sum(float(value) for found, value in pattern.findall(text) if labels in found)


COUNTED = {
    "pokewatch_prediction_seconds_count": 'endpoint="fair_price"',
    "pokewatch_signals_total": "",
    "pokewatch_batch_size_count": "",
    "pokewatch_batch_size_sum": "",
    "pokewatch_cache_lookups_total": 'tier="local"',
    "pokewatch_rate_limit_decisions_total": 'decision="allowed"',
}


def counts(base: str) -> dict[str, float]:
    text = httpx.get(f"{base}/metrics").text
    # Label values are bounded: endpoints and tiers, never ids or raw paths.
    assert "tcg-133777" not in text
    return {name: metric_total(text, name, labels) for name, labels in COUNTED.items()}


def test_counts_add_up_across_two_workers(served_two_workers: str, api_key: str) -> None:
    base = served_two_workers
    before = counts(base)
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
    after = counts(base)
    added = {name: after[name] - before[name] for name in COUNTED}
    assert added == {
        "pokewatch_prediction_seconds_count": REQUESTS,
        "pokewatch_signals_total": REQUESTS + 5,
        "pokewatch_batch_size_count": 1,
        "pokewatch_batch_size_sum": 5,
        "pokewatch_cache_lookups_total": REQUESTS + 5,
        "pokewatch_rate_limit_decisions_total": REQUESTS + 1,
    }
