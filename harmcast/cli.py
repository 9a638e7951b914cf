"""The ``harmcast`` command: one typer app over the library."""

from __future__ import annotations

import os

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


@app.callback()
def _quiet_libraries() -> None:
    """Weekly area-level violence forecasts, with a governance registry."""
    # MLflow draws a tqdm bar per artifact download (the audit, the card, the
    # snapshot each download the model), which spills through the job's output.
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    # plots are written to files, never shown: no GUI backend (set here, not at import)
    os.environ.setdefault("MPLBACKEND", "Agg")


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
