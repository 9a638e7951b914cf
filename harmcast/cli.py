"""The ``harmcast`` command: one typer app over the library."""

from __future__ import annotations

import typer

from harmcast.commands import (
    board,
    data,
    desk,
    governance,
    metrics,
    modelling,
    pipeline,
    scale,
    serving,
    synth,
    weekly,
)

app = typer.Typer(
    name="harmcast",
    help="Weekly area-level violence forecasts from linked multi-agency data, "
    "with a governance registry. Forecasts are about areas, never people.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)

for _module in (
    synth,
    data,
    modelling,
    governance,
    board,
    desk,
    serving,
    pipeline,
    scale,
    weekly,
    metrics,
):
    _module.register(app)


if __name__ == "__main__":
    app()
