"""Progress bars on stderr (rich): animated on a terminal, a final line in a log file.

rich is the pipelines extra's: it is imported when a bar starts, so importing this module
(the CLI does, at start) needs the serving packages only.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from functools import cache
from types import TracebackType
from typing import TYPE_CHECKING, TypeVar

if TYPE_CHECKING:
    from rich.console import Console
    from rich.progress import Progress

ItemT = TypeVar("ItemT")


@cache
def _console() -> Console:
    from rich.console import Console

    return Console(stderr=True)


def _progress() -> Progress:
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        SpinnerColumn,
        TextColumn,
        TimeElapsedColumn,
    )

    return Progress(
        SpinnerColumn(),
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=_console(),
    )


def track(items: Iterable[ItemT], description: str, total: int | None = None) -> Iterator[ItemT]:
    """`items`, with a bar advancing on each."""
    with _progress() as progress:
        yield from progress.track(items, total=total, description=description)


class Steps:
    """A bar over a fixed number of named steps; `step(name)` finishes the previous one."""

    def __init__(self, title: str, total: int, enabled: bool = True) -> None:
        self.title = title
        self.progress = _progress() if enabled else None
        self.task = self.progress.add_task(title, total=total) if self.progress else None
        self.started = False

    @classmethod
    def silent(cls) -> Steps:
        return cls("", 1, enabled=False)

    def __enter__(self) -> Steps:
        if self.progress is not None:
            self.progress.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self.progress is not None and self.task is not None:
            if kind is None:
                self.progress.update(self.task, completed=self.progress.tasks[0].total)
            self.progress.stop()

    def step(self, name: str) -> None:
        if self.progress is None or self.task is None:
            return
        self.progress.update(
            self.task, advance=1 if self.started else 0, description=f"{self.title}: {name}"
        )
        self.started = True
