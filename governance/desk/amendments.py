"""Policy amendments at the desk, signed by the members with their passkeys.

A sealed board's policy changes only when a quorum of its members sign the
amendment (``governance.board``).
A passkey enrolled after sealing is proposed as an amendment; the members see
each open proposal on the desk and sign it with their passkey, the WebAuthn
challenge being SHA-256(PAE(payloadType, payload)) of the amendment envelope.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from governance.board import (
    Proposal,
    amendment_envelope,
    board_dir,
    is_sealed,
    policy_in_force,
    sign_amendment,
)
from governance.desk.settings import DeskSettings
from governance.signing import (
    AMENDMENT_TYPE,
    b64url_decode,
    envelope_from_dict,
    envelope_to_dict,
    verify_envelope,
    webauthn_challenge,
    webauthn_signature_entry,
)

__all__ = ["OpenAmendment", "open_amendments", "prepare_signature", "add_signature"]


@dataclass(frozen=True)
class OpenAmendment:
    """A proposal that replaces the policy in force and still lacks signatures."""

    policy_sha256: str
    rationale: str
    proposed_at: str
    signed_by: list[str]
    quorum: int


def open_amendments(settings: DeskSettings) -> list[OpenAmendment]:
    """Return the proposals that would replace the policy in force, oldest first."""
    if not is_sealed(settings.root):
        return []
    chain = policy_in_force(settings.root, policy_path=settings.policy_path)
    head, board = chain.shas[-1], chain.head.board
    found = []
    for meta in sorted((board_dir(settings.root) / "proposals").glob("*.json")):
        record = json.loads(meta.read_text())
        payload = record["payload"]
        if payload.get("replaces") != head:
            continue
        envelope = envelope_from_dict(record["envelope"], AMENDMENT_TYPE)
        verified = verify_envelope(envelope, board.member_keys(), rp_id=board.webauthn.rp_id)
        found.append(
            OpenAmendment(
                payload["policy_sha256"],
                payload.get("rationale", ""),
                payload.get("proposed_at", ""),
                sorted({v.member for v in verified}),
                board.quorum,
            )  # fmt: skip
        )
    return sorted(found, key=lambda a: a.proposed_at)


def prepare_signature(settings: DeskSettings, policy_sha256: str) -> tuple[dict[str, Any], bytes]:
    """Return a proposal's unsigned envelope (JSON form) and its WebAuthn challenge."""
    envelope = amendment_envelope(settings.root, policy_sha256)
    return envelope_to_dict(envelope), webauthn_challenge(envelope)


def add_signature(
    settings: DeskSettings,
    policy_sha256: str,
    unsigned: dict[str, Any],
    key: dict[str, Any],
    credential: dict[str, Any],
) -> Proposal:
    """Add one member's passkey signature to a proposal; at quorum it takes effect."""
    envelope = envelope_from_dict(unsigned, AMENDMENT_TYPE)
    response = credential["response"]
    webauthn_signature_entry(
        envelope,
        credential_id=b64url_decode(key["credential_id"]),
        cose_public_key=b64url_decode(key["public_key"]),
        authenticator_data=b64url_decode(response["authenticatorData"]),
        client_data_json=b64url_decode(response["clientDataJSON"]),
        signature=b64url_decode(response["signature"]),
    )
    return sign_amendment(
        settings.root, policy_sha256, envelope_to_dict(envelope), audit_log=settings.audit_log,
        policy_path=settings.policy_path, tracking_uri=settings.tracking_uri,
        model_name=settings.model_name,
    )  # fmt: skip
