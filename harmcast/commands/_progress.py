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

    def __init__(self, console: Console, *, every: int = 1) -> None:
        self.console = console
        self.every = max(every, 1)
        self.tasks: dict[int, _Task] = {}
        self._updates = 0

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
        """Advance a task; print a line (description, steps done, elapsed, estimate).

        A line is printed every ``every`` updates and at the task's last step.
        """
        task = self.tasks[task_id]
        task.completed += advance
        if description is not None:
            task.description = description
        self._updates += 1
        last = task.total is not None and task.completed >= task.total
        if self._updates % self.every and not last:
            return
        elapsed = time.perf_counter() - task.started
        total = "" if task.total is None else f"/{task.total:g}"
        self.console.print(
            f"{task.description} [{task.completed:g}{total}] "
            f"{describe_eta(task.completed, task.total, elapsed)}",
            highlight=False,
        )


@contextmanager
def step_progress(console: Console, *, every: int = 1) -> Iterator[object]:
    """Yield a progress reporter: a rich bar on a terminal, :class:`LineProgress` elsewhere.

    ``every``: off a terminal, print one line per ``every`` updates (and the last).
    """
    if not console.is_terminal:
        yield LineProgress(console, every=every)
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
