"""check_servable: the single verdict, and each attack on it refused with its reason."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from mlflow import MlflowClient

from governance.servable import check_servable, record_snapshot
from tests.governance.governed import (
    MODEL,
    approve_by,
    audited_report,
    draft_card,
    governed_version,
    make_project,
    publish,
    register_logged,
)
from tests.governance.mlflow_helpers import log_candidate
from training.errors import GateFailed, NotApproved


@pytest.fixture
def project(tmp_path):
    return make_project(tmp_path / "root")


def test_a_governed_version_is_servable(project):
    version = governed_version(project)
    servable = check_servable(project.gov, MODEL, version)
    assert servable.approvers == ["r.adeyemi", "t.hughes"]
    tags = project.client.get_model_version(MODEL, version).tags
    assert tags["harmcast.approval_status"] == "approved"
    assert tags["harmcast.model_sha256"] == servable.evidence.model_sha256


def test_one_approval_is_not_a_quorum(project):
    run_id, uri = log_candidate(project.uri)
    version = register_logged(project, run_id, uri, audited_report(project, run_id, uri))
    draft_card(project, version)
    approve_by(project, version, members=("t.hughes",))
    with pytest.raises(NotApproved, match=r"valid signed approvals from t.hughes \(1 of the "):
        check_servable(project.gov, MODEL, version, require_card=False)


def test_register_model_with_copied_tags_is_never_servable(project):
    """Attack: a version made with the MLflow client (as mlflow.register_model does), an
    approved version's tags copied onto it, the alias moved."""

    good = governed_version(project)
    run_id, uri = log_candidate(project.uri, seed=7)
    forged = MlflowClient(project.uri, project.uri).create_model_version(MODEL, uri).version
    client = project.client
    for key, value in client.get_model_version(MODEL, good).tags.items():
        client.set_model_version_tag(MODEL, str(forged), key, value)
    client.set_registered_model_alias(MODEL, "production", str(forged))
    with pytest.raises(NotApproved, match="holds no gate report"):
        check_servable(project.gov, MODEL, forged)


def test_forged_version_with_a_copied_gate_report_is_refused(project):
    """The forger also copies a passed gate report into the new run: the subject gives it away."""

    good = governed_version(project)
    good_run = project.client.get_model_version(MODEL, good).run_id
    run_id, uri = log_candidate(project.uri, seed=7)
    forged = MlflowClient(project.uri, project.uri).create_model_version(MODEL, uri).version
    from tests.governance.governed import log_gate_report

    local = project.client.download_artifacts(good_run, "gate/gate_report.json", str(project.root))
    report = json.loads(Path(local).read_text())
    log_gate_report(project.uri, run_id, report)
    with pytest.raises(NotApproved, match="subject run_id .* not this version's"):
        check_servable(project.gov, MODEL, forged)
    # Even with a subject rewritten for the new run and model, no harmcast register entry.
    report["subject"] = audited_report(project, run_id, uri)["subject"]
    report["run_id"] = run_id
    log_gate_report(project.uri, run_id, report)
    with pytest.raises(NotApproved, match="no register entry signed by harmcast"):
        check_servable(project.gov, MODEL, forged)


def test_edited_card_with_reset_tag_is_refused(project):
    """Attack: edit card.json and set harmcast.card_sha256 to its new hash."""
    from governance.evidence import sha256_file

    version = governed_version(project)
    path = project.gov.card_json(MODEL, version)
    path.write_text(path.read_text().replace('"published"', '"published", "edited": true'))
    project.client.set_model_version_tag(MODEL, version, "harmcast.card_sha256", sha256_file(path))
    with pytest.raises(NotApproved, match="changed after it was published"):
        check_servable(project.gov, MODEL, version)


def test_card_published_from_another_draft_is_refused(project):
    run_id, uri = log_candidate(project.uri)
    version = register_logged(project, run_id, uri, audited_report(project, run_id, uri))
    draft_card(project, version)
    approve_by(project, version)
    draft_card(project, version, {"sneaked": "in after review"})
    publish(project, version)
    with pytest.raises(NotApproved, match="approving members reviewed card"):
        check_servable(project.gov, MODEL, version)


def test_gate_report_of_a_failed_audit_is_refused(project):
    run_id, uri = log_candidate(project.uri)
    report = audited_report(project, run_id, uri)
    register_logged(project, run_id, uri, report)  # passes, then the run's report is replaced
    report["passed"] = False
    report["checks"][1]["passed"] = False
    from tests.governance.governed import log_gate_report

    log_gate_report(project.uri, run_id, report)
    with pytest.raises(NotApproved, match="did not pass"):
        check_servable(project.gov, MODEL, "1", require_card=False)


def test_gate_report_of_another_model_is_refused(project):
    run_id, uri = log_candidate(project.uri)
    report = audited_report(project, run_id, uri, model_sha256="e" * 64)
    # refused at registration already: the logged report names another model
    with pytest.raises(GateFailed, match="gate report audited model sha256 e{64}, but"):
        register_logged(project, run_id, uri, report)


def test_gate_report_without_predictions_hash_is_refused(project):
    run_id, uri = log_candidate(project.uri)
    report = audited_report(project, run_id, uri, predictions_sha256="")
    version = register_logged(project, run_id, uri, report)
    with pytest.raises(NotApproved, match="predictions_sha256"):
        check_servable(project.gov, MODEL, version, require_card=False)


def test_swapped_policy_makes_nothing_servable(project):
    version = governed_version(project)
    policy = project.root / "governance/policy.yaml"
    policy.write_text(policy.read_text().replace("quorum: 2", "quorum: 1"))
    with pytest.raises(NotApproved, match="policy in force is"):
        check_servable(project.gov, MODEL, version)


def test_snapshot_must_be_recorded(project):
    version = governed_version(project)
    record_snapshot(project.gov, MODEL, version, "a" * 64)
    check_servable(project.gov, MODEL, version, snapshot_sha256="a" * 64)
    with pytest.raises(NotApproved, match="snapshot sha256 bbbb"):
        check_servable(project.gov, MODEL, version, snapshot_sha256="b" * 64)
