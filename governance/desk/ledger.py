"""The desk's link to the board's signed record: members' keys and signed decisions.

A decision is a DSSE envelope whose payload is the canonical JSON of
``{model, version, model_sha256, gate_report_sha256, policy_sha256, card_sha256,
decision, rationale, member, issued_at}``; a passkey signs it with the WebAuthn
challenge SHA-256(PAE(payloadType, payload)).
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from securesystemslib.dsse import Envelope

from governance.desk.settings import DeskSettings
from governance.cards.builder import card_dir
from governance.evidence import canonical_json, sha256_bytes, sha256_file
from governance.policy import Policy, load_policy
from governance.registry import TAG_POLICY, client_for

__all__ = [
    "PAYLOAD_TYPE",
    "KEYS_FILE",
    "SignedDecision",
    "policy_of",
    "roster",
    "member_keys",
    "add_passkey",
    "decision_payload",
    "challenge_for",
    "webauthn_envelope",
    "submit_decision",
    "decisions_for",
]

PAYLOAD_TYPE = "application/vnd.harmcast.decision+json"
KEYS_FILE = "passkeys.json"
TAG_MODEL_SHA = "harmcast.model_sha256"
TAG_GATE_SHA = "harmcast.gate_report_sha256"


@dataclass(frozen=True)
class SignedDecision:
    """One decision as the desk shows it: who signed, when, with which key, and whether it verifies."""

    member: str
    name: str
    decision: str
    rationale: str
    issued_at: str
    fingerprint: str
    valid: bool


def policy_of(settings: DeskSettings) -> Policy:
    """The policy the desk governs by."""
    return load_policy(settings.policy_path)


def roster(settings: DeskSettings) -> dict[str, str]:
    """Member id -> name."""
    return {r.id: r.name for r in policy_of(settings).board.roster}


def _keys_path(settings: DeskSettings) -> Path:
    return settings.desk_dir / KEYS_FILE


def member_keys(settings: DeskSettings, member: str) -> list[dict[str, Any]]:
    """The member's enrolled keys."""
    path = _keys_path(settings)
    stored = json.loads(path.read_text()) if path.is_file() else {}
    return list(stored.get(member, []))


def add_passkey(settings: DeskSettings, member: str, key: dict[str, Any]) -> str:
    """Enrol ``key`` for ``member``; return how it was recorded."""
    path = _keys_path(settings)
    stored = json.loads(path.read_text()) if path.is_file() else {}
    stored.setdefault(member, []).append(key)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(stored, indent=2, sort_keys=True) + "\n")
    return "enrolled"


def _evidence(settings: DeskSettings, version: str) -> dict[str, str | None]:
    mv = client_for(settings.tracking_uri).get_model_version(settings.model_name, version)
    tags = dict(mv.tags)
    card = card_dir(settings.cards_root, settings.model_name, version) / "card.json"
    return {
        "model_sha256": tags.get(TAG_MODEL_SHA, ""),
        "gate_report_sha256": tags.get(TAG_GATE_SHA, ""),
        "policy_sha256": tags.get(TAG_POLICY, ""),
        "card_sha256": sha256_file(card) if card.is_file() else None,
    }


def decision_payload(
    settings: DeskSettings, *, version: str, decision: str, rationale: str, member: str
) -> bytes:
    """The canonical JSON payload of one member's decision on one version."""
    evidence = _evidence(settings, version)
    return canonical_json(
        {
            "model": settings.model_name,
            "version": str(version),
            "model_sha256": evidence["model_sha256"],
            "gate_report_sha256": evidence["gate_report_sha256"],
            "policy_sha256": evidence["policy_sha256"],
            "card_sha256": evidence["card_sha256"] if decision == "approve" else None,
            "decision": decision,
            "rationale": rationale.strip(),
            "member": member,
            "issued_at": datetime.now(UTC).isoformat(timespec="seconds"),
        }
    )


def challenge_for(payload: bytes) -> bytes:
    """The WebAuthn challenge that signs ``payload``: SHA-256(PAE(payloadType, payload))."""
    return bytes.fromhex(sha256_bytes(Envelope(payload, PAYLOAD_TYPE, {}).pae()))


def _b64url_to_std(value: str) -> str:
    raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
    return base64.b64encode(raw).decode()


def webauthn_envelope(payload: bytes, key: dict[str, Any], credential: dict[str, Any]) -> dict:
    """The DSSE envelope (JSON) of ``payload`` signed by a passkey assertion."""
    response = credential["response"]
    return {
        "payload": base64.b64encode(payload).decode(),
        "payloadType": PAYLOAD_TYPE,
        "signatures": [
            {
                "keyid": key["fingerprint"],
                "sig": _b64url_to_std(response["signature"]),
                "authenticator_data": response["authenticatorData"],
                "client_data_json": response["clientDataJSON"],
                "signature": response["signature"],
                "credential_id": credential["id"],
            }
        ],
    }


def _decisions_dir(settings: DeskSettings, version: str) -> Path:
    return settings.desk_dir / "decisions" / settings.model_name / f"v{version}"


def _payload_of(envelope: dict) -> dict[str, Any]:
    return json.loads(base64.b64decode(envelope["payload"]))


def submit_decision(settings: DeskSettings, envelope: dict) -> Any:
    """Record a signed decision and act on it (approve, reject or roll back).

    Raises
    ------
    ReviewError
        When the review rules refuse it (off roster, rejected, duplicate member...).
    """
    from governance import review

    payload = _payload_of(envelope)
    action = {"approve": review.approve, "reject": review.reject}.get(payload["decision"])
    common = {"model_name": settings.model_name, "reviewer": payload["member"],
              "rationale": payload["rationale"], "policy": policy_of(settings),
              "tracking_uri": settings.tracking_uri, "audit_log": settings.audit_log}  # fmt: skip
    if action is None:
        outcome = review.rollback(**common)
    else:
        outcome = action(version=payload["version"], **common)
    folder = _decisions_dir(settings, payload["version"])
    folder.mkdir(parents=True, exist_ok=True)
    name = f"{len(list(folder.glob('*.json'))) + 1:03d}-{payload['member']}.json"
    (folder / name).write_text(json.dumps(envelope, indent=2) + "\n")
    return outcome


def _verifies(settings: DeskSettings, envelope: dict, member: str) -> tuple[str, bool]:
    from governance.desk.passkeys import PasskeyError, verify_assertion

    sig = envelope["signatures"][0]
    credential = {
        "id": sig["credential_id"], "rawId": sig["credential_id"], "type": "public-key",
        "response": {"authenticatorData": sig["authenticator_data"],
                     "clientDataJSON": sig["client_data_json"], "signature": sig["signature"]},
    }  # fmt: skip
    payload = base64.b64decode(envelope["payload"])
    try:
        key = verify_assertion(credential, member=member, keys=member_keys(settings, member),
                               challenge=challenge_for(payload), rp_id=settings.rp_id,
                               origins=list(settings.origins))  # fmt: skip
    except PasskeyError:
        return sig.get("keyid", ""), False
    return key["fingerprint"], True


def decisions_for(settings: DeskSettings, version: str) -> list[SignedDecision]:
    """Every signed decision on ``version``, each verified again."""
    names = roster(settings)
    found = []
    folder = _decisions_dir(settings, version)
    for path in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        envelope = json.loads(path.read_text())
        p = _payload_of(envelope)
        fingerprint, valid = _verifies(settings, envelope, p["member"])
        found.append(SignedDecision(p["member"], names.get(p["member"], ""), p["decision"],
                                    p["rationale"], p["issued_at"], fingerprint, valid))  # fmt: skip
    return found
