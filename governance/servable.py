"""The single verdict "may this version be served", from evidence alone.

``check_servable`` is called by ``harmcast review verify``, ``card``,
``snapshot``, ``bento import``, the weekly refresh and the service at start-up,
and refuses with the first reason that fails:

1. the board's policy chain verifies and the root's policy file is its head;
2. the version's model artefact hashes to what its gate report audited, and
   the gate report (from the run's ``gate/gate_report.json``) is this version's
   passed audit under a policy of the chain;
3. harmcast's own ``register`` entry for the version carries a valid system signature;
4. the audit log's hash chain is intact, and every decision about the version
   verifies; none is a rejection, and the version was not rolled back;
5. a quorum of distinct members of the version's policy signed approvals of
   exactly this model artefact, gate report and policy;
6. (with ``require_card``) the card on disk, the registry's card hash and the
   log's publish entry agree, and the publish entry names the card the
   approving members reviewed;
7. (with a snapshot hash) the snapshot is one recorded when it was created.

Registry tags are compared with the evidence, never taken as evidence.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from governance.auditlog import SYSTEM_ACTOR, read_log
from governance.auditlog import verify_log as verify_chain
from governance.board import PolicyNotInForce, policy_in_force
from governance.evidence import sha256_file
from governance.ledger import DecisionRecord, status_of, system_entries, version_decisions
from governance.provenance import (
    TAG_CARD,
    TAG_GATE_REPORT,
    TAG_MODEL,
    Governance,
    VersionEvidence,
    gate_report_problem,
    read_version_evidence,
    tag_problem,
)
from governance.signing import SignatureError
from training.errors import NotApproved, SchemaError

__all__ = [
    "Servable",
    "check_servable",
    "check_registered",
    "record_snapshot",
    "MSG_NOT_REGISTERED",
    "MSG_LOG",
    "MSG_REJECTED",
    "MSG_ROLLED_BACK",
    "MSG_NO_QUORUM",
    "MSG_CARD_MISSING",
    "MSG_CARD",
    "MSG_NOT_PUBLISHED",
    "MSG_REVIEWED_CARD",
    "MSG_SNAPSHOT",
]


MSG_NOT_REGISTERED = (
    "{model} version {version}: no register entry signed by harmcast in the audit log "
    "(registered outside harmcast register)"
)
MSG_LOG = "{model} version {version}: the audit log does not verify: {problem}"
MSG_REJECTED = "{model} version {version} was rejected by {members}; a rejection is final"
MSG_ROLLED_BACK = "{model} version {version} was rolled back by {members}; it is no longer approved"
MSG_NO_QUORUM = (
    "{model} version {version} is not approved: valid signed approvals from {members} "
    "({n} of the quorum {quorum} of policy {policy}){ignored}"
)
MSG_CARD_MISSING = "{model} version {version}: model card {path} not found"
MSG_NOT_PUBLISHED = (
    "{model} version {version}: no publish entry signed by harmcast for its card (harmcast card)"
)
MSG_CARD = (
    "{model} version {version}: the card ({where}) hashes to {actual}, but the log's "
    "publish entry records {logged}; the card changed after it was published"
)
MSG_REVIEWED_CARD = (
    "{model} version {version}: the approving members reviewed card {reviewed}, "
    "the published card was built from {published}"
)
MSG_SNAPSHOT = (
    "{model} version {version}: snapshot sha256 {actual} was never recorded by harmcast "
    "snapshot for this version (recorded: {recorded})"
)


@dataclass(frozen=True)
class Servable:
    """The evidence that a version may be served."""

    evidence: VersionEvidence
    decisions: list[DecisionRecord] = field(default_factory=list)
    approvers: list[str] = field(default_factory=list)
    card_sha256: str | None = None
    reviewed_card_sha256: str | None = None

    @property
    def model(self) -> str:
        """The registered model."""
        return self.evidence.model

    @property
    def version(self) -> str:
        """The version number."""
        return self.evidence.version


def _refuse(reason: str | None) -> None:
    if reason:
        raise NotApproved(reason)


def _chain(gov: Governance, model: str):
    try:
        return policy_in_force(
            gov.root, policy_path=gov.policy_path, tracking_uri=gov.tracking_uri, model_name=model
        )
    except (PolicyNotInForce, SignatureError) as exc:
        raise NotApproved(f"{model}: {exc}") from exc


def check_registered(gov: Governance, model: str, version: str | int):
    """Check what a version is and that harmcast registered it after a passed audit.

    Returns the evidence, the policy chain, the log's entries and the version's
    verified decisions (steps 1 to 4 of the module's list, rejection and
    rollback aside).

    Raises
    ------
    NotApproved
        With the first reason that fails.
    """
    chain = _chain(gov, model)
    evidence = read_version_evidence(gov, model, version)
    fmt = {"model": model, "version": evidence.version}
    _refuse(gate_report_problem(evidence))
    try:
        policy = chain.get(evidence.policy_sha256)
    except PolicyNotInForce as exc:
        raise NotApproved(f"{model} version {evidence.version}: {exc}") from exc
    _refuse(tag_problem(evidence, TAG_MODEL, evidence.model_sha256))
    _refuse(tag_problem(evidence, TAG_GATE_REPORT, evidence.gate_report_sha256))
    chained = verify_chain(gov.audit_log)
    if not chained.ok:
        raise NotApproved(MSG_LOG.format(problem=chained.problems[0], **fmt))
    try:
        entries = read_log(gov.audit_log)
        registered = system_entries(entries, chain, model, evidence.version, "register")
        decisions = version_decisions(entries, chain, model, evidence.version)
    except (SignatureError, SchemaError) as exc:
        raise NotApproved(MSG_LOG.format(problem=exc, **fmt)) from exc
    if not registered:
        raise NotApproved(MSG_NOT_REGISTERED.format(**fmt))
    return evidence, chain, policy, entries, decisions


def _approvers(evidence: VersionEvidence, decisions: list[DecisionRecord]) -> list[DecisionRecord]:
    return [
        d
        for d in decisions
        if d.decision == "approve"
        and d.model_sha256 == evidence.model_sha256
        and d.gate_report_sha256 == evidence.gate_report_sha256
        and d.policy_sha256 == evidence.policy_sha256
    ]


def _decided(evidence, policy, decisions) -> tuple[list[DecisionRecord], str | None]:
    fmt = {"model": evidence.model, "version": evidence.version}
    rollback_quorum = 1 if policy.board.emergency_rollback else policy.board.quorum
    status = status_of(decisions, policy.board.quorum, rollback_quorum)
    if status in ("rejected", "rolled_back"):
        kind = "reject" if status == "rejected" else "rollback"
        members = ", ".join(sorted({d.member for d in decisions if d.decision == kind}))
        template = MSG_REJECTED if status == "rejected" else MSG_ROLLED_BACK
        return [], template.format(members=members, **fmt)
    valid = _approvers(evidence, decisions)
    members = sorted({d.member for d in valid})
    if len(members) < policy.board.quorum:
        other = len([d for d in decisions if d.decision == "approve"]) - len(valid)
        ignored = f"; {other} approval(s) signed other content" if other else ""
        return valid, MSG_NO_QUORUM.format(
            members=", ".join(members) or "nobody", n=len(members), quorum=policy.board.quorum,
            policy=evidence.policy_sha256[:12], ignored=ignored, **fmt,
        )  # fmt: skip
    return valid, None


def _card(gov, chain, entries, evidence, valid, card_sha256) -> tuple[str, str | None]:
    fmt = {"model": evidence.model, "version": evidence.version}
    try:
        publishes = system_entries(entries, chain, evidence.model, evidence.version, "publish")
    except SignatureError as exc:
        raise NotApproved(MSG_LOG.format(problem=exc, **fmt)) from exc
    if not publishes:
        raise NotApproved(MSG_NOT_PUBLISHED.format(**fmt))
    details = publishes[-1].get("details") or {}
    logged, reviewed = details.get("card_sha256"), details.get("reviewed_card_sha256")
    if card_sha256 is None:
        path = gov.card_json(evidence.model, evidence.version)
        if not path.is_file():
            raise NotApproved(MSG_CARD_MISSING.format(path=path, **fmt))
        actual, where = sha256_file(path), str(path)
    else:
        actual, where = card_sha256, "served"
    if actual != logged:
        raise NotApproved(MSG_CARD.format(where=where, actual=actual, logged=logged, **fmt))
    _refuse(tag_problem(evidence, TAG_CARD, actual))
    signed = {d.card_sha256 for d in valid}
    if signed != {reviewed}:
        raise NotApproved(
            MSG_REVIEWED_CARD.format(
                reviewed=", ".join(sorted(map(str, signed))), published=reviewed, **fmt
            )  # fmt: skip
        )
    return actual, reviewed


def _snapshot(gov, chain, entries, evidence, snapshot_sha256: str) -> None:
    fmt = {"model": evidence.model, "version": evidence.version}
    try:
        made = system_entries(entries, chain, evidence.model, evidence.version, "snapshot")
    except SignatureError as exc:
        raise NotApproved(MSG_LOG.format(problem=exc, **fmt)) from exc
    recorded = [str((e.get("details") or {}).get("snapshot_sha256")) for e in made]
    if snapshot_sha256 not in recorded:
        raise NotApproved(
            MSG_SNAPSHOT.format(
                actual=snapshot_sha256, recorded=", ".join(recorded) or "none", **fmt
            )  # fmt: skip
        )


def check_servable(
    gov: Governance,
    model: str,
    version: str | int,
    *,
    require_card: bool = True,
    card_sha256: str | None = None,
    snapshot_sha256: str | None = None,
) -> Servable:
    """Decide whether a version may be served, from its evidence.

    Parameters
    ----------
    gov : where the project's evidence lives (root, registry, log, cards).
    model, version : the registered version.
    require_card : check the published card (False only while publishing it).
    card_sha256 : the hash of the card actually served (a bento's copy);
        default: the card on disk under ``gov.cards_root``.
    snapshot_sha256 : the hash of the snapshot to serve
        (``serving.snapshot.snapshot_sha256``); checked only when given.

    Returns
    -------
    Servable
        The evidence, the verified decisions and the approving members.

    Raises
    ------
    NotApproved
        With the first reason (in the module's order) that fails.
    """
    evidence, chain, policy, entries, decisions = check_registered(gov, model, version)
    valid, problem = _decided(evidence, policy, decisions)
    _refuse(problem)
    card, reviewed = None, None
    if require_card:
        card, reviewed = _card(gov, chain, entries, evidence, valid, card_sha256)
    if snapshot_sha256 is not None:
        _snapshot(gov, chain, entries, evidence, snapshot_sha256)
    return Servable(
        evidence=evidence,
        decisions=decisions,
        approvers=sorted({d.member for d in valid}),
        card_sha256=card,
        reviewed_card_sha256=reviewed,
    )


def record_snapshot(gov: Governance, model: str, version: str | int, snapshot_sha256: str) -> dict:
    """Record a snapshot made from a servable version: a signed log entry and a tag.

    ``check_servable(..., snapshot_sha256=...)`` later accepts only snapshots
    recorded here. The version is checked first: no snapshot of a version that
    may not be served is ever recorded.

    Raises
    ------
    NotApproved
        When the version may not be served.
    """
    from governance.provenance import TAG_SNAPSHOT
    from governance.registry import record_action

    servable = check_servable(gov, model, version)
    client = gov.client()
    entry = record_action(
        client, gov.audit_log, actor=SYSTEM_ACTOR, action="snapshot", model=model,
        version=servable.version, details={"snapshot_sha256": snapshot_sha256},
    )  # fmt: skip
    client.set_model_version_tag(model, servable.version, TAG_SNAPSHOT, snapshot_sha256)
    return entry
