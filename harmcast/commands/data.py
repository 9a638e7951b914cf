"""harmcast commands: data (``ingest`` and ``panel``).

With ``dask.enabled`` both run on Dask (``training.scale``) and write the same files.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from harmcast.commands._common import (
    ParamsOption,
    RootOption,
    console,
    err_console,
    fail_clearly,
    get_params,
)
from training.config import Params

if TYPE_CHECKING:
    from training.link.linker import RawLayout

DirOption = Annotated[Path | None, typer.Option(file_okay=False, help="Folder of this source.")]


def ingest(
    root: RootOption = Path("."),
    params_file: ParamsOption = None,
    police: DirOption = None,
    istv: DirOption = None,
    ambulance: DirOption = None,
    council: DirOption = None,
    reference: DirOption = None,
    areas: Annotated[
        Path | None, typer.Option(dir_okay=False, help="Areas CSV (reference/areas.csv format).")
    ] = None,
) -> None:
    """Link every source's records to areas and write data/02_linked/.

    Without source options, every source folder under data/01_raw/ is read.
    With any of them, only the folders given are read.
    """
    from training.link.linker import RawLayout

    params = get_params(params_file, root)
    raw_dir = params.paths.resolve("raw")
    chosen = (police, istv, ambulance, council, reference)
    layout = None
    if any(p is not None for p in chosen) or areas is not None:
        layout = RawLayout(*chosen, areas_file=areas)
        if all(p is None for p in chosen):
            layout = RawLayout.from_raw_dir(raw_dir)
            layout = RawLayout(*(getattr(layout, f) for f in ("police", "istv", "ambulance",
                               "council", "reference")), areas_file=areas)  # fmt: skip
    ingest_step(params, layout=layout)


def ingest_step(params: Params, *, layout: RawLayout | None = None) -> None:
    """Link the raw records (every source under data/01_raw, or ``layout``) to areas."""
    from rich.progress import Progress
    from rich.table import Table

    from training.disclosure import suppress_small
    from training.link.linker import link_sources, write_linked

    raw_dir = params.paths.resolve("raw")
    with fail_clearly(), Progress(console=console, transient=True) as progress:
        if params.dask.enabled:
            from training.scale import ingest_on_dask

            step = ingest_on_dask(raw_dir, params, layout=layout)
            result, written, engine = step.link, step.written, step.engine
        else:
            result = link_sources(raw_dir, params.sources, params.link, layout=layout,
                                  progress=progress)  # fmt: skip
            written, engine = write_linked(result, params.paths.resolve("linked")), "pandas"
    table = Table(title="Linkage report (counts 1-4 shown as <5)")
    left = ("source", "rescued by", "quarantined")
    for column in ("source", "records in", "linked", "match rate", "rescued by", "quarantined"):
        table.add_column(column, justify="left" if column in left else "right")
    for source, entry in result.report.items():
        reasons = ", ".join(f"{k} {suppress_small(v)}" for k, v in entry["quarantined"].items())
        saved = ", ".join(
            f"{k} {suppress_small(v)}" for k, v in entry.get("rescued_by", {}).items()
        )
        table.add_row(source, str(suppress_small(entry["records_in"])),
                      str(suppress_small(entry["linked"])), f"{entry['match_rate']:.1%}",
                      saved or "-", reasons or "-")  # fmt: skip
    console.print(table)
    _warn_gaps({s: e["coverage"] for s, e in result.report.items() if "coverage" in e})
    console.print(f"area reference: {result.reference} ({len(result.areas)} areas)")
    console.print(f"engine: {engine}; wrote {len(written)} files to {written[0].parent}")


def _warn_gaps(coverage: dict[str, dict]) -> None:
    from training.coverage import describe_gaps

    for line in describe_gaps(coverage):
        err_console.print(f"[yellow]coverage gap[/] {line}: missing, not zero")


def panel(root: RootOption = Path("."), params_file: ParamsOption = None) -> None:
    """Build the area x week panel from data/02_linked/ into data/03_panel/.

    Weeks a source does not cover are missing (not zero); each gap inside a
    source's span is named in a warning and written to coverage.json.
    """
    panel_step(get_params(params_file, root))


def panel_step(params: Params) -> None:
    """Build the area x week panel from data/02_linked/ into data/03_panel/."""
    import pandas as pd

    from training.coverage import source_coverage
    from training.errors import LinkageError
    from training.panel import build_panel, write_panel

    linked = params.paths.resolve("linked")
    with fail_clearly():
        if not (linked / "records.parquet").is_file():
            raise LinkageError(f"{linked / 'records.parquet'} not found: run `harmcast ingest`")
        if params.dask.enabled:
            from training.scale import panel_on_dask

            step = panel_on_dask(params)
            summary, written, engine = step.summary, step.written, step.engine
            _warn_gaps(summary.get("coverage") or {})
        else:
            areas = pd.read_parquet(linked / "areas.parquet")
            adjacency = pd.read_parquet(linked / "adjacency.parquet")
            records = pd.read_parquet(linked / "records.parquet")
            frame = build_panel(records, areas)
            coverage = source_coverage(records)
            written = write_panel(frame, params.paths.resolve("panel"), areas=areas,
                                  adjacency=adjacency, coverage=coverage)  # fmt: skip
            weeks = frame["week_start"]
            observed = frame.loc[frame["violence"].notna(), "week_start"].nunique()
            summary = {"areas": frame["area_code"].nunique(), "weeks": weeks.nunique(),
                       "first": weeks.min(), "last": weeks.max(), "observed": observed,
                       "violence": frame["violence"].sum()}  # fmt: skip
            engine = "pandas"
            _warn_gaps(coverage)
    console.print(
        f"panel: {summary['areas']} areas x {summary['weeks']} weeks "
        f"({summary['first']:%Y-%m-%d} to {summary['last']:%Y-%m-%d}"
        + (f"; target observed in {summary['observed']}" if "observed" in summary else "")
        + "); "
        f"violence total {summary['violence']:,.0f}; engine: {engine}; wrote {written[0]}"
    )


def register(app: typer.Typer) -> None:
    """Add this module's commands to app."""
    app.command("ingest")(ingest)
    app.command("panel")(panel)
