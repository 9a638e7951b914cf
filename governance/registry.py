"""Register a candidate in the MLflow registry, only when its gate report passed.

A registered version carries its provenance as ``harmcast.*`` tags and starts
``pending`` board approval; approval moves the ``production`` alias
(``governance.review``). Registry stages are deprecated, so only aliases and
tags are used. Every action is appended to the audit log and the hash of the
model's latest entry is kept on the registered model (``harmcast.audit_head``).
"""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import mlflow
import mlflow.artifacts
from mlflow import MlflowClient
from mlflow.entities.model_registry import ModelVersion
from mlflow.exceptions import MlflowException
from pydantic import BaseModel, ConfigDict, ValidationError

from governance.auditlog import SYSTEM_ACTOR, append_entry
from governance.evidence import model_artefact_sha256
from governance.gate_record import (
    TAG_GATE_REPORT,
    LoggedReport,
    read_logged_gate_report,
    same_content,
)
from governance.keys import load_system_key, root_of_log
from governance.policy import Policy
from governance.provenance import TAG_CARD, TAG_GATE, TAG_MODEL, TAG_STATUS
from training.errors import GateFailed, HarmcastError

__all__ = [
    "TAG_GATE",
    "TAG_POLICY",
    "TAG_DATA",
    "TAG_CODE",
    "TAG_STATUS",
    "TAG_REVIEWERS",
    "TAG_APPROVALS",
    "TAG_DECIDED_AT",
    "TAG_CARD",
    "TAG_METRIC_PREFIX",
    "TAG_AUDIT_HEAD",
    "TAG_MODEL",
    "TAG_GATE_REPORT",
    "ALIAS_PRODUCTION",
    "ALIAS_PREVIOUS",
    "GateView",
    "client_for",
    "record_action",
    "failed_checks",
    "register_candidate",
    "use_tracking",
    "logged_model_sha256",
]

TAG_POLICY = "harmcast.policy_sha256"
TAG_DATA = "harmcast.data_sha256"
TAG_CODE = "harmcast.code_version"
TAG_REVIEWERS = "harmcast.reviewers"
TAG_APPROVALS = "harmcast.approvals"
TAG_DECIDED_AT = "harmcast.decided_at"
TAG_METRIC_PREFIX = "harmcast.metric."
TAG_AUDIT_HEAD = "harmcast.audit_head"
ALIAS_PRODUCTION = "production"
ALIAS_PREVIOUS = "previous"

RUN_MISMATCH = "gate report is for run {report!r}, not the candidate run {run!r}"
POLICY_MISMATCH = (
    "gate report used policy sha256 {report}, but the current policy is {policy} (re-run the audit)"
)
REPORT_FAILED = "gate report says failed but lists no failed gated check"
LOCAL_COPY_EDITED = (
    "the gate report given differs from the one the audit logged to run {run} "
    "(gate/gate_report.json): the logged report is the evidence, re-run `harmcast audit`"
)
NO_SUBJECT = "gate report names no subject (what it audited); re-run `harmcast audit`"
SUBJECT_RUN = "gate report audited run {subject!r}, not the candidate run {run!r}"
SUBJECT_MODEL = (
    "gate report audited model sha256 {subject}, but the logged model is {model}; "
    "re-run `harmcast audit` on this model"
)
REGISTRATION_FAILED = "{name}: the registry refused the new version, nothing was kept: {error}"
NOT_A_REPORT = "run {run}: the logged gate report does not match the report schema ({error})"
MODEL_UNREADABLE = "the logged model's model.lgb cannot be read to hash it"


class RegistrationFailed(HarmcastError, RuntimeError):
    """The registry refused a version after the gate passed; nothing half-made is kept."""


class CheckView(BaseModel):
    """The fields of one gate check the registry reads (extra fields ignored)."""

    model_config = ConfigDict(extra="ignore")

    name: str
    category: str = ""
    passed: bool
    gated: bool = True
    value: Any = None
    lower: Any = None
    upper: Any = None
    detail: str = ""


class GateView(BaseModel):
    """The fields of a gate report the registry reads (extra fields ignored)."""

    model_config = ConfigDict(extra="ignore")

    run_id: str
    model_uri: str = ""
    policy_sha256: str
    passed: bool
    checks: list[CheckView] = []

    @classmethod
    def of(cls, report: Any) -> GateView:
        """Read a ``GateReport``, a dict, or a path to ``gate_report.json``."""
        if isinstance(report, GateView):
            return report
        if isinstance(report, str | Path):
            return cls.model_validate_json(Path(report).read_text())
        if hasattr(report, "model_dump"):
            report = report.model_dump(mode="json")
        return cls.model_validate(report)


def client_for(tracking_uri: str) -> MlflowClient:
    """Return a client whose tracking and registry are both ``tracking_uri``."""
    return MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)


def record_action(
    client: MlflowClient,
    log_path: str | Path,
    *,
    actor: str,
    action: str,
    model: str,
    version: str | int | None,
    details: dict[str, Any],
) -> dict[str, Any]:
    """Append an audit entry and, when the model is registered, move its audit head.

    harmcast's own entries are signed with the root's system key when it has one
    (``governance.keys``): the root of a log kept at ``governance_log/audit.jsonl``.
    """
    signer = load_system_key(root_of_log(log_path)) if actor == SYSTEM_ACTOR else None
    entry = append_entry(
        log_path,
        actor=actor,
        action=action,
        model=model,
        version=version,
        details=details,
        signer=signer,
    )
    # A gate failure before the first registration has no registered model to tag yet.
    with contextlib.suppress(MlflowException):
        client.set_registered_model_tag(model, TAG_AUDIT_HEAD, entry["hash"])
    return entry


def _describe(check: CheckView) -> str:
    bounds = f" outside [{check.lower}, {check.upper}]" if check.value is not None else ""
    value = f"value={check.value}{bounds}" if check.value is not None else "failed"
    detail = f": {check.detail}" if check.detail else ""
    return f"{check.name} ({check.category}) {value}{detail}"


def failed_checks(report: Any, *, run_id: str, policy: Policy) -> list[str]:
    """List why a gate report does not allow registration (empty when it does)."""
    gate = GateView.of(report)
    failed = [_describe(c) for c in gate.checks if c.gated and not c.passed]
    if gate.run_id != run_id:
        failed.append(RUN_MISMATCH.format(report=gate.run_id, run=run_id))
    if gate.policy_sha256 != policy.sha256:
        failed.append(POLICY_MISMATCH.format(report=gate.policy_sha256, policy=policy.sha256))
    if not gate.passed and not failed:
        failed.append(REPORT_FAILED)
    return failed


def _log_report_files(client: MlflowClient, run_id: str, files: Iterable[Path]) -> None:
    # The gate report itself is never re-logged: the audit logged it, and the
    # registry reads it from there.
    for path in files:
        if Path(path).is_file() and Path(path).name != "gate_report.json":
            client.log_artifact(run_id, str(path), "audit")


def use_tracking(tracking_uri: str) -> None:
    """Point MLflow's process-wide tracking and registry URIs at ``tracking_uri``.

    ``create_model_version(source="models:/m-...")`` and artefact downloads look
    the logged model up through the process-wide URI, not the client's: unset,
    they read (and create) an ``mlflow.db`` in the working folder.
    """
    mlflow.set_tracking_uri(tracking_uri)
    mlflow.set_registry_uri(tracking_uri)


def logged_model_sha256(model_uri: str, tracking_uri: str) -> str | None:
    """SHA-256 of the ``model.lgb`` of a logged model, or None when it cannot be read."""
    with tempfile.TemporaryDirectory() as tmp:
        try:
            local = mlflow.artifacts.download_artifacts(
                artifact_uri=model_uri, dst_path=tmp, tracking_uri=tracking_uri
            )
            return model_artefact_sha256(local)
        except (MlflowException, OSError):
            return None


def _evidence_problems(
    logged: LoggedReport, gate_report: Any, *, run_id: str, model_sha256: str | None
) -> list[str]:
    """Why the logged report does not describe this run's model (empty when it does)."""
    problems = []
    if gate_report is not None and not same_content(gate_report, logged):
        problems.append(LOCAL_COPY_EDITED.format(run=run_id))
    subject = logged.content.get("subject")
    if not isinstance(subject, dict):
        return [*problems, NO_SUBJECT]
    if subject.get("run_id") != run_id:
        problems.append(SUBJECT_RUN.format(subject=subject.get("run_id"), run=run_id))
    if model_sha256 is None:
        problems.append(MODEL_UNREADABLE)
    elif subject.get("model_sha256") != model_sha256:
        problems.append(
            SUBJECT_MODEL.format(subject=subject.get("model_sha256"), model=model_sha256)
        )
    return problems


def _model_id(model_uri: str) -> str | None:
    # A logged model in MLflow 3 is addressed as models:/m-<id>.
    rest = model_uri.removeprefix("models:/")
    return rest if rest != model_uri and rest.startswith("m-") and "/" not in rest else None


def register_candidate(
    *,
    run_id: str,
    model_uri: str,
    gate_report: Any = None,
    model_name: str,
    policy: Policy,
    data_sha256: str,
    code_version: str,
    backtest_metrics: dict[str, float],
    tracking_uri: str,
    audit_log: str | Path,
    report_files: Iterable[Path] = (),
) -> ModelVersion:
    """Register ``model_uri`` as a new version of ``model_name`` if its gate passed.

    The gate report is the one the audit logged to the run
    (``gate/gate_report.json``, checked against the run tag
    ``harmcast.gate_report_sha256``), never a file given here; its ``subject``
    must name this run and the logged model's ``model.lgb`` hash. Nothing is
    created unless every check holds, and a version the registry refuses leaves
    no empty registered model behind.

    Parameters
    ----------
    run_id, model_uri : the training run and its logged model (``models:/m-...``).
    gate_report : optional local copy (``GateReport``, dict or JSON path), such
        as ``data/07_audit/gate_report.json``: refused unless it says exactly
        what the logged report says.
    model_name : the registered model, e.g. ``harmcast-violence``.
    policy : the loaded policy; its hash must equal the report's.
    data_sha256, code_version : provenance written to the version's tags.
    backtest_metrics : headline metrics, tagged ``harmcast.metric.<name>``.
    tracking_uri : the sqlite tracking and registry URI.
    audit_log : the audit log to append to.
    report_files : audit report files (HTML, plots) logged under ``audit/``.

    Returns
    -------
    ModelVersion
        The new version, tagged ``harmcast.gate=passed``,
        ``harmcast.approval_status=pending``, ``harmcast.model_sha256`` and
        ``harmcast.gate_report_sha256``.

    Raises
    ------
    GateFailed
        When the report failed, is missing or edited, or does not belong to
        this run, model and policy; the run is then tagged
        ``harmcast.gate=failed`` and nothing is registered.
    RegistrationFailed
        When the registry refuses the version.
    """
    use_tracking(tracking_uri)
    client = client_for(tracking_uri)
    logged = read_logged_gate_report(client, run_id)
    if isinstance(logged, str):
        failed = [logged]
    else:
        model_sha = logged_model_sha256(model_uri, tracking_uri)
        failed = _evidence_problems(logged, gate_report, run_id=run_id, model_sha256=model_sha)
        try:
            failed += failed_checks(logged.content, run_id=run_id, policy=policy)
        except ValidationError as exc:
            failed.append(NOT_A_REPORT.format(run=run_id, error=exc.errors()[0]["msg"]))
    if failed:
        client.set_tag(run_id, TAG_GATE, "failed")
        record_action(
            client, audit_log, actor=SYSTEM_ACTOR, action="gate_failed", model=model_name,
            version=None, details={"run_id": run_id, "failed": failed},
        )  # fmt: skip
        raise GateFailed(failed)
    tags = {
        TAG_GATE: "passed",
        TAG_POLICY: policy.sha256,
        TAG_DATA: data_sha256,
        TAG_CODE: code_version,
        TAG_MODEL: model_sha,
        TAG_GATE_REPORT: logged.sha256,
        TAG_STATUS: "pending",
        TAG_REVIEWERS: "",
        TAG_APPROVALS: "[]",
        **{f"{TAG_METRIC_PREFIX}{k}": repr(float(v)) for k, v in backtest_metrics.items()},
    }
    version = _create_version(client, model_name, model_uri, run_id, tags)
    client.set_tag(run_id, TAG_GATE, "passed")
    _log_report_files(client, run_id, report_files)
    record_action(
        client, audit_log, actor=SYSTEM_ACTOR, action="register", model=model_name,
        version=version.version,
        details={"run_id": run_id, "model_uri": model_uri, "policy_sha256": policy.sha256,
                 "data_sha256": data_sha256, "code_version": code_version,
                 "model_sha256": model_sha, "gate_report_sha256": logged.sha256},
    )  # fmt: skip
    return client.get_model_version(model_name, version.version)


def _create_version(
    client: MlflowClient, name: str, model_uri: str, run_id: str, tags: dict[str, str]
) -> ModelVersion:
    """Create the version; a registered model this call created is deleted if that fails."""
    created = False
    try:
        client.create_registered_model(name)
        created = True
    except MlflowException as exc:
        if exc.error_code not in ("RESOURCE_ALREADY_EXISTS", "ALREADY_EXISTS"):
            raise
    try:
        return client.create_model_version(
            name, source=model_uri, run_id=run_id, tags=tags, model_id=_model_id(model_uri)
        )
    except MlflowException as exc:
        if created:
            with contextlib.suppress(MlflowException):
                client.delete_registered_model(name)
        raise RegistrationFailed(REGISTRATION_FAILED.format(name=name, error=exc)) from exc
