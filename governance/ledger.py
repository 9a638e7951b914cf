"""The audit log read as evidence: every signature checked, compared with the registry.

A board decision entry (approve, reject, rollback) holds the member's DSSE
envelope; it counts only when the envelope verifies against the member's key
in the policy it names (a policy of the board's chain) and says what the
entry says. An entry harmcast writes itself (register, publish, snapshot,
genesis, amendment, gate_failed) counts only with a valid system signature
over its hash. ``verify_ledger`` reports every disagreement: a broken chain, a
bad signature, a registry tag or a card on disk that the log contradicts.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from mlflow.exceptions import MlflowException

from governance.auditlog import SYSTEM_ACTOR, entry_hash, read_log
from governance.auditlog import verify_log as verify_chain
from governance.board import PolicyChain, PolicyNotInForce, policy_in_force
from governance.evidence import sha256_file
from governance.provenance import TAG_CARD, TAG_STATUS, Governance
from governance.signing import (
    DECISIONS,
    SignatureError,
    envelope_from_dict,
    statement_of,
    verify_envelope,
)
from training.errors import SchemaError

__all__ = [
    "SYSTEM_ACTOR",
    "DecisionRecord",
    "LedgerReport",
    "verify_decision_entry",
    "verify_system_entry",
    "version_decisions",
    "system_entries",
    "decisions_for",
    "verify_ledger",
]


MSG_NO_ENVELOPE = "entry {n}: {action} by {actor!r} carries no signed decision"
MSG_ENTRY_DISAGREES = (
    "entry {n}: the entry says {field}={said!r} but the signed decision says {signed!r} "
    "(entry edited)"
)
MSG_SIGNER = "entry {n}: decision signed with {signer!r}'s key, but names member {member!r}"
MSG_SIGNATURES = "entry {n}: a decision carries exactly one signature, this one {k}"
MSG_UNSIGNED_SYSTEM = "entry {n}: {action} entry by harmcast carries no system signature"
MSG_BAD_SYSTEM = "entry {n}: {action} entry's system signature does not verify ({why})"
MSG_BAD_DECISION = "entry {n}: {why}"
MSG_STATUS_TAG = (
    "{model} version {version}: registry says approval_status={tagged!r}, the signed "
    "decisions in the log say {actual!r}"
)
MSG_CARD_TAG = (
    "{model} version {version}: registry card hash {tagged} differs from the log's publish "
    "entry {logged}"
)
MSG_CARD_DISK = (
    "{model} version {version}: card on disk {path} hashes to {actual}, the log's publish "
    "entry to {logged}"
)


@dataclass(frozen=True)
class DecisionRecord:
    """One verified board decision, as the card and ``review show`` print it."""

    seq: int
    model: str
    version: str
    decision: str
    member: str
    issued_at: str
    recorded_at: str
    rationale: str
    key_fingerprint: str
    key_type: str
    demo: bool
    model_sha256: str
    gate_report_sha256: str
    policy_sha256: str
    card_sha256: str | None


@dataclass(frozen=True)
class LedgerReport:
    """The outcome of :func:`verify_ledger`."""

    ok: bool
    n_entries: int
    head: str
    problems: list[str] = field(default_factory=list)


def verify_decision_entry(entry: dict[str, Any], chain: PolicyChain) -> DecisionRecord:
    """Verify a decision entry's envelope and that the entry says what it signs.

    Raises
    ------
    SignatureError
        When the envelope is missing, does not verify, or disagrees with the entry.
    """
    n, action, actor = entry.get("seq"), entry.get("action"), entry.get("actor")
    raw = (entry.get("details") or {}).get("envelope")
    if not raw:
        raise SignatureError(MSG_NO_ENVELOPE.format(n=n, action=action, actor=actor))
    envelope = envelope_from_dict(raw)
    statement = statement_of(envelope)
    said = {
        "action": (action, statement.decision),
        "actor": (actor, statement.member),
        "model": (entry.get("model"), statement.model),
        "version": (entry.get("version"), statement.version),
        "rationale": ((entry.get("details") or {}).get("rationale"), statement.rationale),
    }
    for name, (got, signed) in said.items():
        if got != signed:
            raise SignatureError(
                MSG_ENTRY_DISAGREES.format(n=n, field=name, said=got, signed=signed)
            )
    try:
        policy = chain.get(statement.policy_sha256)
    except PolicyNotInForce as exc:
        raise SignatureError(MSG_BAD_DECISION.format(n=n, why=exc)) from exc
    try:
        verified = verify_envelope(
            envelope, policy.board.member_keys(), rp_id=policy.board.webauthn.rp_id
        )
    except SignatureError as exc:
        raise SignatureError(MSG_BAD_DECISION.format(n=n, why=exc)) from exc
    if len(verified) != 1:
        raise SignatureError(MSG_SIGNATURES.format(n=n, k=len(verified)))
    if verified[0].member != statement.member:
        raise SignatureError(
            MSG_SIGNER.format(n=n, signer=verified[0].member, member=statement.member)
        )
    key = verified[0].key
    return DecisionRecord(
        seq=int(n or 0),
        model=statement.model,
        version=statement.version,
        decision=statement.decision,
        member=statement.member,
        issued_at=statement.issued_at,
        recorded_at=str(entry.get("timestamp", "")),
        rationale=statement.rationale,
        key_fingerprint=key.fingerprint,
        key_type=key.type,
        demo=key.demo,
        model_sha256=statement.model_sha256,
        gate_report_sha256=statement.gate_report_sha256,
        policy_sha256=statement.policy_sha256,
        card_sha256=statement.card_sha256,
    )


def verify_system_entry(entry: dict[str, Any], chain: PolicyChain) -> None:
    """Verify the system signature of an entry harmcast wrote.

    Raises
    ------
    SignatureError
        When the signature is missing, by an unknown key, or does not verify.
    """
    n, action = entry.get("seq"), entry.get("action")
    signature = entry.get("system_signature")
    if not isinstance(signature, dict):
        raise SignatureError(MSG_UNSIGNED_SYSTEM.format(n=n, action=action))
    keys = {k.fingerprint: k for k in chain.system_keys()}
    key = keys.get(str(signature.get("keyid")))
    if key is None:
        raise SignatureError(MSG_BAD_SYSTEM.format(n=n, action=action, why="unknown key"))
    try:
        public = Ed25519PublicKey.from_public_bytes(key.public_bytes())
        public.verify(bytes.fromhex(str(signature.get("sig"))), entry_hash(entry).encode())
    except (InvalidSignature, ValueError) as exc:
        raise SignatureError(MSG_BAD_SYSTEM.format(n=n, action=action, why="invalid")) from exc


def _for_version(entries: list[dict], model: str, version: str | int) -> list[dict]:
    return [e for e in entries if e.get("model") == model and e.get("version") == str(version)]


def version_decisions(
    entries: list[dict], chain: PolicyChain, model: str, version: str | int
) -> list[DecisionRecord]:
    """Return the verified decisions about one version, in log order.

    Raises
    ------
    SignatureError
        At the first decision entry about the version that does not verify.
    """
    return [
        verify_decision_entry(e, chain)
        for e in _for_version(entries, model, version)
        if e.get("action") in DECISIONS
    ]


def system_entries(
    entries: list[dict], chain: PolicyChain, model: str, version: str | int, action: str
) -> list[dict]:
    """Return the entries harmcast wrote about one version with ``action``, each verified.

    Raises
    ------
    SignatureError
        At the first such entry whose system signature does not verify.
    """
    found = [
        e
        for e in _for_version(entries, model, version)
        if e.get("action") == action and e.get("actor") == SYSTEM_ACTOR
    ]
    for entry in found:
        verify_system_entry(entry, chain)
    return found


def decisions_for(
    root: str | Path,
    model: str,
    version: str | int,
    *,
    audit_log: str | Path | None = None,
    policy_path: str | Path | None = None,
) -> list[DecisionRecord]:
    """Return the verified board decisions about a version (member, time, key).

    Raises
    ------
    PolicyNotInForce
        When the board's policy chain does not verify.
    SignatureError
        When a decision about the version in the log does not verify.
    """
    gov = Governance.for_root(root, audit_log=audit_log, policy_path=policy_path)
    chain = policy_in_force(gov.root, policy_path=gov.policy_path)
    return version_decisions(read_log(gov.audit_log), chain, model, version)


def status_of(decisions: list[DecisionRecord], quorum: int, rollback_quorum: int) -> str:
    """Return what the verified decisions make of a version.

    ``rejected`` (any rejection), ``rolled_back`` (rollbacks by the needed
    number of members), ``approved`` (approvals by a quorum of members), or
    ``pending``.
    """
    members = {d: {r.member for r in decisions if r.decision == d} for d in DECISIONS}
    if members["reject"]:
        return "rejected"
    if len(members["rollback"]) >= rollback_quorum:
        return "rolled_back"
    return "approved" if len(members["approve"]) >= quorum else "pending"


def _entry_problems(entries: list[dict], chain: PolicyChain) -> list[str]:
    problems = []
    for entry in entries:
        try:
            if entry.get("action") in DECISIONS:
                verify_decision_entry(entry, chain)
            elif entry.get("actor") == SYSTEM_ACTOR:
                verify_system_entry(entry, chain)
        except SignatureError as exc:
            problems.append(str(exc))
    return problems


def _registry_problems(gov: Governance, entries: list[dict], chain: PolicyChain, model: str):
    client = gov.client()
    try:
        versions = client.search_model_versions(f"name = '{model}'")
    except MlflowException:
        return []
    problems = []
    for mv in versions:
        version, tags = str(mv.version), dict(mv.tags)
        try:
            decisions = version_decisions(entries, chain, model, version)
            policy = chain.get(decisions[0].policy_sha256) if decisions else chain.head
        except (SignatureError, PolicyNotInForce):
            continue  # already reported entry by entry
        rollback_quorum = 1 if policy.board.emergency_rollback else policy.board.quorum
        actual = status_of(decisions, policy.board.quorum, rollback_quorum)
        tagged = tags.get(TAG_STATUS, "")
        if tagged in ("approved", "rejected", "rolled_back") and tagged != actual:
            problems.append(
                MSG_STATUS_TAG.format(model=model, version=version, tagged=tagged, actual=actual)
            )
        problems += _card_problems(gov, entries, chain, model, version, tags.get(TAG_CARD))
    return problems


def _card_problems(gov, entries, chain, model, version, tagged) -> list[str]:
    try:
        publishes = system_entries(entries, chain, model, version, "publish")
    except SignatureError:
        return []
    logged = publishes[-1]["details"].get("card_sha256") if publishes else None
    if not logged:
        return []
    problems = []
    if tagged and tagged != logged:
        problems.append(MSG_CARD_TAG.format(model=model, version=version, tagged=tagged,
                                            logged=logged))  # fmt: skip
    path = gov.card_json(model, version)
    actual = sha256_file(path) if path.is_file() else "(missing)"
    if actual != logged:
        problems.append(MSG_CARD_DISK.format(model=model, version=version, path=path,
                                             actual=actual, logged=logged))  # fmt: skip
    return problems


def _heads(gov: Governance, model_names: tuple[str, ...]) -> dict[str, str]:
    heads = {}
    client = gov.client()
    for name in model_names:
        try:
            head = client.get_registered_model(name).tags.get("harmcast.audit_head")
        except MlflowException:
            head = None
        if head:
            heads[name] = head
    return heads


def verify_ledger(gov: Governance, model_names: tuple[str, ...] = ()) -> LedgerReport:
    """Verify the whole audit log and compare it with the registry and the cards.

    Checks, reporting every problem found: the hash chain and each model's
    recorded head; the board's policy chain; every decision's envelope and
    every system entry's signature; each version's approval tag and card hash
    against the signed log; each published card on disk against its publish entry.
    """
    result = verify_chain(gov.audit_log, heads=_heads(gov, model_names))
    problems = list(result.problems)
    try:
        entries = read_log(gov.audit_log)
    except SchemaError as exc:
        return LedgerReport(False, result.n_entries, result.head, [*problems, str(exc)])
    try:
        chain = policy_in_force(
            gov.root, policy_path=gov.policy_path, tracking_uri=gov.tracking_uri,
            model_name=model_names[0] if model_names else None,
        )  # fmt: skip
    except PolicyNotInForce as exc:
        return LedgerReport(False, result.n_entries, result.head, [*problems, str(exc)])
    problems += _entry_problems(entries, chain)
    for name in model_names:
        problems += _registry_problems(gov, entries, chain, name)
    return LedgerReport(not problems, result.n_entries, result.head, problems)


def envelope_json(record: dict[str, Any]) -> str:
    """Return a decision entry's envelope as JSON text (for display)."""
    return json.dumps((record.get("details") or {}).get("envelope"), indent=2)
