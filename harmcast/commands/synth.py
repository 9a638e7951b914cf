"""harmcast commands: synth (generate the synthetic city's raw files)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from harmcast.commands._common import ParamsOption, RootOption, console, fail_clearly, get_params
from training.config import Params

PresetOption = Annotated[
    str | None,
    typer.Option("--preset", help="tiny, default, london or national (overrides params)."),
]
SeedOption = Annotated[int | None, typer.Option("--seed", help="Random seed (overrides params).")]
OutOption = Annotated[
    Path | None,
    typer.Option("--out", help="Folder to write the raw files to (default <root>/data/01_raw)."),
]


def synth(
    root: RootOption = Path("."),
    params_file: ParamsOption = None,
    preset: PresetOption = None,
    seed: SeedOption = None,
    out: OutOption = None,
) -> None:
    """Generate a synthetic city: every agency's raw files plus the oracle."""
    synth_step(get_params(params_file, root), preset=preset, seed=seed, out=out)


def synth_step(
    params: Params, *, preset: str | None = None, seed: int | None = None, out: Path | None = None
) -> None:
    """Generate the synthetic city's raw files into ``out`` (default ``data/01_raw``)."""
    from pydantic import ValidationError
    from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn
    from rich.table import Table

    from training.errors import ConfigError
    from training.synth.city import generate_city

    update = {k: v for k, v in (("preset", preset), ("seed", seed)) if v is not None}
    with fail_clearly():
        try:
            synth_params = params.synth.model_validate({**params.synth.model_dump(), **update})
        except ValidationError as exc:
            raise ConfigError(f"synth options: {exc.errors()[0]['msg']}") from exc
    out_dir = out if out is not None else params.paths.resolve("raw")
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        TaskProgressColumn(),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console, transient=True) as bar, fail_clearly():
        tasks: dict[str, int] = {}

        def report(step: str, done: int, total: int) -> None:
            if step not in tasks:
                tasks[step] = bar.add_task(step, total=total)
            bar.update(tasks[step], completed=done, total=total)

        summary = generate_city(synth_params, out_dir, progress=report)
    table = Table(
        title=f"synthetic city ({summary.preset}, seed {summary.seed})", show_header=False
    )
    for key, value in summary.to_dict().items():
        table.add_row(key, f"{value:.3f}" if isinstance(value, float) else str(value))
    console.print(table)


def register(app: typer.Typer) -> None:
    """Add this module's commands to app."""
    app.command("synth")(synth)
