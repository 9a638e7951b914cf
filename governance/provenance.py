"""What a registered version is, read from its evidence rather than its tags.

A version's evidence is the model artefact its source points at (hashed), and
the gate report logged to its run as ``gate/gate_report.json`` (hashed, and
checked to name this very run, model and policy in its ``subject``). Registry
tags are a cache of this evidence: they are compared with it, never trusted.
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from governance.auditlog import default_log_path
from governance.evidence import model_artefact_sha256, sha256_bytes
from training.errors import NotApproved

__all__ = [
    "GATE_REPORT_ARTIFACT",
    "TAG_GATE",
    "TAG_STATUS",
    "TAG_CARD",
    "TAG_MODEL",
    "TAG_GATE_REPORT",
    "TAG_SNAPSHOT",
    "Governance",
    "VersionEvidence",
    "read_version_evidence",
    "gate_report_problem",
    "MSG_NO_VERSION",
    "MSG_NO_ARTEFACT",
    "MSG_NO_GATE_REPORT",
    "MSG_NO_SUBJECT",
    "MSG_SUBJECT",
    "MSG_GATE_FAILED",
    "MSG_TAG_DISAGREES",
]

GATE_REPORT_ARTIFACT = "gate/gate_report.json"
# The registry tags every layer reads, defined here once (this module ships in the bento).
TAG_GATE = "harmcast.gate"
TAG_STATUS = "harmcast.approval_status"
TAG_CARD = "harmcast.card_sha256"
TAG_MODEL = "harmcast.model_sha256"
TAG_GATE_REPORT = "harmcast.gate_report_sha256"
TAG_SNAPSHOT = "harmcast.snapshot_sha256"

MSG_NO_VERSION = "model {model!r} has no version {version} in {uri}"
MSG_NO_ARTEFACT = "{model} version {version}: its model artefact ({source}) cannot be read: {why}"
MSG_NO_GATE_REPORT = (
    "{model} version {version}: its run {run} holds no gate report ({artifact}); "
    "a version never audited is never served"
)
MSG_NO_SUBJECT = (
    "{model} version {version}: the gate report of run {run} has no subject naming what "
    "was audited (run, model, policy, predictions)"
)
MSG_SUBJECT = (
    "{model} version {version}: the gate report's subject {field} is {got!r}, "
    "but the version's is {expected!r}; the report is not this version's"
)
MSG_GATE_FAILED = "{model} version {version}: its gate report did not pass ({failed})"
MSG_TAG_DISAGREES = (
    "{model} version {version}: registry tag {tag} is {tagged!r} but the evidence is "
    "{actual!r}; the registry was edited"
)


@dataclass(frozen=True)
class Governance:
    """Where a project's governance evidence lives."""

    root: Path
    tracking_uri: str
    audit_log: Path
    cards_root: Path
    policy_path: Path

    @classmethod
    def for_root(
        cls,
        root: str | Path,
        *,
        tracking_uri: str | None = None,
        audit_log: str | Path | None = None,
        cards_root: str | Path | None = None,
        policy_path: str | Path | None = None,
    ) -> Governance:
        """Return the default places under ``root`` (each may be overridden)."""
        root = Path(root).resolve()
        uri = tracking_uri or f"sqlite:///{root / 'mlruns' / 'mlflow.db'}"
        return cls(
            root=root,
            tracking_uri=uri,
            audit_log=Path(audit_log) if audit_log else default_log_path(root),
            cards_root=Path(cards_root) if cards_root else root / "model_cards",
            policy_path=Path(policy_path) if policy_path else root / "governance/policy.yaml",
        )

    @classmethod
    def from_params(cls, params: Any, *, audit_log: str | Path | None = None) -> Governance:
        """Return the places a ``Params`` names."""
        from training.config import tracking_uri

        return cls.for_root(
            params.paths.root,
            tracking_uri=tracking_uri(params),
            audit_log=audit_log,
            cards_root=params.paths.resolve("model_cards"),
            policy_path=params.paths.resolve("policy"),
        )

    def client(self) -> MlflowClient:
        """Return a client whose tracking and registry are both this project's."""
        return MlflowClient(tracking_uri=self.tracking_uri, registry_uri=self.tracking_uri)

    def card_json(self, model: str, version: str | int) -> Path:
        """Return the path of a version's ``card.json``."""
        return self.cards_root / model / f"v{version}" / "card.json"


@dataclass(frozen=True)
class VersionEvidence:
    """A registered version as its evidence shows it."""

    model: str
    version: str
    run_id: str
    source: str
    model_sha256: str
    gate_report: dict[str, Any]
    gate_report_sha256: str
    tags: dict[str, str] = field(default_factory=dict)

    @property
    def policy_sha256(self) -> str:
        """The policy the version was audited and registered under (the report's subject)."""
        return str((self.gate_report.get("subject") or {}).get("policy_sha256", ""))


def _logged_model_id(mv: Any) -> str | None:
    # MLflow 3 addresses a logged model as models:/m-<id>; the registry's model_id
    # field is not always filled in (sqlite store), the source always is.
    rest = str(mv.source).removeprefix("models:/")
    if rest != mv.source and rest.startswith("m-") and "/" not in rest:
        return rest
    return getattr(mv, "model_id", None) or None


def _artefact_dir(client: MlflowClient, mv: Any, tracking_uri: str, tmp: Path) -> Path:
    # Resolved through this client, never the process-wide tracking URI.
    location = mv.source
    model_id = _logged_model_id(mv)
    if model_id:
        location = client.get_logged_model(model_id).artifact_location
    parsed = urlparse(location)
    if parsed.scheme == "file":
        return Path(unquote(parsed.path))
    if parsed.scheme == "" and Path(location).exists():
        return Path(location)
    import mlflow

    return Path(
        mlflow.artifacts.download_artifacts(
            artifact_uri=location, dst_path=str(tmp), tracking_uri=tracking_uri
        )
    )


def _model_sha(client: MlflowClient, mv: Any, uri: str, model: str) -> str:
    with tempfile.TemporaryDirectory() as tmp:
        try:
            return model_artefact_sha256(_artefact_dir(client, mv, uri, Path(tmp)))
        except (MlflowException, OSError) as exc:
            raise NotApproved(
                MSG_NO_ARTEFACT.format(model=model, version=mv.version, source=mv.source, why=exc)
            ) from exc


def _gate_report_bytes(client: MlflowClient, run_id: str) -> bytes | None:
    if not run_id:
        return None
    with tempfile.TemporaryDirectory() as tmp:
        try:
            local = client.download_artifacts(run_id, GATE_REPORT_ARTIFACT, tmp)
            return Path(local).read_bytes()
        except (MlflowException, OSError):
            return None


def read_version_evidence(gov: Governance, model: str, version: str | int) -> VersionEvidence:
    """Read a version's model artefact hash and its run's gate report.

    Raises
    ------
    NotApproved
        When the version, its model artefact or its gate report cannot be read.
    """
    client = gov.client()
    try:
        mv = client.get_model_version(model, str(version))
    except MlflowException as exc:
        raise NotApproved(
            MSG_NO_VERSION.format(model=model, version=version, uri=gov.tracking_uri)
        ) from exc
    model_sha = _model_sha(client, mv, gov.tracking_uri, model)
    data = _gate_report_bytes(client, mv.run_id or "")
    if data is None:
        raise NotApproved(
            MSG_NO_GATE_REPORT.format(
                model=model, version=mv.version, run=mv.run_id, artifact=GATE_REPORT_ARTIFACT
            )
        )
    try:
        report = json.loads(data)
    except json.JSONDecodeError:
        report = {}
    return VersionEvidence(
        model=model,
        version=str(mv.version),
        run_id=mv.run_id or "",
        source=mv.source,
        model_sha256=model_sha,
        gate_report=report if isinstance(report, dict) else {},
        gate_report_sha256=sha256_bytes(data),
        tags=dict(mv.tags),
    )


def gate_report_problem(evidence: VersionEvidence) -> str | None:
    """Return why the gate report is not this version's passed audit, or None.

    The report's ``subject`` must name the version's run and model artefact,
    the policy the report was judged under, and the predictions the audit
    computed; the report must have passed with no failed gated check.
    """
    fmt = {"model": evidence.model, "version": evidence.version}
    report = evidence.gate_report
    subject = report.get("subject")
    if not isinstance(subject, dict):
        return MSG_NO_SUBJECT.format(run=evidence.run_id, **fmt)
    expected = {
        "run_id": evidence.run_id,
        "model_sha256": evidence.model_sha256,
        "policy_sha256": report.get("policy_sha256"),
    }
    for name, value in expected.items():
        if subject.get(name) != value or not value:
            return MSG_SUBJECT.format(field=name, got=subject.get(name), expected=value, **fmt)
    if report.get("run_id") != evidence.run_id:
        return MSG_SUBJECT.format(
            field="run_id (report)", got=report.get("run_id"), expected=evidence.run_id, **fmt
        )
    if not subject.get("predictions_sha256"):
        return MSG_SUBJECT.format(
            field="predictions_sha256", got=subject.get("predictions_sha256"),
            expected="the hash of the predictions the audit computed", **fmt,
        )  # fmt: skip
    failed = [
        str(c.get("name"))
        for c in report.get("checks", [])
        if isinstance(c, dict) and c.get("gated", True) and not c.get("passed")
    ]
    if report.get("passed") is not True or failed:
        return MSG_GATE_FAILED.format(failed=", ".join(failed) or "passed is not true", **fmt)
    return None


def tag_problem(evidence: VersionEvidence, tag: str, actual: str | None) -> str | None:
    """Return a disagreement between a cached tag and the evidence (a missing tag is none)."""
    tagged = evidence.tags.get(tag)
    if tagged and actual and tagged != actual:
        return MSG_TAG_DISAGREES.format(
            model=evidence.model, version=evidence.version, tag=tag, tagged=tagged, actual=actual
        )
    return None
