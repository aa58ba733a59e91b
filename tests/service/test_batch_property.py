"""A batch answers every item exactly as /fair_price answers it alone."""

from datetime import date, timedelta

import hypothesis.strategies as st
from hypothesis import HealthCheck, given, settings
from starlette.testclient import TestClient

CARDS = ["tcg-133777", "tcg-149380", "sv2a_151_charizard_ex___201_165", "no-such-card"]
DAYS = st.dates(date(2023, 12, 1), date(2026, 1, 31)).map(date.isoformat)
ITEM = st.fixed_dictionaries(
    {"card_id": st.sampled_from(CARDS)}, optional={"date": st.one_of(st.none(), DAYS)}
)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(items=st.lists(ITEM, min_size=1, max_size=12))
def test_batch_equals_single_predictions(client: TestClient, items: list[dict[str, str]]) -> None:
    batch = client.post("/batch_predict", json={"items": items}).json()["results"]
    for index, (item, in_batch) in enumerate(zip(items, batch, strict=True)):
        single = client.post("/fair_price", json=item).json()
        if "error" in single:
            assert in_batch["index"] == index
            assert (in_batch["error"], in_batch["detail"]) == (single["error"], single["detail"])
        else:
            assert in_batch == single


def test_cached_answers_equal_fresh_ones(client: TestClient) -> None:
    day = (date(2025, 1, 1) + timedelta(days=3)).isoformat()
    first = client.post("/fair_price", json={"card_id": "tcg-133777", "date": day})
    again = client.post("/fair_price", json={"card_id": "tcg-133777", "date": day})
    assert first.content == again.content
    health = client.post("/health").json()
    assert health["cache"]["local"]["hits"] >= 1
