"""harmcast commands: the board's keys and policy chain (keygen, setup, seal, amend).

A member makes a key pair with ``keygen`` and hands over only the public key
record it prints; the policy's keeper adds it to the draft genesis with
``add-key`` and seals the genesis once a quorum of members hold keys. A sealed
policy changes only by an amendment signed by a quorum of the policy it
replaces (``amend propose``, then ``amend sign`` by each member).
"""

from __future__ import annotations

import json
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

__all__ = ["board_app", "register"]

board_app = typer.Typer(help="Board keys and the policy chain.", no_args_is_help=True)
amend_app = typer.Typer(help="Change the policy in force by a quorum.", no_args_is_help=True)
board_app.add_typer(amend_app, name="amend")

MemberOption = Annotated[str, typer.Option("--member", help="Board member id (roster).")]
KeyFileOption = Annotated[
    Path, typer.Option("--key", dir_okay=False, help="The member's private key file (keygen).")
]


def _setting(root: Path, params_file: Path | None):
    from governance.auditlog import default_log_path
    from training.config import tracking_uri

    params = get_params(params_file, root)
    return params, default_log_path(params.paths.root), tracking_uri(params)


@board_app.command("keygen")
def keygen(
    member: MemberOption,
    out: Annotated[Path, typer.Option("--out", dir_okay=False, help="Private key file to write.")],
) -> None:
    """Make an Ed25519 key pair: the private key to --out (0600), the public record printed."""
    from governance.signing import ed25519_key_record, generate_ed25519, write_private_key

    if out.exists():
        console.print(f"[bold red]error:[/] {out}: exists; a key is never overwritten")
        raise typer.Exit(code=1)
    key = generate_ed25519()
    write_private_key(key, out)
    record = ed25519_key_record(key)
    console.print(f"private key for {member}: {out} (keep it; never share it)")
    console.print(f"fingerprint: {record.fingerprint}")
    print(json.dumps({"member": member, "key": record.model_dump()}))


@board_app.command("setup")
def setup(root: RootOption = Path("."), params_file: ParamsOption = None) -> None:
    """Start the draft genesis from the root's policy (or the packaged one)."""
    from governance.board import start_setup
    from governance.policy import project_policy_path

    params, _, _ = _setting(root, params_file)
    with fail_clearly():
        draft = start_setup(params.paths.root, project_policy_path(params.paths))
    console.print(f"draft genesis: {draft}; add each member's key with harmcast board add-key")


@board_app.command("add-key")
def add_key(
    member: MemberOption,
    public: Annotated[
        Path,
        typer.Option("--public", dir_okay=False, help="JSON printed by harmcast board keygen."),
    ],
    root: RootOption = Path("."),
    params_file: ParamsOption = None,
) -> None:
    """Add a member's public key record to the draft genesis."""
    from governance.board import add_member_key
    from training.errors import SchemaError

    params, _, _ = _setting(root, params_file)
    with fail_clearly():
        try:
            record = json.loads(public.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise SchemaError(public, "not the JSON printed by harmcast board keygen") from exc
        key = add_member_key(params.paths.root, member, record.get("key", record))
    console.print(f"added key {key.fingerprint} ({key.type}) for {member}")


@board_app.command("seal")
def seal(root: RootOption = Path("."), params_file: ParamsOption = None) -> None:
    """Seal the draft as the genesis policy: from now on it changes only by amendment."""
    from governance.board import seal_genesis

    params, log, uri = _setting(root, params_file)
    with fail_clearly():
        chain = seal_genesis(
            params.paths.root, audit_log=log, tracking_uri=uri,
            model_name=params.tracking.registered_model,
            policy_path=params.paths.resolve("policy"),
        )  # fmt: skip
    console.print(f"[green]genesis sealed[/]: policy {chain.genesis_sha256}")


@board_app.command("show")
def show(root: RootOption = Path("."), params_file: ParamsOption = None) -> None:
    """Verify the policy chain and show the policy in force with its members' keys."""
    from governance.board import policy_in_force

    params, _, uri = _setting(root, params_file)
    with fail_clearly():
        chain = policy_in_force(
            params.paths.root, policy_path=params.paths.resolve("policy"), tracking_uri=uri,
            model_name=params.tracking.registered_model,
        )  # fmt: skip
    board = chain.head.board
    console.print(f"policy in force: {chain.shas[-1]} ({len(chain.shas)} in the chain)")
    console.print(f"quorum {board.quorum}; passkeys for RP ID {board.webauthn.rp_id}")
    for member in board.roster:
        keys = ", ".join(f"{k.type}:{k.fingerprint}" + (" (demo)" if k.demo else "")
                         for k in member.keys) or "no key"  # fmt: skip
        console.print(f"  {member.id} ({member.role}): {keys}")


@amend_app.command("propose")
def amend_propose(
    policy_file: Annotated[Path, typer.Option("--policy", dir_okay=False, help="New policy.")],
    rationale: Annotated[str, typer.Option("--rationale", help="Why the policy changes.")],
    root: RootOption = Path("."),
    params_file: ParamsOption = None,
) -> None:
    """Propose a new policy; print the proposal each member signs."""
    from governance.board import propose_amendment

    params, _, uri = _setting(root, params_file)
    with fail_clearly():
        proposal = propose_amendment(
            params.paths.root, policy_file, rationale=rationale,
            policy_path=params.paths.resolve("policy"), tracking_uri=uri,
            model_name=params.tracking.registered_model,
        )  # fmt: skip
    console.print(
        f"proposal {proposal.policy_sha256} replaces {proposal.replaces}; "
        f"needs {proposal.quorum} members' signatures (harmcast board amend sign)"
    )


@amend_app.command("sign")
def amend_sign(
    proposal: Annotated[str, typer.Option("--proposal", help="The proposed policy's sha256.")],
    member: MemberOption,
    key: KeyFileOption,
    root: RootOption = Path("."),
    params_file: ParamsOption = None,
) -> None:
    """Sign a proposed amendment; at quorum it is put in force."""
    from governance.board import amendment_envelope, sign_amendment
    from governance.signing import envelope_to_dict, read_private_key, sign_ed25519

    params, log, uri = _setting(root, params_file)
    with fail_clearly():
        envelope = amendment_envelope(params.paths.root, proposal)
        sign_ed25519(envelope, read_private_key(key))
        out = sign_amendment(
            params.paths.root, proposal, envelope_to_dict(envelope), audit_log=log,
            policy_path=params.paths.resolve("policy"), tracking_uri=uri,
            model_name=params.tracking.registered_model,
        )  # fmt: skip
    state = "[green]adopted[/]" if out.adopted else "[yellow]pending[/]"
    console.print(f"{state}: signed by {', '.join(out.members)} ({len(out.members)}/{out.quorum})")


def register(app: typer.Typer) -> None:
    """Add this module's commands to app."""
    app.add_typer(board_app, name="board")
