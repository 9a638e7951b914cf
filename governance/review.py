"""Board review of registered versions: approve, reject, roll back, verify.

The approval state lives on the model version as ``harmcast.*`` tags so the
MLflow UI shows it, and every decision is appended to the hash-chained audit
log. Only reviewers on the policy's board roster may act, each with a written
rationale; a version needs the policy quorum of distinct reviewers. Reaching
quorum moves the ``production`` alias to the version and gives the version it
replaces the ``previous`` alias. A rejection is final.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from governance.auditlog import VerifyResult
from governance.auditlog import verify_log as _verify_chain
from governance.policy import Policy
from governance.registry import (
    ALIAS_PREVIOUS,
    ALIAS_PRODUCTION,
    TAG_APPROVALS,
    TAG_AUDIT_HEAD,
    TAG_DECIDED_AT,
    TAG_GATE,
    TAG_REVIEWERS,
    TAG_STATUS,
    client_for,
    record_action,
)
from training.errors import ReviewError

__all__ = [
    "ReviewOutcome",
    "VersionStatus",
    "approve",
    "reject",
    "rollback",
    "list_versions",
    "show_version",
    "verify_log",
    "production_version",
]

OFF_ROSTER = "reviewer {reviewer!r} is not on the board roster ({roster})"
NO_RATIONALE = "a written rationale is required"
NOT_GATE_PASSED = "version {version} of {model!r} did not pass the governance gate (gate={gate})"
ALREADY_REJECTED = "version {version} of {model!r} was rejected; a rejection is final"
ALREADY_APPROVED = "version {version} of {model!r} is already approved"
DUPLICATE_REVIEWER = "reviewer {reviewer!r} has already approved version {version}"
NO_VERSION = "model {model!r} has no version {version}"
NO_PREVIOUS = "model {model!r} has no 'previous' version to roll back to"


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


def _checked(
    client: MlflowClient, model: str, version: str | int, reviewer: str, rationale: str,
    policy: Policy,
) -> tuple[Any, dict[str, str]]:  # fmt: skip
    if policy.board.reviewer(reviewer) is None:
        roster = ", ".join(r.id for r in policy.board.roster)
        raise ReviewError(OFF_ROSTER.format(reviewer=reviewer, roster=roster))
    if not rationale or not rationale.strip():
        raise ReviewError(NO_RATIONALE)
    try:
        mv = client.get_model_version(model, str(version))
    except MlflowException as exc:
        raise ReviewError(NO_VERSION.format(model=model, version=version)) from exc
    tags = dict(mv.tags)
    if tags.get(TAG_STATUS) == "rejected":
        raise ReviewError(ALREADY_REJECTED.format(model=model, version=mv.version))
    return mv, tags


def _outcome(client: MlflowClient, model: str, version: str, quorum: int) -> ReviewOutcome:
    tags = dict(client.get_model_version(model, version).tags)
    return ReviewOutcome(
        model=model,
        version=version,
        status=tags.get(TAG_STATUS, ""),
        reviewers=[r for r in tags.get(TAG_REVIEWERS, "").split(",") if r],
        quorum=quorum,
        production=_alias_version(client, model, ALIAS_PRODUCTION),
        previous=_alias_version(client, model, ALIAS_PREVIOUS),
    )


def _decision(reviewer: str, decision: str, rationale: str, policy: Policy) -> dict[str, str]:
    member = policy.board.reviewer(reviewer)
    return {
        "reviewer": reviewer,
        "name": member.name if member else "",
        "role": member.role if member else "",
        "decision": decision,
        "rationale": rationale.strip(),
        "at": _now(),
    }


def approve(
    *,
    model_name: str,
    version: str | int,
    reviewer: str,
    rationale: str,
    policy: Policy,
    tracking_uri: str,
    audit_log: str | Path,
) -> ReviewOutcome:
    """Record one board member's approval; at quorum, promote the version.

    Raises
    ------
    ReviewError
        When the reviewer is off the roster, the rationale is empty, the
        version did not pass the gate, was rejected or is already approved,
        or the reviewer already approved it.
    """
    client = client_for(tracking_uri)
    mv, tags = _checked(client, model_name, version, reviewer, rationale, policy)
    version = str(mv.version)
    if tags.get(TAG_GATE) != "passed":
        raise ReviewError(
            NOT_GATE_PASSED.format(model=model_name, version=version, gate=tags.get(TAG_GATE))
        )
    if tags.get(TAG_STATUS) == "approved":
        raise ReviewError(ALREADY_APPROVED.format(model=model_name, version=version))
    approvals = json.loads(tags.get(TAG_APPROVALS) or "[]")
    if any(a["reviewer"] == reviewer for a in approvals):
        raise ReviewError(DUPLICATE_REVIEWER.format(reviewer=reviewer, version=version))
    approvals.append(_decision(reviewer, "approve", rationale, policy))
    reviewers = sorted({a["reviewer"] for a in approvals})
    client.set_model_version_tag(model_name, version, TAG_APPROVALS, json.dumps(approvals))
    client.set_model_version_tag(model_name, version, TAG_REVIEWERS, ",".join(reviewers))
    details: dict[str, Any] = {"rationale": rationale.strip(), "approvals": len(reviewers)}
    if len(reviewers) >= policy.board.quorum:
        replaced = _alias_version(client, model_name, ALIAS_PRODUCTION)
        client.set_model_version_tag(model_name, version, TAG_STATUS, "approved")
        client.set_model_version_tag(model_name, version, TAG_DECIDED_AT, _now())
        if replaced is not None and replaced != version:
            client.set_registered_model_alias(model_name, ALIAS_PREVIOUS, replaced)
        client.set_registered_model_alias(model_name, ALIAS_PRODUCTION, version)
        details.update(quorum_reached=True, production=version, previous=replaced)
    record_action(
        client, audit_log, actor=reviewer, action="approve", model=model_name,
        version=version, details=details,
    )  # fmt: skip
    return _outcome(client, model_name, version, policy.board.quorum)


def reject(
    *,
    model_name: str,
    version: str | int,
    reviewer: str,
    rationale: str,
    policy: Policy,
    tracking_uri: str,
    audit_log: str | Path,
) -> ReviewOutcome:
    """Reject a pending version; the rejection is final.

    Raises
    ------
    ReviewError
        When the reviewer is off the roster, the rationale is empty, or the
        version was already rejected or approved.
    """
    client = client_for(tracking_uri)
    mv, tags = _checked(client, model_name, version, reviewer, rationale, policy)
    version = str(mv.version)
    if tags.get(TAG_STATUS) == "approved":
        raise ReviewError(ALREADY_APPROVED.format(model=model_name, version=version))
    approvals = json.loads(tags.get(TAG_APPROVALS) or "[]")
    approvals.append(_decision(reviewer, "reject", rationale, policy))
    client.set_model_version_tag(model_name, version, TAG_APPROVALS, json.dumps(approvals))
    client.set_model_version_tag(model_name, version, TAG_STATUS, "rejected")
    client.set_model_version_tag(model_name, version, TAG_DECIDED_AT, _now())
    record_action(
        client, audit_log, actor=reviewer, action="reject", model=model_name,
        version=version, details={"rationale": rationale.strip()},
    )  # fmt: skip
    return _outcome(client, model_name, version, policy.board.quorum)


def rollback(
    *,
    model_name: str,
    reviewer: str,
    rationale: str,
    policy: Policy,
    tracking_uri: str,
    audit_log: str | Path,
) -> ReviewOutcome:
    """Give ``production`` back to the ``previous`` version and record why.

    The version rolled back from keeps its approval record but loses the
    alias (so no service loads it) and the ``previous`` alias is cleared.

    Raises
    ------
    ReviewError
        When the reviewer is off the roster, the rationale is empty, or no
        ``previous`` version exists.
    """
    client = client_for(tracking_uri)
    if policy.board.reviewer(reviewer) is None:
        roster = ", ".join(r.id for r in policy.board.roster)
        raise ReviewError(OFF_ROSTER.format(reviewer=reviewer, roster=roster))
    if not rationale or not rationale.strip():
        raise ReviewError(NO_RATIONALE)
    previous = _alias_version(client, model_name, ALIAS_PREVIOUS)
    if previous is None:
        raise ReviewError(NO_PREVIOUS.format(model=model_name))
    current = _alias_version(client, model_name, ALIAS_PRODUCTION)
    client.set_registered_model_alias(model_name, ALIAS_PRODUCTION, previous)
    client.delete_registered_model_alias(model_name, ALIAS_PREVIOUS)
    if current is not None:
        client.set_model_version_tag(model_name, current, "harmcast.rolled_back_at", _now())
    record_action(
        client, audit_log, actor=reviewer, action="rollback", model=model_name,
        version=previous,
        details={"rationale": rationale.strip(), "from": current, "to": previous},
    )  # fmt: skip
    return _outcome(client, model_name, previous, policy.board.quorum)


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


def verify_log(
    path: str | Path, *, tracking_uri: str | None = None, model_names: tuple[str, ...] = ()
) -> VerifyResult:
    """Verify the audit log's hash chain and, with a registry, each model's head tag.

    Parameters
    ----------
    path : the audit log.
    tracking_uri : when given, the ``harmcast.audit_head`` tag of each model in
        ``model_names`` is read so truncation of the log's tail is caught.
    model_names : the registered models whose head to check.
    """
    heads: dict[str, str] = {}
    if tracking_uri is not None:
        client = client_for(tracking_uri)
        for name in model_names:
            try:
                head = client.get_registered_model(name).tags.get(TAG_AUDIT_HEAD)
            except MlflowException:
                head = None
            if head:
                heads[name] = head
    return _verify_chain(path, heads=heads)
