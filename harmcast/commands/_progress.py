"""Progress of long steps: a rich bar on a terminal, plain timed lines otherwise.

The library reports through two calls of ``rich.progress.Progress``
(``add_task(description, total=...)`` and ``update(task, advance=..., description=...)``),
so a step does not know where its progress is shown. On a terminal the bar
shows the step done out of the total, the elapsed time and an estimate of the
time left; in a log or a pipe (the main job under CI, ``tee``) each step prints
one line with the same figures, so a long step is never silent.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from rich.console import Console

__all__ = ["LineProgress", "step_progress", "describe_eta"]


def describe_eta(done: float, total: float | None, elapsed: float) -> str:
    """Return ``"12 s elapsed, about 30 s left"`` (no estimate before the first step)."""
    text = f"{elapsed:.0f} s elapsed"
    if total and 0 < done < total:
        text += f", about {elapsed / done * (total - done):.0f} s left"
    return text


@dataclass
class _Task:
    description: str
    total: float | None
    completed: float = 0.0
    started: float = field(default_factory=time.perf_counter)


class LineProgress:
    """The ``add_task``/``update`` calls of ``rich.progress.Progress``, as plain lines."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self.tasks: dict[int, _Task] = {}

    def add_task(self, description: str, total: float | None = None, **_: object) -> int:
        """Start a task; return its id."""
        task_id = len(self.tasks)
        self.tasks[task_id] = _Task(description, total)
        return task_id

    def update(
        self,
        task_id: int,
        *,
        advance: float = 0.0,
        description: str | None = None,
        **_: object,
    ) -> None:
        """Advance a task and print one line: description, steps done, elapsed, estimate."""
        task = self.tasks[task_id]
        task.completed += advance
        if description is not None:
            task.description = description
        elapsed = time.perf_counter() - task.started
        total = "" if task.total is None else f"/{task.total:g}"
        self.console.print(
            f"{task.description} [{task.completed:g}{total}] "
            f"{describe_eta(task.completed, task.total, elapsed)}",
            highlight=False,
        )


@contextmanager
def step_progress(console: Console) -> Iterator[object]:
    """Yield a progress reporter: a rich bar on a terminal, :class:`LineProgress` elsewhere."""
    if not console.is_terminal:
        yield LineProgress(console)
        return
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("elapsed, about"),
        TimeRemainingColumn(),
        TextColumn("left"),
    )
    with Progress(*columns, console=console, transient=True) as progress:
        yield progress
