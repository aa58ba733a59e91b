"""The jobs' settings: tracked-item forms, the call budget's former name, schedules."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from pipelines.settings import PokemonPriceTrackerSettings, TrackedTcgcsvSettings
from service.settings import ScheduleSettings


def test_tcgcsv_selection_forms() -> None:
    assert TrackedTcgcsvSettings(group=23237).top is None  # every printing of the group
    assert TrackedTcgcsvSettings(group="all", top=5).group == "all"
    assert TrackedTcgcsvSettings(group=1, items=["tcg-1"]).items == ["tcg-1"]
    with pytest.raises(ValidationError, match="not both"):
        TrackedTcgcsvSettings(group=1, items=["tcg-1"], top=3)
    with pytest.raises(ValidationError, match="need their group id"):
        TrackedTcgcsvSettings(group="all", items=["tcg-1"])
    with pytest.raises(ValidationError):
        TrackedTcgcsvSettings.model_validate({"group": "some"})


def test_the_call_budget_is_per_day_and_its_former_name_still_reads() -> None:
    assert (
        PokemonPriceTrackerSettings.model_validate({"max_calls_per_run": 40}).max_calls_per_day
        == 40
    )
    assert (
        PokemonPriceTrackerSettings.model_validate({"max_calls_per_day": 50}).max_calls_per_day
        == 50
    )


def test_schedules_are_cron_expressions() -> None:
    assert ScheduleSettings(daily="15 2 * * *").daily == "15 2 * * *"
    with pytest.raises(ValidationError, match="not a cron expression"):
        ScheduleSettings(retrain="weekly")
