"""The audit log as evidence: a rewritten and re-hashed log is caught, and so are
registry tags and cards on disk that disagree with it."""

from __future__ import annotations

import base64
import json

import pytest

from governance.auditlog import GENESIS_HASH, entry_hash, read_log
from governance.evidence import canonical_json, sha256_file
from governance.ledger import decisions_for, verify_ledger
from governance.servable import check_servable
from tests.governance.governed import MODEL, governed_version, make_project
from training.errors import NotApproved


@pytest.fixture
def project(tmp_path):
    return make_project(tmp_path / "root")


def _rewrite(project, edit) -> None:
    """Edit entries, re-hash the whole chain and move the registry's head tag, as an
    operator with shell and MLflow access could."""
    entries = read_log(project.gov.audit_log)
    for entry in entries:
        edit(entry)
    prev = GENESIS_HASH
    for entry in entries:
        entry["prev_hash"] = prev
        entry["hash"] = entry_hash(entry)
        prev = entry["hash"]
    project.gov.audit_log.write_text("".join(json.dumps(e) + "\n" for e in entries))
    project.client.set_registered_model_tag(MODEL, "harmcast.audit_head", prev)


def test_governed_project_verifies(project):
    version = governed_version(project)
    report = verify_ledger(project.gov, (MODEL,))
    assert report.ok, report.problems
    records = decisions_for(project.root, MODEL, version)
    assert [(r.member, r.decision) for r in records] == [
        ("r.adeyemi", "approve"),
        ("t.hughes", "approve"),
    ]
    assert all(len(r.key_fingerprint) == 16 and r.key_type == "ed25519" for r in records)


def test_rewritten_and_rehashed_approval_is_caught(project):
    """Attack: rewrite an approval's actor and rationale, re-hash, set audit_head."""
    version = governed_version(project)

    def edit(entry):
        if entry["action"] == "approve" and entry["actor"] == "t.hughes":
            entry["actor"] = "m.siddiqui"
            entry["details"]["rationale"] = "never said this"

    _rewrite(project, edit)
    report = verify_ledger(project.gov, (MODEL,))
    assert not report.ok
    assert any("the entry says action" in p or "says actor='m.siddiqui'" in p
               for p in report.problems), report.problems  # fmt: skip
    with pytest.raises(NotApproved, match="audit log does not verify"):
        check_servable(project.gov, MODEL, version)


def test_rewritten_signed_statement_fails_its_signature(project):
    version = governed_version(project)

    def edit(entry):
        if entry["action"] == "approve" and entry["actor"] == "t.hughes":
            envelope = entry["details"]["envelope"]
            statement = json.loads(base64.b64decode(envelope["payload"]))
            statement["rationale"] = entry["details"]["rationale"] = "rewritten"
            envelope["payload"] = base64.b64encode(canonical_json(statement)).decode()

    _rewrite(project, edit)
    report = verify_ledger(project.gov, (MODEL,))
    assert any("does not verify" in p for p in report.problems), report.problems
    with pytest.raises(NotApproved, match="does not verify"):
        check_servable(project.gov, MODEL, version)


def test_rewritten_system_entry_fails_its_system_signature(project):
    version = governed_version(project)
    path = project.gov.card_json(MODEL, version)
    path.write_text(path.read_text() + " ")

    def edit(entry):
        if entry["action"] == "publish":
            entry["details"]["card_sha256"] = sha256_file(path)

    _rewrite(project, edit)
    report = verify_ledger(project.gov, (MODEL,))
    assert any("publish entry's system signature does not verify" in p for p in report.problems)
    with pytest.raises(NotApproved, match="system signature does not verify"):
        check_servable(project.gov, MODEL, version)


def test_registry_tags_and_cards_that_disagree_with_the_log_are_reported(project):
    version = governed_version(project)
    path = project.gov.card_json(MODEL, version)
    path.write_text(path.read_text().replace("published", "published "))
    project.client.set_model_version_tag(MODEL, version, "harmcast.card_sha256", "c" * 64)
    pending = governed_version(project, seed=1)
    project.client.set_model_version_tag(MODEL, pending, "harmcast.approval_status", "rejected")
    problems = verify_ledger(project.gov, (MODEL,)).problems
    assert any(f"registry card hash {'c' * 64} differs" in p for p in problems), problems
    assert any("card on disk" in p and f"v{version}" in p for p in problems), problems
    assert any("approval_status='rejected'" in p for p in problems), problems


def test_cli_verify_reports_each_problem(project):
    from typer.testing import CliRunner

    from harmcast.cli import app

    governed_version(project)
    runner = CliRunner()
    ok = runner.invoke(app, ["review", "verify", "--root", str(project.root)])
    assert ok.exit_code == 0, ok.output
    _rewrite(project, lambda e: e["details"].update(rationale="edited")
             if e["action"] == "approve" else None)  # fmt: skip
    bad = runner.invoke(app, ["review", "verify", "--root", str(project.root)])
    assert bad.exit_code == 1
    said = " ".join(bad.output.split())
    # Both approvals, and the publish entry after them: re-hashing changed the hash it signs.
    assert said.count("rationale='edited'") == 2 and said.count("tampered:") == 3
    assert "publish entry's system signature does not verify" in said
