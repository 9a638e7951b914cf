"""The gate report as evidence: logged once to the audited run, read back from there.

``harmcast audit`` logs the report's exact bytes to the candidate's MLflow run
as ``gate/gate_report.json`` and tags the run with their SHA-256
(``harmcast.gate_report_sha256``). ``harmcast register`` reads the report from
that artefact and checks the hash before trusting a word of it: the copy under
``data/07_audit/`` is for people to read, and an edited copy is refused.
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from governance.evidence import canonical_json, sha256_bytes

__all__ = [
    "GATE_REPORT_ARTIFACT",
    "TAG_GATE_REPORT",
    "NOT_AUDITED",
    "REPORT_HASH_MISMATCH",
    "NOT_A_REPORT",
    "LoggedReport",
    "gate_report_bytes",
    "log_gate_report",
    "read_logged_gate_report",
    "same_content",
]

GATE_REPORT_ARTIFACT = "gate/gate_report.json"
TAG_GATE_REPORT = "harmcast.gate_report_sha256"

NOT_AUDITED = (
    "run {run}: no gate report logged as {artifact} with a {tag} tag (run `harmcast audit` first)"
)
NOT_A_REPORT = "run {run}: the logged {artifact} is not a JSON gate report"
REPORT_HASH_MISMATCH = (
    "run {run}: the logged {artifact} has sha256 {actual}, but the audit tagged {expected}"
)


@dataclass(frozen=True)
class LoggedReport:
    """A gate report read back from its run: the parsed content and the hash of its bytes."""

    content: dict[str, Any]
    sha256: str


def gate_report_bytes(report: Any) -> bytes:
    """Return the bytes logged for ``report`` (a ``GateReport``, a dict or a JSON path)."""
    if hasattr(report, "model_dump_json"):
        return report.model_dump_json(indent=2).encode()
    if isinstance(report, str | Path):
        return Path(report).read_bytes()
    return json.dumps(report, indent=2).encode()


def log_gate_report(client: MlflowClient, run_id: str, report: Any) -> str:
    """Log ``report`` as the run's ``gate/gate_report.json``, tag its SHA-256, return it."""
    data = gate_report_bytes(report)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / Path(GATE_REPORT_ARTIFACT).name
        path.write_bytes(data)
        client.log_artifact(run_id, str(path), str(Path(GATE_REPORT_ARTIFACT).parent))
    digest = sha256_bytes(data)
    client.set_tag(run_id, TAG_GATE_REPORT, digest)
    return digest


def read_logged_gate_report(client: MlflowClient, run_id: str) -> LoggedReport | str:
    """Read the run's logged gate report and check it against the hash tagged at audit.

    Returns
    -------
    LoggedReport or str
        The report and its hash, or the reason it cannot be trusted.
    """
    fmt = {"run": run_id, "artifact": GATE_REPORT_ARTIFACT, "tag": TAG_GATE_REPORT}
    try:
        expected = client.get_run(run_id).data.tags.get(TAG_GATE_REPORT)
        with tempfile.TemporaryDirectory() as tmp:
            local = client.download_artifacts(run_id, GATE_REPORT_ARTIFACT, tmp)
            data = Path(local).read_bytes()
    except (MlflowException, OSError):
        return NOT_AUDITED.format(**fmt)
    if not expected:
        return NOT_AUDITED.format(**fmt)
    actual = sha256_bytes(data)
    if actual != expected:
        return REPORT_HASH_MISMATCH.format(actual=actual, expected=expected, **fmt)
    try:
        content = json.loads(data)
    except ValueError:
        content = None
    if not isinstance(content, dict):
        return NOT_A_REPORT.format(**fmt)
    return LoggedReport(content, actual)


def same_content(report: Any, logged: LoggedReport) -> bool:
    """Whether ``report`` (object, dict or JSON path) says exactly what the logged one says."""
    if hasattr(report, "model_dump"):
        content = report.model_dump(mode="json")
    elif isinstance(report, str | Path):
        try:
            content = json.loads(Path(report).read_text())
        except (OSError, ValueError):
            return False
    else:
        content = report
    return canonical_json(content) == canonical_json(logged.content)
