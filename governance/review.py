"""Board review of registered versions: signed approve, reject and roll back.

Each decision is a member's signature (Ed25519 key or passkey) over one
canonical statement of what is decided (``governance.signing``): the model
artefact, gate report, policy and (for an approval) the reviewed draft card,
by their hashes. :func:`submit_decision` takes an already-signed envelope
(from the command line or the review desk), verifies it against the keys of
the policy the version was registered under, and appends it to the audit log.
A quorum of distinct members' valid approvals moves ``production`` to the
version; a valid rejection is final; a rollback (signed by the quorum, or by
one member when the policy's ``emergency_rollback`` says so) withdraws the
version for good. The ``harmcast.*`` tags are a cache for the MLflow UI.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from governance.evidence import sha256_file
from governance.ledger import DecisionRecord, status_of
from governance.provenance import TAG_GATE_REPORT, TAG_MODEL, Governance
from governance.registry import (
    ALIAS_PREVIOUS,
    ALIAS_PRODUCTION,
    TAG_APPROVALS,
    TAG_DECIDED_AT,
    TAG_GATE,
    TAG_REVIEWERS,
    TAG_STATUS,
    client_for,
    record_action,
)
from governance.servable import check_registered
from governance.signing import (
    DecisionStatement,
    SignatureError,
    envelope_for,
    envelope_from_dict,
    envelope_to_dict,
    read_private_key,
    sign_ed25519,
    statement_of,
    verify_envelope,
)
from training.errors import NotApproved, ReviewError

__all__ = [
    "ReviewOutcome",
    "VersionStatus",
    "prepare_decision",
    "submit_decision",
    "sign_and_submit",
    "approve",
    "reject",
    "rollback",
    "list_versions",
    "show_version",
    "production_version",
    "OFF_ROSTER",
    "NO_RATIONALE",
    "ALREADY_REJECTED",
    "ALREADY_APPROVED",
    "DUPLICATE_REVIEWER",
    "NO_VERSION",
    "NO_DRAFT_CARD",
    "STALE_STATEMENT",
    "NOT_APPROVED_YET",
    "ROLLED_BACK",
    "NOT_THE_SIGNER",
]

OFF_ROSTER = "reviewer {reviewer!r} is not on the board roster ({roster})"
NO_RATIONALE = "a written rationale is required"
ALREADY_REJECTED = "version {version} of {model!r} was rejected; a rejection is final"
ALREADY_APPROVED = "version {version} of {model!r} is already approved"
DUPLICATE_REVIEWER = "reviewer {reviewer!r} has already signed {decision} for version {version}"
NO_VERSION = "model {model!r} has no version {version}"
NO_DRAFT_CARD = (
    "{path}: no draft card to review; build it first (harmcast card --version {version}): "
    "an approval signs the card the member read"
)
STALE_STATEMENT = (
    "the signed statement's {field} is {signed!r}, but version {version}'s is {actual!r}: "
    "it does not describe this version as it is"
)
NOT_APPROVED_YET = "version {version} of {model!r} is not approved: there is nothing to roll back"
ROLLED_BACK = "version {version} of {model!r} was rolled back; register a new version instead"
NOT_THE_SIGNER = "the decision names member {member!r} but is signed by {signer!r}'s key"


@dataclass(frozen=True)
class ReviewOutcome:
    """The state of a version after a review action."""

    model: str
    version: str
    status: str
    reviewers: list[str]
    quorum: int
    production: str | None
    previous: str | None


@dataclass(frozen=True)
class VersionStatus:
    """One registered version as ``harmcast review list|show`` prints it."""

    version: str
    run_id: str
    created: str
    gate: str
    status: str
    reviewers: list[str]
    aliases: list[str]
    tags: dict[str, str]
    approvals: list[dict[str, Any]]


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _alias_version(client: MlflowClient, model: str, alias: str) -> str | None:
    try:
        return str(client.get_model_version_by_alias(model, alias).version)
    except MlflowException:
        return None


def production_version(*, model_name: str, tracking_uri: str) -> str | None:
    """Return the version holding the ``production`` alias, or None."""
    return _alias_version(client_for(tracking_uri), model_name, ALIAS_PRODUCTION)


def _registered(gov: Governance, model: str, version: str | int):
    try:
        return check_registered(gov, model, version)
    except NotApproved as exc:
        raise ReviewError(str(exc)) from exc


def _draft_card_sha(gov: Governance, model: str, version: str) -> str:
    path = gov.card_json(model, version)
    if not path.is_file():
        raise ReviewError(NO_DRAFT_CARD.format(path=path, version=version))
    return sha256_file(path)


def prepare_decision(
    gov: Governance,
    *,
    model_name: str,
    version: str | int,
    decision: str,
    member: str,
    rationale: str,
):
    """Return the unsigned envelope of a decision about a version as it is now.

    The statement names the version's model artefact, gate report and policy
    by their hashes (read from the evidence, not the tags) and, for an
    approval, the draft card on disk that the member reviewed.

    Raises
    ------
    ReviewError
        When the version's evidence does not hold, or an approval has no draft card.
    """
    if not rationale or not rationale.strip():
        raise ReviewError(NO_RATIONALE)
    evidence = _registered(gov, model_name, version)[0]
    card = _draft_card_sha(gov, model_name, evidence.version) if decision == "approve" else None
    statement = DecisionStatement(
        model=model_name,
        version=evidence.version,
        model_sha256=evidence.model_sha256,
        gate_report_sha256=evidence.gate_report_sha256,
        policy_sha256=evidence.policy_sha256,
        card_sha256=card,
        decision=decision,
        rationale=rationale.strip(),
        member=member,
        issued_at=_now(),
    )
    return envelope_for(statement)


def _check_statement(gov: Governance, statement: DecisionStatement, evidence) -> None:
    actual = {
        "model_sha256": evidence.model_sha256,
        "gate_report_sha256": evidence.gate_report_sha256,
        "policy_sha256": evidence.policy_sha256,
    }
    if statement.decision == "approve":
        actual["card_sha256"] = _draft_card_sha(gov, statement.model, evidence.version)
    for name, value in actual.items():
        signed = getattr(statement, name)
        if signed != value:
            raise ReviewError(
                STALE_STATEMENT.format(
                    field=name, signed=signed, actual=value, version=evidence.version
                )
            )


def _check_state(statement: DecisionStatement, decisions: list[DecisionRecord], policy) -> None:
    fmt = {"model": statement.model, "version": statement.version}
    rollback_quorum = 1 if policy.board.emergency_rollback else policy.board.quorum
    status = status_of(decisions, policy.board.quorum, rollback_quorum)
    if status == "rejected":
        raise ReviewError(ALREADY_REJECTED.format(**fmt))
    if status == "rolled_back":
        raise ReviewError(ROLLED_BACK.format(**fmt))
    if statement.decision in ("approve", "reject") and status == "approved":
        raise ReviewError(ALREADY_APPROVED.format(**fmt))
    if statement.decision == "rollback" and status != "approved":
        raise ReviewError(NOT_APPROVED_YET.format(**fmt))
    if any(d.member == statement.member and d.decision == statement.decision for d in decisions):
        raise ReviewError(
            DUPLICATE_REVIEWER.format(
                reviewer=statement.member, decision=statement.decision, version=statement.version
            )
        )


def _verify_signer(envelope, statement: DecisionStatement, policy) -> str:
    if policy.board.reviewer(statement.member) is None:
        roster = ", ".join(r.id for r in policy.board.roster)
        raise ReviewError(OFF_ROSTER.format(reviewer=statement.member, roster=roster))
    verified = verify_envelope(
        envelope, policy.board.member_keys(), rp_id=policy.board.webauthn.rp_id
    )
    if len(verified) != 1:
        raise SignatureError(f"a decision carries exactly one signature, this one {len(verified)}")
    if verified[0].member != statement.member:
        raise ReviewError(NOT_THE_SIGNER.format(member=statement.member, signer=verified[0].member))
    return verified[0].key.fingerprint


def submit_decision(gov: Governance, signed: dict[str, Any] | str) -> ReviewOutcome:
    """Verify a signed decision and record it; at quorum, move the aliases.

    Parameters
    ----------
    gov : where the project's evidence lives.
    signed : the DSSE envelope (JSON form) carrying one member's signature.

    Raises
    ------
    SignatureError
        When the envelope is malformed or its signature does not verify.
    ReviewError
        When the member is off the roster, the statement does not describe the
        version as it is, or the decision is not allowed in the version's state.
    """
    envelope = envelope_from_dict(signed)
    statement = statement_of(envelope)
    if not statement.rationale.strip():
        raise ReviewError(NO_RATIONALE)
    evidence, _, policy, _, decisions = _registered(gov, statement.model, statement.version)
    if statement.model != evidence.model or statement.version != evidence.version:
        raise ReviewError(NO_VERSION.format(model=statement.model, version=statement.version))
    fingerprint = _verify_signer(envelope, statement, policy)
    _check_statement(gov, statement, evidence)
    _check_state(statement, decisions, policy)
    client = gov.client()
    record_action(
        client, gov.audit_log, actor=statement.member, action=statement.decision,
        model=statement.model, version=statement.version,
        details={"rationale": statement.rationale, "key_fingerprint": fingerprint,
                 "envelope": envelope_to_dict(envelope)},
    )  # fmt: skip
    decisions = _registered(gov, statement.model, statement.version)[4]
    return _apply(client, evidence, decisions, policy)


def _cache_tags(client: MlflowClient, evidence, decisions, status: str) -> None:
    model, version = evidence.model, evidence.version
    summary = [
        {"reviewer": d.member, "decision": d.decision, "rationale": d.rationale,
         "at": d.issued_at, "key_fingerprint": d.key_fingerprint, "demo": d.demo}
        for d in decisions
    ]  # fmt: skip
    approvers = sorted({d.member for d in decisions if d.decision == "approve"})
    tags = {
        TAG_APPROVALS: json.dumps(summary),
        TAG_REVIEWERS: ",".join(approvers),
        TAG_STATUS: status,
        TAG_MODEL: evidence.model_sha256,
        TAG_GATE_REPORT: evidence.gate_report_sha256,
    }
    if status != "pending":
        tags[TAG_DECIDED_AT] = _now()
    for key, value in tags.items():
        client.set_model_version_tag(model, version, key, value)


def _apply(client: MlflowClient, evidence, decisions, policy) -> ReviewOutcome:
    model, version = evidence.model, evidence.version
    rollback_quorum = 1 if policy.board.emergency_rollback else policy.board.quorum
    status = status_of(decisions, policy.board.quorum, rollback_quorum)
    before = dict(client.get_model_version(model, version).tags).get(TAG_STATUS)
    _cache_tags(client, evidence, decisions, status)
    production = _alias_version(client, model, ALIAS_PRODUCTION)
    if status == "approved" and before != "approved":
        if production is not None and production != version:
            client.set_registered_model_alias(model, ALIAS_PREVIOUS, production)
        client.set_registered_model_alias(model, ALIAS_PRODUCTION, version)
    if status == "rolled_back" and production == version:
        previous = _alias_version(client, model, ALIAS_PREVIOUS)
        if previous is not None:
            client.set_registered_model_alias(model, ALIAS_PRODUCTION, previous)
            client.delete_registered_model_alias(model, ALIAS_PREVIOUS)
        else:
            client.delete_registered_model_alias(model, ALIAS_PRODUCTION)
    return ReviewOutcome(
        model=model,
        version=version,
        status=status,
        reviewers=sorted({d.member for d in decisions if d.decision == "approve"}),
        quorum=policy.board.quorum,
        production=_alias_version(client, model, ALIAS_PRODUCTION),
        previous=_alias_version(client, model, ALIAS_PREVIOUS),
    )


def sign_and_submit(
    gov: Governance,
    *,
    decision: str,
    model_name: str,
    version: str | int,
    member: str,
    key: Ed25519PrivateKey | str | Path,
    rationale: str,
) -> ReviewOutcome:
    """Sign a decision with a member's Ed25519 key (object or key file) and submit it."""
    private = key if isinstance(key, Ed25519PrivateKey) else read_private_key(key)
    envelope = prepare_decision(
        gov, model_name=model_name, version=version, decision=decision, member=member,
        rationale=rationale,
    )  # fmt: skip
    sign_ed25519(envelope, private)
    return submit_decision(gov, envelope_to_dict(envelope))


def approve(gov: Governance, **kwargs: Any) -> ReviewOutcome:
    """Sign and record one member's approval (see :func:`sign_and_submit`)."""
    return sign_and_submit(gov, decision="approve", **kwargs)


def reject(gov: Governance, **kwargs: Any) -> ReviewOutcome:
    """Sign and record one member's rejection; a valid rejection is final."""
    return sign_and_submit(gov, decision="reject", **kwargs)


def rollback(gov: Governance, **kwargs: Any) -> ReviewOutcome:
    """Sign and record one member's rollback of an approved version.

    At the policy's quorum (or one signature under ``emergency_rollback``) the
    version is withdrawn for good and ``production`` returns to ``previous``.
    """
    return sign_and_submit(gov, decision="rollback", **kwargs)


def _status(client: MlflowClient, mv: Any) -> VersionStatus:
    tags = dict(mv.tags)
    created = datetime.fromtimestamp(mv.creation_timestamp / 1000, UTC).isoformat("T", "seconds")
    return VersionStatus(
        version=str(mv.version),
        run_id=mv.run_id or "",
        created=created,
        gate=tags.get(TAG_GATE, ""),
        status=tags.get(TAG_STATUS, ""),
        reviewers=[r for r in tags.get(TAG_REVIEWERS, "").split(",") if r],
        aliases=sorted(getattr(mv, "aliases", []) or []),
        tags=tags,
        approvals=json.loads(tags.get(TAG_APPROVALS) or "[]"),
    )


def list_versions(*, model_name: str, tracking_uri: str) -> list[VersionStatus]:
    """Return every version of the model, newest first, with gate and approval status."""
    client = client_for(tracking_uri)
    found = client.search_model_versions(f"name = '{model_name}'")
    # search_model_versions returns no aliases (MLflow 3.17): the registered model has them.
    try:
        aliases = dict(client.get_registered_model(model_name).aliases or {})
    except MlflowException:
        aliases = {}
    rows = [_status(client, mv) for mv in found]
    rows = [
        replace(
            r, aliases=sorted({*r.aliases, *(a for a, v in aliases.items() if str(v) == r.version)})
        )
        for r in rows
    ]
    return sorted(rows, key=lambda s: -int(s.version))


def show_version(*, model_name: str, version: str | int, tracking_uri: str) -> VersionStatus:
    """Return one version's gate and approval status, tags and approvals."""
    client = client_for(tracking_uri)
    try:
        return _status(client, client.get_model_version(model_name, str(version)))
    except MlflowException as exc:
        raise ReviewError(NO_VERSION.format(model=model_name, version=version)) from exc
