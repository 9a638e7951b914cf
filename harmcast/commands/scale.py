"""harmcast commands: ``scale run`` and ``scale info`` (the pipeline on Dask)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from harmcast.commands._common import (
    ParamsOption,
    RootOption,
    console,
    fail_clearly,
    get_params,
)

AddressOption = Annotated[
    str | None,
    typer.Option("--address", help="Scheduler to use (tcp://host:8786); else params dask."),
]
WorkersOption = Annotated[
    int | None, typer.Option("--workers", min=1, help="LocalCluster workers (overrides params).")
]
ThreadsOption = Annotated[
    int | None,
    typer.Option("--threads", min=2, help="Threads per LocalCluster worker (overrides params)."),
]


def _dask_params(params, address, workers, threads):
    update = {"enabled": True}
    for key, value in (("scheduler_address", address), ("n_workers", workers),
                       ("threads_per_worker", threads)):  # fmt: skip
        if value is not None:
            update[key] = value
    return params.model_copy(update={"dask": params.dask.model_copy(update=update)})


def run(
    root: RootOption = Path("."),
    params_file: ParamsOption = None,
    until: Annotated[
        str, typer.Option(help="Last step to run: ingest, panel, features or train.")
    ] = "train",
    address: AddressOption = None,
    workers: WorkersOption = None,
    threads: ThreadsOption = None,
) -> None:
    """Run ingest, panel, features and train on Dask; write the same data layers.

    Runs on Dask whatever dask.enabled says (which switches the step commands
    themselves). Without --address (or dask.scheduler_address in params.yaml)
    a LocalCluster starts on this machine and stops at the end.
    """
    from rich.progress import Progress

    from training.errors import ConfigError
    from training.scale import dask_client, run_scaled
    from training.scale.cluster import describe_client
    from training.scale.run import STEPS, write_scaled

    params = _dask_params(get_params(params_file, root), address, workers, threads)
    with fail_clearly():
        if until not in STEPS:
            raise ConfigError(f"--until {until!r}: expected one of {', '.join(STEPS)}")
        with (
            dask_client(params.dask) as client,
            Progress(console=console, transient=True) as progress,
        ):
            result = run_scaled(params.paths.resolve("raw"), params, client=client,
                                until=until, progress=progress)  # fmt: skip
            written = write_scaled(result, params)
            engine = describe_client(client)
    linked = sum(entry["linked"] for entry in result.link.report.values())
    console.print(f"engine: {engine}; {linked:,} records linked "
                  f"({len(result.link.areas):,} areas)")  # fmt: skip
    if result.forecaster is not None:
        console.print(f"booster: {result.forecaster.booster.num_trees()} trees, "
                      f"dispersion {result.forecaster.dispersion:.3f}")  # fmt: skip
    console.print(f"wrote {len(written)} files and folders (last: {written[-1]})")


def info(
    root: RootOption = Path("."),
    params_file: ParamsOption = None,
    address: AddressOption = None,
    workers: WorkersOption = None,
    threads: ThreadsOption = None,
) -> None:
    """Connect to (or start) the cluster and show its workers."""
    from rich.table import Table

    from training.scale import dask_client

    params = _dask_params(get_params(params_file, root), address, workers, threads)
    with fail_clearly(), dask_client(params.dask) as client:
        found = client.scheduler_info(n_workers=-1)["workers"]
    table = Table(title=f"Dask workers ({len(found)})")
    for column in ("address", "threads", "memory limit (GB)"):
        table.add_column(column)
    for address_, worker in found.items():
        table.add_row(address_, str(worker["nthreads"]), f"{worker['memory_limit'] / 1e9:.1f}")
    console.print(table)


def register(app: typer.Typer) -> None:
    """Add this module's commands to app (as the ``scale`` group)."""
    group = typer.Typer(
        help="The pipeline on a Dask cluster (docs/scale.md).", no_args_is_help=True
    )
    group.command("run")(run)
    group.command("info")(info)
    app.add_typer(group, name="scale")
