"""harmcast commands: the review desk (``board serve``) and enrolment codes (``board enrol``).

Both are added to the ``board`` command group of ``harmcast.commands.board``.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Annotated

import typer

from harmcast.commands._common import ParamsOption, RootOption, console, fail_clearly, get_params

__all__ = ["register", "serve", "enrol"]


def serve(
    root: RootOption = Path("."),
    params_file: ParamsOption = None,
    host: Annotated[str, typer.Option("--host", help="Address to bind (loopback by default).")] = (
        "127.0.0.1"
    ),
    port: Annotated[int, typer.Option("--port", help="Port to listen on.")] = 8765,
    rp_id: Annotated[
        str, typer.Option("--rp-id", help="Host name members browse to (passkeys are bound to it).")
    ] = "localhost",
    ssl_certfile: Annotated[
        Path | None, typer.Option("--ssl-certfile", help="Serve over TLS with this certificate.")
    ] = None,
    ssl_keyfile: Annotated[
        Path | None, typer.Option("--ssl-keyfile", help="The certificate's private key.")
    ] = None,
) -> None:
    """Start the review desk: members sign in and sign decisions with their passkeys."""
    import mlflow
    import uvicorn

    from governance.desk.app import create_app
    from governance.desk.launch import desk_settings

    params = get_params(params_file, root)
    with fail_clearly():
        settings = desk_settings(
            params, host=host, port=port, rp_id=rp_id, secure_cookie=ssl_certfile is not None
        )
    # MLflow resolves models:/m-<id> through the process-wide URIs: this process's are the root's.
    mlflow.set_tracking_uri(settings.tracking_uri)
    mlflow.set_registry_uri(settings.tracking_uri)
    scheme = "https" if ssl_certfile else "http"
    console.print(f"board desk on {scheme}://{rp_id}:{port}/ (root {settings.root})")
    uvicorn.run(
        create_app(settings), host=host, port=port, log_level="warning",
        ssl_certfile=ssl_certfile, ssl_keyfile=ssl_keyfile,
    )  # fmt: skip


def enrol(
    member: Annotated[str, typer.Option("--member", help="Board member id (roster).")],
    root: RootOption = Path("."),
    params_file: ParamsOption = None,
    hours: Annotated[float, typer.Option("--hours", help="Hours the code stays valid.")] = 24.0,
) -> None:
    """Issue a one-time code with which a member enrols a passkey at the desk."""
    from governance.desk.enrolment import issue_code
    from governance.desk.settings import DESK_DIR
    from governance.policy import load_policy, project_policy_path

    params = get_params(params_file, root)
    with fail_clearly():
        policy = load_policy(project_policy_path(params.paths))
        code, expires = issue_code(
            Path(params.paths.root) / DESK_DIR, member, [r.id for r in policy.board.roster],
            ttl=timedelta(hours=hours),
        )  # fmt: skip
    console.print(f"enrolment code for {member}: [bold]{code}[/] (single use, expires "
                  f"{expires.isoformat(timespec='minutes')})")  # fmt: skip


def register(app: typer.Typer) -> None:
    """Add ``serve`` and ``enrol`` to the ``board`` group (``harmcast.commands.board``)."""
    from harmcast.commands.board import board_app

    board_app.command("serve")(serve)
    board_app.command("enrol")(enrol)
