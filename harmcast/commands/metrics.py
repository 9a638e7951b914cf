"""harmcast commands: metrics (flat metrics files for ``dvc metrics``)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from harmcast.commands._common import ParamsOption, RootOption, console, fail_clearly, get_params

StepOption = Annotated[
    str, typer.Option("--step", help="backtest (results.json) or audit (gate_report.json).")
]


def metrics(
    root: RootOption = Path("."),
    params_file: ParamsOption = None,
    step: StepOption = "backtest",
) -> None:
    """Write data/08_reporting/<step>_metrics.json: the step's headline numbers, flat."""
    from training.errors import ConfigError
    from training.metrics.export import STEPS, export_metrics

    params = get_params(params_file, root)
    with fail_clearly():
        if step not in STEPS:
            raise ConfigError(f"--step {step!r}: expected one of {', '.join(STEPS)}")
        path = export_metrics(params, step=step)  # type: ignore[arg-type]
    console.print(f"wrote {path}")


def register(app: typer.Typer) -> None:
    """Add this module's commands to app."""
    app.command("metrics")(metrics)
