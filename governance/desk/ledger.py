"""The desk's link to the board's signed record.

It goes through ``governance.board``, ``governance.review`` and ``governance.ledger``.
Members' passkeys live in the policy: added to the draft genesis while the
board is being set up, or proposed as a policy amendment once it is sealed.
Decisions are prepared by ``governance.review.prepare_decision``, signed in the
browser with the WebAuthn challenge SHA-256(PAE(payloadType, payload)), and
submitted to ``governance.review.submit_decision``, which verifies them against
the policy in force.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from governance.board import (
    add_member_key,
    board_dir,
    is_sealed,
    policy_in_force,
    propose_amendment,
)
from governance.desk.settings import DeskSettings
from governance.ledger import DecisionRecord, decisions_for
from governance.policy import Policy, load_policy, project_policy_path
from governance.provenance import Governance
from governance.review import ReviewOutcome, prepare_decision, submit_decision
from governance.signing import (
    b64url_decode,
    envelope_from_dict,
    envelope_to_dict,
    webauthn_challenge,
    webauthn_signature_entry,
)
from training.config import Paths

__all__ = [
    "ENROLLED_DRAFT",
    "ENROLLED_AMENDMENT",
    "governance_of",
    "policy_of",
    "roster",
    "member_keys",
    "add_passkey",
    "prepare",
    "sign_and_submit",
    "decisions",
]

ENROLLED_DRAFT = "added to the draft genesis (in force once the board is sealed)"
ENROLLED_AMENDMENT = (
    "proposed as policy amendment {sha}: it takes effect once {quorum} members sign it, "
    "at the desk or with harmcast board amend sign --proposal {sha}"
)


def governance_of(settings: DeskSettings) -> Governance:
    """Where the project's governance evidence lives."""
    return Governance.for_root(
        settings.root, tracking_uri=settings.tracking_uri, audit_log=settings.audit_log,
        cards_root=settings.cards_root, policy_path=settings.policy_path,
    )  # fmt: skip


def _draft(settings: DeskSettings) -> Path:
    return board_dir(settings.root) / "draft.yaml"


def policy_of(settings: DeskSettings) -> Policy:
    """Return the policy in force, the draft genesis during setup, or the project's policy."""
    if is_sealed(settings.root):
        return policy_in_force(settings.root, policy_path=settings.policy_path).head
    if _draft(settings).is_file():
        return load_policy(_draft(settings))
    path = settings.policy_path
    return load_policy(path if path.is_file() else project_policy_path(Paths()))


def roster(settings: DeskSettings) -> dict[str, str]:
    """Return member id -> name."""
    return {r.id: r.name for r in policy_of(settings).board.roster}


def member_keys(settings: DeskSettings, member: str) -> list[dict[str, Any]]:
    """Return the member's passkeys in the policy (or the draft genesis)."""
    reviewer = policy_of(settings).board.reviewer(member)
    keys = reviewer.keys if reviewer is not None else []
    return [k.model_dump() for k in keys if k.type == "webauthn"]


def add_passkey(settings: DeskSettings, member: str, key: dict[str, Any]) -> str:
    """Enrol a member's passkey; return how it was recorded.

    During setup the key joins the draft genesis. Once the board is sealed the
    policy changes only by amendment, so a policy with the key added is
    proposed and awaits a quorum's signatures.
    """
    if not is_sealed(settings.root):
        add_member_key(settings.root, member, key)
        return ENROLLED_DRAFT
    current = yaml.safe_load(settings.policy_path.read_text())
    for entry in current["board"]["roster"]:
        if entry["id"] == member:
            entry["keys"] = [*entry.get("keys", []), key]
    with tempfile.TemporaryDirectory() as tmp:
        proposed = Path(tmp) / "policy.yaml"
        proposed.write_text(yaml.safe_dump(current, sort_keys=False, allow_unicode=True))
        proposal = propose_amendment(
            settings.root, proposed, rationale=f"enrol a passkey for {member}",
            policy_path=settings.policy_path,
        )  # fmt: skip
    return ENROLLED_AMENDMENT.format(sha=proposal.policy_sha256, quorum=proposal.quorum)


def prepare(
    settings: DeskSettings, *, version: str, decision: str, rationale: str, member: str
) -> tuple[dict[str, Any], bytes]:
    """Return the unsigned decision envelope (JSON form) and its WebAuthn challenge."""
    envelope = prepare_decision(
        governance_of(settings), model_name=settings.model_name, version=version,
        decision=decision, member=member, rationale=rationale,
    )  # fmt: skip
    return envelope_to_dict(envelope), webauthn_challenge(envelope)


def sign_and_submit(
    settings: DeskSettings, unsigned: dict[str, Any], key: dict[str, Any], credential: dict
) -> ReviewOutcome:
    """Add the passkey assertion to the envelope and submit it to the board's record."""
    envelope = envelope_from_dict(unsigned)
    response = credential["response"]
    webauthn_signature_entry(
        envelope,
        credential_id=b64url_decode(key["credential_id"]),
        cose_public_key=b64url_decode(key["public_key"]),
        authenticator_data=b64url_decode(response["authenticatorData"]),
        client_data_json=b64url_decode(response["clientDataJSON"]),
        signature=b64url_decode(response["signature"]),
    )
    return submit_decision(governance_of(settings), envelope_to_dict(envelope))


@dataclass(frozen=True)
class SignedDecision:
    """One verified decision as the desk shows it: who signed, when, with which key."""

    member: str
    name: str
    decision: str
    rationale: str
    issued_at: str
    fingerprint: str
    key_type: str


def decisions(settings: DeskSettings, version: str) -> list[SignedDecision]:
    """Return every decision on ``version``, each verified against the policy chain.

    Raises
    ------
    SignatureError, PolicyNotInForce
        When a decision in the log or the policy chain does not verify.
    """
    if not is_sealed(settings.root):
        return []
    names = roster(settings)
    records: list[DecisionRecord] = decisions_for(
        settings.root, settings.model_name, version, audit_log=settings.audit_log,
        policy_path=settings.policy_path,
    )  # fmt: skip
    return [
        SignedDecision(
            r.member,
            names.get(r.member, ""),
            r.decision,
            r.rationale,
            r.issued_at,
            r.key_fingerprint,
            r.key_type,
        )  # fmt: skip
        for r in records
    ]
