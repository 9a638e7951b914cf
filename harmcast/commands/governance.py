"""harmcast commands: governance (register, review, card).

Each command is a separate function; ``register(app)`` adds them all. Heavy
libraries (MLflow, the governance modules) are imported inside the functions
so ``harmcast --help`` stays fast.
"""

from __future__ import annotations

import json
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from harmcast.commands._common import (
    ParamsOption,
    RootOption,
    console,
    err_console,
    fail_clearly,
    get_params,
)
from training.config import Params

__all__ = [
    "register",
    "audit",
    "audit_step",
    "register_command",
    "register_step",
    "review_app",
    "decide_step",
    "card_command",
    "card_step",
]

AuditLogOption = Annotated[
    Path | None,
    typer.Option("--audit-log", help="Audit log (default <root>/governance_log/audit.jsonl)."),
]
ModelOption = Annotated[
    str | None, typer.Option("--model", help="Registered model (default from params).")
]
VersionOption = Annotated[int, typer.Option("--version", help="Model version number.")]
MemberOption = Annotated[str, typer.Option("--member", help="Board member id (roster).")]
KeyOption = Annotated[
    Path,
    typer.Option("--key", dir_okay=False, help="The member's private key (harmcast board keygen)."),
]
RationaleOption = Annotated[str, typer.Option("--rationale", help="Written reason (required).")]

review_app = typer.Typer(help="Board review of registered versions.", no_args_is_help=True)


def _context(root: Path, params_file: Path | None, audit_log: Path | None):
    return _context_of(get_params(params_file, root), audit_log)


def _context_of(params: Params, audit_log: Path | None):
    from governance.auditlog import default_log_path
    from governance.policy import load_policy, project_policy_path
    from governance.registry import use_tracking
    from training.config import tracking_uri

    with fail_clearly():
        policy = load_policy(project_policy_path(params.paths))
    log = audit_log or default_log_path(params.paths.root)
    # Before any MLflow call: some resolve models through the process-wide URI.
    use_tracking(tracking_uri(params))
    return params, policy, tracking_uri(params), log


def _read_json(path: Path) -> dict:
    from training.errors import SchemaError

    if not path.is_file():
        raise SchemaError(path, "file not found (run the earlier pipeline steps first)")
    return json.loads(path.read_text())


def register_command(
    root: RootOption = Path("."),
    params_file: ParamsOption = None,
    audit_log: AuditLogOption = None,
) -> None:
    """Register the trained candidate, only if the gate report its audit logged passed.

    The report is read from the candidate's MLflow run (``gate/gate_report.json``,
    checked against the hash the audit tagged); a ``data/07_audit/gate_report.json``
    that says anything else is refused.
    """
    register_step(get_params(params_file, root), audit_log=audit_log)


def register_step(params: Params, *, audit_log: Path | None = None) -> None:
    """Register the trained candidate, only if the gate report its audit logged passed."""
    from governance.registry import register_candidate
    from training.errors import GateFailed

    params, policy, uri, log = _context_of(params, audit_log)
    with fail_clearly():
        meta = _read_json(params.paths.resolve("models") / "model_meta.json")
        results = _read_json(params.paths.resolve("backtest") / "results.json")
    gate_path = params.paths.resolve("audit") / "gate_report.json"
    run_tags = _run_tags(uri, meta.get("run_id", ""))
    headline = results.get("summary", {}).get("headline", {})
    metrics = {k: float(v) for k, v in headline.items() if isinstance(v, int | float)}
    try:
        with fail_clearly():
            mv = register_candidate(
                run_id=meta.get("run_id", ""),
                model_uri=meta.get("model_uri", ""),
                gate_report=gate_path if gate_path.is_file() else None,
                model_name=params.tracking.registered_model,
                policy=policy,
                data_sha256=run_tags.get("harmcast.data_sha256", ""),
                code_version=run_tags.get("harmcast.code_version", ""),
                backtest_metrics=metrics,
                tracking_uri=uri,
                audit_log=log,
            )
    except typer.Exit as exc:
        cause = exc.__cause__
        if isinstance(cause, GateFailed):
            for line in cause.failed:
                err_console.print(f"[red]  failed:[/] {line}")
        raise
    console.print(
        f"[green]registered[/] {mv.name} version {mv.version} "
        f"(gate passed, approval pending; {len(metrics)} metrics tagged)"
    )


def _run_tags(uri: str, run_id: str) -> dict[str, str]:
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    try:
        return dict(MlflowClient(uri).get_run(run_id).data.tags)
    except MlflowException:
        return {}


def _status_table(rows) -> Table:
    table = Table("version", "gate", "approval", "reviewers", "aliases", "created")
    for s in rows:
        colour = {"approved": "green", "rejected": "red"}.get(s.status, "yellow")
        table.add_row(s.version, s.gate, f"[{colour}]{s.status}[/]", ", ".join(s.reviewers),
                      ", ".join(s.aliases), s.created)  # fmt: skip
    return table


@review_app.command("list")
def review_list(
    root: RootOption = Path("."), params_file: ParamsOption = None, model: ModelOption = None
) -> None:
    """List every version with its gate and approval status."""
    from governance.review import list_versions

    params, _, uri, _ = _context(root, params_file, None)
    with fail_clearly():
        rows = list_versions(model_name=model or params.tracking.registered_model, tracking_uri=uri)
    console.print(_status_table(rows))


@review_app.command("show")
def review_show(
    version: VersionOption,
    root: RootOption = Path("."),
    params_file: ParamsOption = None,
    model: ModelOption = None,
) -> None:
    """Show one version: status, tags and each recorded decision."""
    from governance.review import show_version

    params, _, uri, _ = _context(root, params_file, None)
    name = model or params.tracking.registered_model
    with fail_clearly():
        status = show_version(model_name=name, version=version, tracking_uri=uri)
    console.print(_status_table([status]))
    for key, value in sorted(status.tags.items()):
        if key != "harmcast.approvals":
            console.print(f"  {key} = {value}")
    for d in status.approvals:
        key = f" key {d['key_fingerprint']}" if d.get("key_fingerprint") else ""
        console.print(f"  {d['at']} {d['reviewer']}{key}: [bold]{d['decision']}[/] "
                      f"{d['rationale']}")  # fmt: skip


def _gov(params, log):
    from governance.provenance import Governance

    return Governance.from_params(params, audit_log=log)


def _decide(action: str, version, member, key, rationale, root, params_file, model, audit_log):
    decide_step(get_params(params_file, root), action, version=version, member=member, key=key,
                rationale=rationale, model=model, audit_log=audit_log)  # fmt: skip


def decide_step(
    params: Params, action: str, *, version: int, member: str, key: Path, rationale: str,
    model: str | None = None, audit_log: Path | None = None,
) -> None:  # fmt: skip
    """Sign one board decision (``approve``, ``reject`` or ``rollback``) on a version."""
    from governance import review

    params, _, _, log = _context_of(params, audit_log)
    name = model or params.tracking.registered_model
    with fail_clearly():
        out = getattr(review, action)(
            _gov(params, log), model_name=name, version=version, member=member, key=key,
            rationale=rationale,
        )  # fmt: skip
    console.print(
        f"{name} v{out.version}: [bold]{out.status}[/] ({len(out.reviewers)}/{out.quorum} "
        f"approvals); production={out.production} previous={out.previous}"
    )


@review_app.command("approve")
def review_approve(
    version: VersionOption,
    member: MemberOption,
    key: KeyOption,
    rationale: RationaleOption,
    root: RootOption = Path("."),
    params_file: ParamsOption = None,
    model: ModelOption = None,
    audit_log: AuditLogOption = None,
) -> None:
    """Sign an approval of a version's draft card, model and gate report with your key.

    A quorum of distinct members' valid signatures promotes the version.
    """
    _decide("approve", version, member, key, rationale, root, params_file, model, audit_log)


@review_app.command("reject")
def review_reject(
    version: VersionOption,
    member: MemberOption,
    key: KeyOption,
    rationale: RationaleOption,
    root: RootOption = Path("."),
    params_file: ParamsOption = None,
    model: ModelOption = None,
    audit_log: AuditLogOption = None,
) -> None:
    """Sign a rejection of a version; a valid rejection is final."""
    _decide("reject", version, member, key, rationale, root, params_file, model, audit_log)


@review_app.command("rollback")
def review_rollback(
    member: MemberOption,
    key: KeyOption,
    rationale: RationaleOption,
    version: Annotated[
        int | None, typer.Option("--version", help="Version to withdraw (default: production).")
    ] = None,
    root: RootOption = Path("."),
    params_file: ParamsOption = None,
    model: ModelOption = None,
    audit_log: AuditLogOption = None,
) -> None:
    """Sign the rollback of an approved version; at quorum it is withdrawn for good."""
    from governance.review import production_version
    from training.errors import ReviewError

    params, _, uri, _ = _context(root, params_file, audit_log)
    name = model or params.tracking.registered_model
    if version is None:
        current = production_version(model_name=name, tracking_uri=uri)
        with fail_clearly():
            if current is None:
                raise ReviewError(f"model {name!r} has no production version to roll back")
        version = int(current)
    _decide("rollback", version, member, key, rationale, root, params_file, model, audit_log)


@review_app.command("verify")
def review_verify(
    root: RootOption = Path("."),
    params_file: ParamsOption = None,
    model: ModelOption = None,
    audit_log: AuditLogOption = None,
) -> None:
    """Verify the audit log (chain, every signature, registry, cards) and the production version."""
    from governance.ledger import verify_ledger
    from governance.review import production_version
    from governance.servable import check_servable

    params, _, uri, log = _context(root, params_file, audit_log)
    name = model or params.tracking.registered_model
    gov = _gov(params, log)
    with fail_clearly():
        result = verify_ledger(gov, (name,))
    if not result.ok:
        for problem in result.problems:
            err_console.print(f"[red]  tampered:[/] {problem}")
        err_console.print(f"[bold red]error:[/] {log}: audit log does not verify")
        raise typer.Exit(code=1)
    console.print(f"[green]audit log verified[/]: {result.n_entries} entries, head "
                  f"{result.head[:16]}")  # fmt: skip
    production = production_version(model_name=name, tracking_uri=uri)
    if production is None:
        console.print(f"{name}: no production version")
        return
    with fail_clearly():
        servable = check_servable(gov, name, production)
    console.print(f"[green]servable[/]: {name} v{production}, approved by "
                  f"{', '.join(servable.approvers)}")  # fmt: skip


def card_command(
    version: VersionOption,
    root: RootOption = Path("."),
    params_file: ParamsOption = None,
    model: ModelOption = None,
    audit_log: AuditLogOption = None,
) -> None:
    """Build the model card of a version; publish it once the version is approved."""
    card_step(get_params(params_file, root), version, model=model, audit_log=audit_log)


def card_step(
    params: Params, version: int, *, model: str | None = None, audit_log: Path | None = None
) -> None:
    """Build the model card of a version; publish it once the version is approved."""
    from governance.cards.builder import CardInputs
    from governance.cards.render import publish_card

    params, policy, uri, log = _context_of(params, audit_log)
    name = model or params.tracking.registered_model
    with fail_clearly():
        result = publish_card(CardInputs.from_params(params, audit_log=log), model_name=name,
                              version=version, policy=policy, tracking_uri=uri,
                              gov=_gov(params, log))  # fmt: skip
    state = "[green]published[/]" if result.published else "[yellow]draft[/]"
    console.print(f"{state} card {result.directory} (card.json sha256 {result.sha256[:16]})")


# --- audit: the governance gate -------------------------------------------------


def audit(root: RootOption = Path("."), params_file: ParamsOption = None) -> None:
    """Run the governance gate (fairness, SHAP, champion) on the trained candidate.

    Writes data/07_audit/gate_report.{json,html} and plots, logs them to the
    candidate's MLflow run, tags it harmcast.gate, and exits 1 when the gate fails.
    """
    audit_step(get_params(params_file, root))


def audit_step(params: Params) -> None:
    """Run the governance gate on the trained candidate; exit 1 when it fails."""
    from governance.gate import audit_candidate
    from governance.policy import load_policy, project_policy_path
    from governance.registry import use_tracking
    from training.config import tracking_uri
    from training.errors import GateFailed

    use_tracking(tracking_uri(params))
    with fail_clearly(), _audit_progress() as progress:
        policy = load_policy(project_policy_path(params.paths))
        report = audit_candidate(params, policy, progress=progress)
    table = Table("check", "verdict", "value", "bounds", "interval", title="governance gate")
    for c in sorted(report.checks, key=lambda c: (c.passed, not c.gated, c.name)):
        if not c.gated and c.passed:
            continue  # reported-only checks in bounds live in the HTML report
        verdict = "[green]pass[/]" if c.passed else "[red]FAIL[/]"
        table.add_row(
            c.name,
            verdict if c.gated else "[dim]report[/]",
            _num(c.value),
            f"[{_num(c.lower)}, {_num(c.upper)}]",
            "" if c.ci_low is None else f"{_num(c.ci_low)} to {_num(c.ci_high)}",
        )
    console.print(table)
    out = params.paths.resolve("audit")
    n_gated = sum(c.gated for c in report.checks)
    console.print(
        f"report: {out / 'gate_report.html'} ({n_gated} gated checks, "
        f"policy {report.policy_sha256[:12]})"
    )
    with fail_clearly():
        if not report.passed:
            raise GateFailed(report.failed())
    console.print("[green]gate passed[/]")


@contextmanager
def _audit_progress():
    """Rich progress bars for the audit's parts: done of total, elapsed, estimate left."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
               TimeElapsedColumn(), TextColumn("left"), TimeRemainingColumn())  # fmt: skip
    with Progress(*columns, console=console, transient=True) as bars:
        tasks: dict[str, int] = {}

        def report(step: str, done: int, total: int) -> None:
            if step not in tasks:
                tasks[step] = bars.add_task(step, total=total)
            bars.update(tasks[step], completed=done, total=total)

        yield report


def _num(value: float | None) -> str:
    return "" if value is None else f"{value:.3g}"


def register(app: typer.Typer) -> None:
    """Add this module's commands to app."""
    app.command("audit")(audit)
    app.command("register")(register_command)
    app.add_typer(review_app, name="review")
    app.command("card")(card_command)
