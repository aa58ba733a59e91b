"""The daily crontab entry: collect, then run the training pipeline, logging to a file.

ZenML's local orchestrator cannot schedule, so on one machine cron does it; on a cluster,
`deploy/k8s/base/cronjob.yaml` does. The entry is rendered from
`deploy/cron/pokewatch.crontab` and kept between marker lines, so installing twice
replaces it and removing leaves the user's other entries untouched.
"""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

from pipelines.settings import PROJECT_ROOT

TEMPLATE = PROJECT_ROOT / "deploy" / "cron" / "pokewatch.crontab"
BEGIN = "# BEGIN pokewatch-schedule"
END = "# END pokewatch-schedule"


@dataclass(frozen=True)
class Schedule:
    hour: int = 3
    minute: int = 0
    project: Path = PROJECT_ROOT
    log: Path = PROJECT_ROOT / "data" / "logs" / "pokewatch-daily.log"
    run_config: Path = PROJECT_ROOT / "pipelines" / "configs" / "scheduled.yaml"

    @property
    def pokewatch(self) -> Path:
        return self.project / ".venv" / "bin" / "pokewatch"


def render_block(schedule: Schedule) -> str:
    """The marked block of the template, with this schedule's values filled in."""
    text = TEMPLATE.read_text()
    block = text[text.index(BEGIN) : text.index(END) + len(END)]
    return block.format(
        minute=schedule.minute,
        hour=schedule.hour,
        project=schedule.project,
        pokewatch=schedule.pokewatch,
        log=schedule.log,
        run_config=schedule.run_config,
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


def install(schedule: Schedule) -> str:
    schedule.log.parent.mkdir(parents=True, exist_ok=True)
    block = render_block(schedule)
    write_crontab(with_block(read_crontab(), block))
    return block


def remove() -> bool:
    current = read_crontab()
    if installed_block(current) is None:
        return False
    write_crontab(without_block(current))
    return True
