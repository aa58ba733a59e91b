"""The foreground scheduler of `pokewatch schedule run` (compose), on a fake clock."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from pipelines.scheduling import job_commands, next_run, run_schedule
from service.settings import ScheduleSettings

SCHEDULE = ScheduleSettings(daily="0 3 * * *", retrain="0 4 * * 0")


def test_next_run_in_utc_daily_before_retrain() -> None:
    monday = datetime(2026, 11, 30, 12, tzinfo=UTC)
    assert next_run(SCHEDULE, monday) == (datetime(2026, 12, 1, 3, tzinfo=UTC), "daily")
    saturday_night = datetime(2026, 12, 5, 23, tzinfo=UTC)
    assert next_run(SCHEDULE, saturday_night) == (datetime(2026, 12, 6, 3, tzinfo=UTC), "daily")
    sunday = datetime(2026, 12, 6, 3, 30, tzinfo=UTC)
    assert next_run(SCHEDULE, sunday) == (datetime(2026, 12, 6, 4, tzinfo=UTC), "retrain")
    both = ScheduleSettings(daily="0 3 * * *", retrain="0 3 * * *")
    assert next_run(both, monday)[1] == "daily"


def test_the_scheduler_runs_each_job_at_its_time_and_survives_a_failure() -> None:
    now = [datetime(2026, 12, 5, 12, tzinfo=UTC)]
    ran: list[tuple[datetime, str]] = []

    def sleep(seconds: float) -> None:
        now[0] += timedelta(seconds=seconds)

    def run(argv: Sequence[str]) -> int:
        ran.append((now[0], argv[1]))
        return 1 if argv[1] == "daily" and len(ran) == 2 else 0

    commands = job_commands("pokewatch")
    run_schedule(SCHEDULE, commands, True, lambda: now[0], sleep, run, runs=4)
    assert ran == [
        (datetime(2026, 12, 5, 12, tzinfo=UTC), "daily"),  # --now
        (datetime(2026, 12, 6, 3, tzinfo=UTC), "daily"),  # failed: the schedule goes on
        (datetime(2026, 12, 6, 4, tzinfo=UTC), "pipeline"),
        (datetime(2026, 12, 7, 3, tzinfo=UTC), "daily"),
    ]
    assert commands["retrain"][1:4] == ["pipeline", "run", "--config"]
