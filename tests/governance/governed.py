"""A governed project under a tmp root, built as harmcast builds it.

A sealed board (Ed25519 keys for every roster member), a real sqlite registry
under ``<root>/mlruns``, candidates whose gate report (with its ``subject``) is
logged to their run as ``gate/gate_report.json``, registration through
``governance.registry``, a draft card, signed approvals, and a published card
recorded by a publish entry signed with the system key.
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from mlflow import MlflowClient

from governance.board import PolicyChain
from governance.evidence import model_artefact_sha256, sha256_bytes, sha256_file
from governance.provenance import GATE_REPORT_ARTIFACT, Governance
from governance.registry import SYSTEM_ACTOR, TAG_CARD, record_action, register_candidate
from governance.review import approve
from tests.governance.board_helpers import seal_board
from tests.governance.mlflow_helpers import gate_report, log_candidate, tracking_uri

MODEL = "harmcast-violence"
DEMO = ("r.adeyemi", "t.hughes")


@dataclass
class Project:
    """A root with a sealed board and a registry."""

    root: Path
    uri: str
    gov: Governance
    keys: dict[str, Ed25519PrivateKey]
    chain: PolicyChain

    @property
    def client(self) -> MlflowClient:
        return self.gov.client()


def make_project(root: Path) -> Project:
    root.mkdir(parents=True, exist_ok=True)
    uri = _registry(root)
    keys, chain = seal_board(root, tracking_uri=uri, model_name=MODEL)
    return Project(root, uri, Governance.for_root(root, tracking_uri=uri), keys, chain)


def _registry(root: Path) -> str:
    (root / "mlruns").mkdir(parents=True, exist_ok=True)
    return tracking_uri(root / "mlruns")


def model_sha(uri: str, model_uri: str) -> str:
    client = MlflowClient(uri)
    location = client.get_logged_model(model_uri.removeprefix("models:/")).artifact_location
    return model_artefact_sha256(location.removeprefix("file://"))


def log_gate_report(uri: str, run_id: str, report: dict) -> str:
    data = json.dumps(report, indent=2).encode()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "gate_report.json"
        path.write_bytes(data)
        client = MlflowClient(uri)
        client.log_artifact(run_id, str(path), str(Path(GATE_REPORT_ARTIFACT).parent))
    # What `harmcast audit` records beside the artefact: the hash of its bytes.
    client.set_tag(run_id, "harmcast.gate_report_sha256", sha256_bytes(data))
    return sha256_bytes(data)


def audited_report(project: Project, run_id: str, model_uri: str, **subject) -> dict:
    report = gate_report(run_id, model_uri, project.chain.head.sha256)
    report["subject"] = {
        "run_id": run_id,
        "model_sha256": model_sha(project.uri, model_uri),
        "policy_sha256": project.chain.head.sha256,
        "predictions_sha256": "p" * 64,
        "features_sha256": "f" * 64,
        **subject,
    }
    return report


def register_logged(
    project: Project, run_id: str, model_uri: str, report: dict, metrics: dict | None = None
) -> str:
    log_gate_report(project.uri, run_id, report)
    return str(
        register_candidate(
            run_id=run_id, model_uri=model_uri, gate_report=report, model_name=MODEL,
            policy=project.chain.head, data_sha256="d" * 64, code_version="test",
            backtest_metrics=metrics or {"poisson_deviance": 0.9}, tracking_uri=project.uri,
            audit_log=project.gov.audit_log,
        ).version
    )  # fmt: skip


def draft_card(project: Project, version: str, body: dict | None = None) -> Path:
    path = project.gov.card_json(MODEL, version)
    path.parent.mkdir(parents=True, exist_ok=True)
    card = {"model": MODEL, "version": int(version), "status": "draft", **(body or {})}
    path.write_text(json.dumps(card, indent=2))
    return path


def approve_by(project: Project, version: str, members=DEMO, rationale="gate passed, card read"):
    out = None
    for member in members:
        out = approve(project.gov, model_name=MODEL, version=version, member=member,
                      key=project.keys[member], rationale=rationale)  # fmt: skip
    return out


def publish(project: Project, version: str, body: dict | None = None) -> str:
    """Publish the card the way ``publish_card`` records it (card, tag, signed entry)."""
    path = project.gov.card_json(MODEL, version)
    reviewed = sha256_file(path)
    card = {**json.loads(path.read_text()), "status": "published", **(body or {})}
    path.write_text(json.dumps(card, indent=2))
    (path.parent / "card.html").write_text(f"<html><body>{MODEL} v{version}</body></html>")
    sha = sha256_file(path)
    project.client.set_model_version_tag(MODEL, version, TAG_CARD, sha)
    record_action(
        project.client, project.gov.audit_log, actor=SYSTEM_ACTOR, action="publish",
        model=MODEL, version=version,
        details={"card_sha256": sha, "reviewed_card_sha256": reviewed, "path": str(path.parent)},
    )  # fmt: skip
    return sha


def govern(project: Project, run_id: str, model_uri: str, *, card: dict | None = None) -> str:
    """Audit-log, register, draft, approve by the demo quorum and publish a logged model."""
    version = register_logged(project, run_id, model_uri, audited_report(project, run_id,
                                                                         model_uri))  # fmt: skip
    draft_card(project, version, card)
    approve_by(project, version)
    publish(project, version)
    return version


def governed_version(project: Project, *, seed: int = 0) -> str:
    run_id, model_uri = log_candidate(project.uri, seed=seed)
    return govern(project, run_id, model_uri)
