"""The auth modes over a real `bentoml serve` (two workers): `warn` serves keyless calls
with the rollout warning and counts them; `off` serves them silently; a wrong key is refused
in both (the default, `enforce`, is what every other e2e test runs)."""

from __future__ import annotations

import httpx
import pytest

from tests.e2e.conftest import bentoml_serve

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

WRONG = {"X-API-Key": "pw_test_000000000000_not-a-key"}


def test_warn_mode_serves_keyless_calls_with_the_warning(model_tag: str, api_key: str) -> None:
    env = {
        "POKEWATCH_SECURITY__AUTH_MODE": "warn",
        "POKEWATCH_SECURITY__ENFORCE_FROM": "2027-01-15",
        "POKEWATCH_SERVICE__WORKERS": "2",
    }
    with bentoml_serve("service:PokeWatch", env=env) as base:
        keyless = [httpx.get(f"{base}/v1/cards/tcg-133777") for _ in range(4)]
        assert {answer.status_code for answer in keyless} == {200}
        assert {answer.headers["sunset"] for answer in keyless} == {"Fri, 15 Jan 2027 00:00:00 GMT"}
        assert "2027-01-15" in keyless[0].headers["warning"]
        assert "ratelimit" in keyless[0].headers  # limited by the client address
        compat = httpx.post(f"{base}/fair_price", json={"card_id": "tcg-133777"})
        assert compat.status_code == 200
        assert "warning" in compat.headers
        assert httpx.get(f"{base}/v1/cards/tcg-133777", headers=WRONG).status_code == 401
        assert httpx.post(f"{base}/admin/reload").status_code == 401
        keyed = httpx.get(f"{base}/v1/cards/tcg-133777", headers={"X-API-Key": api_key})
        assert keyed.status_code == 200
        assert "warning" not in keyed.headers
        metrics = httpx.get(f"{base}/metrics").text
        counted = [
            line
            for line in metrics.splitlines()
            if line.startswith('pokewatch_keyless_requests_total{route="/v1/cards"}')
        ]
        assert counted
        assert float(counted[0].split()[-1]) == 4.0  # summed over both workers


def test_off_mode_serves_without_a_key_but_refuses_a_wrong_one(model_tag: str) -> None:
    with bentoml_serve("service:PokeWatch", env={"POKEWATCH_SECURITY__AUTH_MODE": "off"}) as base:
        answer = httpx.get(f"{base}/v1/cards/tcg-133777")
        assert answer.status_code == 200
        assert "warning" not in answer.headers
        assert httpx.get(f"{base}/v1/cards/tcg-133777", headers=WRONG).status_code == 401
