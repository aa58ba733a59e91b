"""When the jobs run: the crontab entries of one machine, and a foreground scheduler.

Two jobs, on the `schedule` cron expressions (UTC): `pokewatch daily` (collect, score,
publish; 03:00 by default) and the weekly retrain (`pokewatch pipeline run` with the
scheduled run config). ZenML's local orchestrator cannot schedule, so:

- on one machine, `pokewatch schedule install` writes both into the user's crontab, between
  marker lines rendered from `deploy/cron/pokewatch.crontab` (installing twice replaces
  them; removing leaves the user's other entries), with `CRON_TZ=UTC` (cronie and
  systemd-cron honour it; Debian's cron runs the times in the machine's zone instead);
- in a container (compose), `pokewatch schedule run` runs them in the foreground, each as
  its own process, optionally the daily job once at start;
- on Kubernetes, the CronJobs of `deploy/k8s` run the same commands.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from croniter import croniter

from pipelines.settings import PROJECT_ROOT
from service.settings import ScheduleSettings

logger = logging.getLogger("pokewatch.schedule")

TEMPLATE = PROJECT_ROOT / "deploy" / "cron" / "pokewatch.crontab"
BEGIN = "# BEGIN pokewatch-schedule"
END = "# END pokewatch-schedule"
RETRAIN_CONFIG = PROJECT_ROOT / "pipelines" / "configs" / "scheduled.yaml"


def job_commands(pokewatch: str = "pokewatch") -> dict[str, list[str]]:
    """The command line of each scheduled job."""
    return {
        "daily": [pokewatch, "daily"],
        "retrain": [pokewatch, "pipeline", "run", "--config", str(RETRAIN_CONFIG)],
    }


@dataclass(frozen=True)
class CronInstall:
    schedule: ScheduleSettings
    project: Path = PROJECT_ROOT
    log: Path = PROJECT_ROOT / "data" / "logs" / "pokewatch-jobs.log"

    @property
    def pokewatch(self) -> Path:
        return self.project / ".venv" / "bin" / "pokewatch"


def render_block(install: CronInstall) -> str:
    """The marked block of the template, with this install's values filled in."""
    text = TEMPLATE.read_text()
    block = text[text.index(BEGIN) : text.index(END) + len(END)]
    commands = {job: " ".join(argv) for job, argv in job_commands(str(install.pokewatch)).items()}
    return block.format(
        daily=install.schedule.daily,
        retrain=install.schedule.retrain,
        project=install.project,
        daily_command=commands["daily"],
        retrain_command=commands["retrain"],
        log=install.log,
    )


def without_block(crontab: str) -> str:
    lines = crontab.splitlines()
    if BEGIN not in lines:
        return crontab
    start = lines.index(BEGIN)
    end = lines.index(END, start)
    kept = lines[:start] + lines[end + 1 :]
    return "\n".join(kept) + ("\n" if kept else "")


def with_block(crontab: str, block: str) -> str:
    rest = without_block(crontab)
    separator = "" if not rest or rest.endswith("\n") else "\n"
    return f"{rest}{separator}{block}\n"


def installed_block(crontab: str) -> str | None:
    lines = crontab.splitlines()
    if BEGIN not in lines:
        return None
    start = lines.index(BEGIN)
    return "\n".join(lines[start : lines.index(END, start) + 1])


def crontab_command() -> str:
    # Overridable so tests (and odd systems) can point at another crontab binary.
    return os.environ.get("POKEWATCH_CRONTAB", "crontab")


def read_crontab() -> str:
    result = subprocess.run(  # noqa: S603 - a fixed argv, no shell
        [crontab_command(), "-l"], capture_output=True, text=True, check=False
    )
    # `crontab -l` exits 1 with "no crontab for <user>" when there is none yet.
    if result.returncode != 0 and "no crontab" not in result.stderr:
        raise RuntimeError(f"crontab -l failed: {result.stderr.strip()}")
    return result.stdout if result.returncode == 0 else ""


def write_crontab(text: str) -> None:
    subprocess.run(  # noqa: S603 - a fixed argv, no shell
        [crontab_command(), "-"], input=text, text=True, check=True, capture_output=True
    )


def install(entry: CronInstall) -> str:
    entry.log.parent.mkdir(parents=True, exist_ok=True)
    block = render_block(entry)
    write_crontab(with_block(read_crontab(), block))
    return block


def remove() -> bool:
    current = read_crontab()
    if installed_block(current) is None:
        return False
    write_crontab(without_block(current))
    return True


def next_run(schedule: ScheduleSettings, after: datetime) -> tuple[datetime, str]:
    """The next (time, job) after `after`; the daily job first when both fall together."""
    runs = [
        (croniter(expression, after).get_next(datetime), job)
        for job, expression in (("daily", schedule.daily), ("retrain", schedule.retrain))
    ]
    return min(runs, key=lambda run: (run[0], run[1] != "daily"))


def run_job(argv: Sequence[str]) -> int:
    logger.warning("running %s", " ".join(argv))
    return subprocess.run(argv, check=False).returncode  # noqa: S603 - our own commands


def run_schedule(
    schedule: ScheduleSettings,
    commands: dict[str, list[str]],
    run_daily_now: bool = False,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    sleep: Callable[[float], None] = time.sleep,
    run: Callable[[Sequence[str]], int] = run_job,
    runs: int | None = None,
) -> None:
    """Run the jobs on schedule, forever (or `runs` times); a failed job is logged and the
    schedule goes on (its failure is in the store's jobs.json)."""
    done = 0
    if run_daily_now:
        run(commands["daily"])
        done += 1
    while runs is None or done < runs:
        when, job = next_run(schedule, clock())
        while (wait := (when - clock()).total_seconds()) > 0:
            sleep(min(wait, 60.0))
        code = run(commands[job])
        if code != 0:
            logger.error("%s exited %d", job, code)
        done += 1


def pokewatch_executable() -> str:
    """This interpreter's `pokewatch` (the console script beside it)."""
    beside = Path(sys.executable).with_name("pokewatch")
    return str(beside) if beside.exists() else "pokewatch"
