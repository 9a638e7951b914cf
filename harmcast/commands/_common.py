"""Helpers shared by the typer commands: options, params loading, error exit."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from training.config import Params, load_params
from training.errors import HarmcastError

console = Console()
err_console = Console(stderr=True)

ParamsOption = Annotated[
    Path | None,
    typer.Option("--params", help="params.yaml to read (defaults when absent)."),
]
RootOption = Annotated[
    Path,
    typer.Option("--root", help="Folder the data layers and mlruns/ live under."),
]


def get_params(params_file: Path | None, root: Path) -> Params:
    """Load params; a default ``params.yaml`` in the root is used when present."""
    if params_file is None and (root / "params.yaml").is_file():
        params_file = root / "params.yaml"
    with fail_clearly():
        return load_params(params_file, root=root)


@contextmanager
def fail_clearly() -> Iterator[None]:
    """Turn a ``HarmcastError`` into a red message and exit code 1 (no traceback)."""
    try:
        yield
    except HarmcastError as exc:
        err_console.print(f"[bold red]error:[/] {exc}")
        raise typer.Exit(code=1) from exc


Register = Callable[[typer.Typer], None]
