"""A sealed board under a tmp root: Ed25519 keys for every roster member."""

from __future__ import annotations

from pathlib import Path

from governance.board import add_member_key, seal_genesis, start_setup
from governance.policy import DEFAULT_POLICY_PATH, load_policy
from governance.signing import ed25519_key_record, generate_ed25519

MEMBERS = ("r.adeyemi", "t.hughes", "m.siddiqui", "j.okafor")


def seal_board(root: Path, *, tracking_uri: str | None = None, model_name: str | None = None,
               source: Path = DEFAULT_POLICY_PATH):  # fmt: skip
    """Set up and seal a board; return ({member: private key}, chain)."""
    start_setup(root, source)
    keys = {}
    for member in [r.id for r in load_policy(source).board.roster]:
        keys[member] = generate_ed25519()
        add_member_key(root, member, ed25519_key_record(keys[member]))
    chain = seal_genesis(
        root,
        audit_log=root / "governance_log/audit.jsonl",
        tracking_uri=tracking_uri,
        model_name=model_name,
    )
    return keys, chain
