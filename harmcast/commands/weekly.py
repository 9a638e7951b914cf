"""harmcast commands: weekly (append a week, score last week's forecast, monitor)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from harmcast.commands._common import (
    ParamsOption,
    RootOption,
    console,
    err_console,
    fail_clearly,
    get_params,
)

DataOption = Annotated[
    Path,
    typer.Option("--data", file_okay=False, help="Folder of the new week's raw files."),
]
WeekOption = Annotated[
    str | None,
    typer.Option("--week", help="Monday of the week delivered (default: from the records)."),
]
PolicyOption = Annotated[
    Path | None,
    typer.Option("--policy", dir_okay=False, help="Policy file (default paths.policy)."),
]


def weekly(
    data: DataOption,
    root: RootOption = Path("."),
    params_file: ParamsOption = None,
    week: WeekOption = None,
    policy_file: PolicyOption = None,
) -> None:
    """Append a new week to the panel, score last week's forecast and check drift.

    Exits 1 only on bad input (a malformed file, a week already in the panel, a
    gap). A policy breach is reported in red and flags the model for review,
    but the command still succeeds. The serving snapshot is refreshed with the
    registry's production version only; without one it is left as it was.
    """
    import pandas as pd

    from governance.policy import load_policy, project_policy_path
    from monitoring.weekly_cycle import run_weekly
    from training.errors import ConfigError

    params = get_params(params_file, root)
    with fail_clearly():
        policy = load_policy(policy_file or project_policy_path(params.paths))
        try:
            when = pd.Timestamp(week) if week is not None else None
        except ValueError as exc:
            raise ConfigError(f"--week {week!r}: not a date (YYYY-MM-DD)") from exc
        with console.status("weekly cycle"):
            result = run_weekly(params, policy, data, week=when)
    entry = result.entry
    score = entry.get("score") or {}
    window = entry.get("window") or {}
    console.print(
        f"week {entry['week']}: {entry['records']} records appended "
        f"({entry['quarantined']} quarantined, {entry['outside_week']} outside the week)"
    )
    if score:
        console.print(
            f"last week's forecast: hit rate {score['hit_rate'] or 0:.1%}, "
            f"PAI {score['pai'] or 0:.2f}, calibration {score['calibration'] or 0:.2f} "
            f"(window of {window.get('weeks', 0)}: PAI {window.get('pai') or 0:.2f})"
        )
    else:
        console.print("no published forecast for this week: nothing scored")
    if entry["breaches"]:
        err_console.print(f"[red]breaches this week:[/] {', '.join(entry['breaches'])}")
    if entry["review_required"]:
        err_console.print(
            f"[bold red]review required:[/] {', '.join(entry['review_reasons'])} breached "
            f"policy {policy.monitoring.breach_weeks} weeks in a row; flag written to "
            f"{result.review_path}"
        )
    refresh = result.snapshot
    if refresh.refreshed:
        _record_refresh(params, refresh)
        console.print(
            f"[green]snapshot refreshed[/] with {refresh.model_name} version "
            f"{refresh.model_version} (the production version): origin week {refresh.origin_week}"
        )
    else:
        err_console.print(
            f"[bold red]snapshot not refreshed:[/] {refresh.reason}. The service keeps the "
            "previous snapshot; only the approved production version may refresh it."
        )
    console.print(f"log: {result.log_path}; report: {result.report_path}")


def _record_refresh(params, refresh) -> None:
    """Record the refreshed snapshot's hash, as ``harmcast snapshot`` does."""
    from governance.provenance import Governance
    from governance.servable import record_snapshot
    from serving.snapshot import snapshot_sha256

    with fail_clearly():
        digest = snapshot_sha256(params.paths.resolve("snapshot"))
        record_snapshot(
            Governance.from_params(params), refresh.model_name, refresh.model_version, digest
        )


def register(app: typer.Typer) -> None:
    """Add this module's commands to app."""
    app.command("weekly")(weekly)
