"""harmcast commands: the end-to-end main job (``harmcast run``).

The main job calls, in order and in one process, the step functions the
commands wrap (:func:`main_job_steps`): synth, ingest, panel, features,
backtest, train, audit, register, the draft card, the demo board's signed
approvals, the published card, snapshot, bento import, and finally serve. The
first step that fails stops the job, naming it, with its exit code.

Before the first step a root whose board is not sealed gets a demo board: an
Ed25519 software key for every roster member (``.harmcast/keys/demo/``, marked
``demo`` in the policy and in each decision) and a sealed genesis policy holding
their public keys. With ``dask.enabled`` ingest, panel, features and train run
on one Dask cluster, opened before the first of them and closed after the
register step (before the card).
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import partial
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
from harmcast.commands.data import ingest_step, panel_step
from harmcast.commands.governance import audit_step, card_step, decide_step, register_step
from harmcast.commands.modelling import backtest_step, features_step, train_step
from harmcast.commands.serving import bento_import_step, serve_step, snapshot_step
from harmcast.commands.synth import synth_step
from training.config import Params

DEMO_RATIONALE = (
    "Demo approval on the synthetic city: gate passed, card reviewed, "
    "forecasts are for area-level planning only."
)
MSG_STEP_FAILED = "harmcast {step} failed (step {number} of {total}); the main job stops here."

Step = Callable[[Params], None]
"""One step of the main job: it takes the resolved params and returns nothing."""


def data_steps(*, synth: bool = True) -> list[tuple[str, Step]]:
    """Return the steps from the raw files to a registered version, in order.

    With ``dask.enabled`` these run on one Dask cluster (the synth step never uses it).
    """
    return [*([("synth", synth_step)] if synth else []),
            ("ingest", ingest_step), ("panel", panel_step), ("features", features_step),
            ("backtest", backtest_step), ("train", train_step), ("audit", audit_step),
            ("register", register_step)]  # fmt: skip


def release_steps(demo_keys: dict[str, Path], reviewers: list[str]) -> list[tuple[str, Step]]:
    """Return the steps from a registered version to the imported bento, in order.

    The draft card, one signed approval per demo reviewer (with their key in
    ``demo_keys``), the published card, the snapshot and the bento import.
    """
    approvals = [(f"review approve --member {member}",
                  partial(_approve_pending, member=member, key=demo_keys[member]))
                 for member in reviewers]  # fmt: skip
    return [("card", _card_of_pending), *approvals, ("card", _card_of_pending),
            ("snapshot", snapshot_step), ("bento import", bento_import_step)]  # fmt: skip


def main_job_steps(
    *, synth: bool = True, demo_keys: dict[str, Path] | None = None,
    reviewers: list[str] | None = None,
) -> list[tuple[str, Step]]:  # fmt: skip
    """Return every step of the main job before serving, in order, as (name, function)."""
    keys = demo_keys or {}
    return data_steps(synth=synth) + release_steps(keys, list(reviewers or keys))


def run_steps(steps: list[tuple[str, Step]], params: Params, *, first: int = 1,
              total: int | None = None) -> None:  # fmt: skip
    """Call each step with ``params``; the first that fails stops the job with its exit code."""
    total = total or len(steps)
    for number, (name, step) in enumerate(steps, start=first):
        console.rule(f"[bold]harmcast {name}")
        try:
            with fail_clearly():
                step(params)
        except typer.Exit as exc:
            if exc.exit_code:
                err_console.print("[bold red]" + MSG_STEP_FAILED.format(
                    step=name, number=number, total=total))  # fmt: skip
            raise


def _card_of_pending(params: Params) -> None:
    card_step(params, _pending_version(params))


def _approve_pending(params: Params, *, member: str, key: Path) -> None:
    decide_step(params, "approve", version=_pending_version(params), member=member, key=key,
                rationale=DEMO_RATIONALE)  # fmt: skip


@contextmanager
def _engine(params) -> Iterator[None]:
    """Run the data steps on one Dask cluster when ``dask.enabled``; say which engine runs."""
    if not params.dask.enabled:
        console.print("engine: pandas (dask.enabled is false)")
        yield
        return
    from training.scale import shared_client
    from training.scale.cluster import describe_client

    with shared_client(params.dask) as client:
        console.print(
            f"engine: {describe_client(client)} for ingest, panel, features and train; "
            "pandas for the backtest and every later step"
        )
        yield


def _demo_board(params) -> dict[str, Path]:
    """Seal a demo board when the root has none; return the demo members' key files."""
    from governance.auditlog import default_log_path
    from governance.board import add_member_key, is_sealed, seal_genesis, start_setup
    from governance.keys import demo_key_path
    from governance.policy import load_policy, project_policy_path
    from governance.signing import ed25519_key_record, generate_ed25519, write_private_key
    from training.config import tracking_uri

    root = params.paths.root
    with fail_clearly():
        if not is_sealed(root):
            source = project_policy_path(params.paths)
            draft = start_setup(root, source)
            for member in load_policy(draft).board.roster:
                key = generate_ed25519()
                write_private_key(key, demo_key_path(root, member.id))
                add_member_key(root, member.id, ed25519_key_record(key, demo=True))
            chain = seal_genesis(
                root, audit_log=default_log_path(root), tracking_uri=tracking_uri(params),
                model_name=params.tracking.registered_model,
                policy_path=params.paths.resolve("policy"),
            )  # fmt: skip
            console.print(
                f"demo board sealed from {source}: policy {chain.genesis_sha256[:12]}, "
                f"software keys in {demo_key_path(root, 'x').parent} (demo only)"
            )
    return {p.stem: p for p in sorted(demo_key_path(root, "x").parent.glob("*.key"))}


def _pending_version(params) -> int:
    """Return the newest registered version (the one the job just registered)."""
    from governance.review import list_versions
    from training.config import tracking_uri

    with fail_clearly():
        versions = list_versions(
            model_name=params.tracking.registered_model, tracking_uri=tracking_uri(params)
        )
    return max(int(v.version) for v in versions)


def run(
    root: RootOption = Path("."),
    params_file: ParamsOption = None,
    serve: Annotated[
        bool, typer.Option("--serve/--no-serve", help="End by serving on localhost.")
    ] = True,
    synth: Annotated[
        bool,
        typer.Option(
            "--synth/--no-synth", help="Generate the synthetic city (else read data/01_raw)."
        ),
    ] = True,
) -> None:
    """Run the main job end to end on the embedded default (synthetic city).

    A root without its own ``governance/policy.yaml`` is governed by the
    packaged policy, as each step is; the policy is read before the first step.
    """
    from governance.policy import DEFAULT_POLICY_PATH, load_policy, project_policy_path

    params = get_params(params_file, root)
    demo_keys = _demo_board(params)
    with fail_clearly():
        policy = load_policy(project_policy_path(params.paths))
    packaged = Path(policy.path) == DEFAULT_POLICY_PATH
    console.print(f"policy: {policy.path}" + (" (packaged: the root has none)" if packaged else ""))
    for member in policy.board.demo_reviewers:
        if member not in demo_keys:
            err_console.print(f"[bold red]no demo key for {member}: the board is not a demo "
                              "board; its members approve with their own keys.")  # fmt: skip
            raise typer.Exit(code=1)
    data = data_steps(synth=synth)
    release = release_steps(demo_keys, list(policy.board.demo_reviewers))
    total = len(data) + len(release) + int(serve)
    with fail_clearly(), _engine(params):
        run_steps(data, params, total=total)
    run_steps(release, params, first=len(data) + 1, total=total)
    _print_summary(params, _pending_version(params))
    if serve:
        run_steps([("serve", partial(_serve, params_file=params_file))], params,
                  first=total, total=total)  # fmt: skip


def _print_summary(params, version: int) -> None:
    from training.config import tracking_uri

    cards = params.paths.resolve("model_cards") / params.tracking.registered_model / f"v{version}"
    console.rule("[bold green]harmcast: done")
    console.print(f"MLflow tracking and registry: {tracking_uri(params)}")
    console.print(
        f"  browse: mlflow ui --backend-store-uri {tracking_uri(params)} "
        "--host 127.0.0.1 --port 5000"
    )
    console.print(f"Model card (published): {cards / 'card.html'}")
    console.print(f"Backtest results: {params.paths.resolve('backtest') / 'table.md'}")
    console.print(f"Gate report: {params.paths.resolve('audit') / 'gate_report.html'}")
    root = params.paths.root.resolve()
    console.print(
        f"Board review desk: harmcast board serve --root {root}  (opens on "
        "http://localhost:8765/; each member enrols a passkey there with a one-time code "
        f"from harmcast board enrol --root {root} --member <id>; on this sealed demo board "
        "the enrolment is an amendment a quorum signs: harmcast board amend sign)",
        soft_wrap=True,
    )


def _serve(params: Params, *, params_file: Path | None = None) -> None:
    import os

    env_name = params.serving.planner_token_env
    token = os.environ.get(env_name, "").split(",")[0].strip()
    if not token:
        token = secrets.token_urlsafe(24)
        os.environ[env_name] = token
        console.print(f"[yellow]{env_name} was not set: this run's planner token is {token}")
    url = f"http://{params.serving.host}:{params.serving.port}"
    console.print("Sample forecast request (once the service says it is ready):")
    console.print(
        f"  curl -s -X POST {url}/forecast -H 'Authorization: Bearer {token}' "
        "-H 'Content-Type: application/json' "
        '-d \'{"top_k": 5, "horizon": 1, "explain": true}\'',
        soft_wrap=True,
    )
    console.print(f"  model card: {url}/model_card.html   areas: {url}/areas   API: {url}/docs")
    console.print(
        f"[bold]Planners' weekly briefing: {url}/[/]  (sign in with the credential {token})"
    )
    serve_step(params, params_file=params_file)


def register(app: typer.Typer) -> None:
    """Add this module's commands to ``app``."""
    app.command("run")(run)
