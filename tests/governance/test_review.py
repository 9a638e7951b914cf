import json

import pytest
from mlflow import MlflowClient
from mlflow_helpers import MODEL_NAME, gate_report, log_audit, log_candidate, policy, tracking_uri

from governance.auditlog import read_log
from governance.registry import TAG_AUDIT_HEAD, register_candidate
from governance.review import (
    ALREADY_REJECTED,
    DUPLICATE_REVIEWER,
    NO_PREVIOUS,
    NO_RATIONALE,
    NOT_GATE_PASSED,
    approve,
    list_versions,
    reject,
    rollback,
    show_version,
    verify_log,
)
from training.errors import ReviewError


@pytest.fixture()
def registry(tmp_path):
    """A registry with three gate-passed pending versions of the model."""
    uri, pol = tracking_uri(tmp_path), policy()
    for seed in range(3):
        run_id, model_uri = log_candidate(uri, seed=seed)
        log_audit(run_id, gate_report(run_id, model_uri, pol.sha256))
        register_candidate(
            run_id=run_id,
            model_uri=model_uri,
            model_name=MODEL_NAME,
            policy=pol,
            data_sha256="d" * 64,
            code_version="abc",
            backtest_metrics={},
            tracking_uri=uri,
            audit_log=tmp_path / "audit.jsonl",
        )
    return {"uri": uri, "policy": pol, "log": tmp_path / "audit.jsonl"}


def _kw(reg):
    return {
        "model_name": MODEL_NAME,
        "policy": reg["policy"],
        "tracking_uri": reg["uri"],
        "audit_log": reg["log"],
    }


def _approve(reg, version, reviewer):
    return approve(
        version=version, reviewer=reviewer, rationale=f"{reviewer} read the card", **_kw(reg)
    )


def _client(reg):
    return MlflowClient(tracking_uri=reg["uri"], registry_uri=reg["uri"])


def test_quorum_needs_two_distinct_reviewers(registry):
    first = _approve(registry, 1, "r.adeyemi")
    assert first.status == "pending" and first.production is None
    with pytest.raises(ReviewError) as info:
        _approve(registry, 1, "r.adeyemi")
    assert str(info.value) == DUPLICATE_REVIEWER.format(reviewer="r.adeyemi", version="1")
    assert (
        show_version(model_name=MODEL_NAME, version=1, tracking_uri=registry["uri"]).status
        == "pending"
    )
    second = _approve(registry, 1, "t.hughes")
    assert second.status == "approved" and second.production == "1" and second.previous is None
    tags = _client(registry).get_model_version(MODEL_NAME, "1").tags
    assert tags["harmcast.reviewers"] == "r.adeyemi,t.hughes"
    approvals = json.loads(tags["harmcast.approvals"])
    assert [a["reviewer"] for a in approvals] == ["r.adeyemi", "t.hughes"]
    assert approvals[1]["rationale"] == "t.hughes read the card"
    assert tags["harmcast.decided_at"]


def test_new_approval_moves_production_and_previous_then_rollback(registry):
    _approve(registry, 1, "r.adeyemi")
    _approve(registry, 1, "t.hughes")
    _approve(registry, 2, "m.siddiqui")
    outcome = _approve(registry, 2, "j.okafor")
    assert (outcome.production, outcome.previous) == ("2", "1")
    back = rollback(reviewer="r.adeyemi", rationale="drift in week 12", **_kw(registry))
    assert back.production == "1" and back.previous is None
    client = _client(registry)
    assert str(client.get_model_version_by_alias(MODEL_NAME, "production").version) == "1"
    assert "harmcast.rolled_back_at" in client.get_model_version(MODEL_NAME, "2").tags
    entry = read_log(registry["log"])[-1]
    assert entry["action"] == "rollback" and entry["details"]["from"] == "2"
    with pytest.raises(ReviewError, match="no 'previous' version"):
        rollback(reviewer="r.adeyemi", rationale="again", **_kw(registry))
    assert NO_PREVIOUS.format(model=MODEL_NAME).endswith("to roll back to")


def test_off_roster_and_empty_rationale_refused(registry):
    with pytest.raises(ReviewError, match="not on the board roster"):
        _approve(registry, 1, "intruder")
    with pytest.raises(ReviewError) as info:
        approve(version=1, reviewer="t.hughes", rationale="  ", **_kw(registry))
    assert str(info.value) == NO_RATIONALE
    with pytest.raises(ReviewError, match="not on the board roster"):
        rollback(reviewer="intruder", rationale="x", **_kw(registry))
    assert (
        json.loads(_client(registry).get_model_version(MODEL_NAME, "1").tags["harmcast.approvals"])
        == []
    )


def test_non_gate_passed_version_cannot_be_approved(registry):
    client = _client(registry)
    client.set_model_version_tag(MODEL_NAME, "3", "harmcast.gate", "failed")
    with pytest.raises(ReviewError) as info:
        _approve(registry, 3, "r.adeyemi")
    assert str(info.value) == NOT_GATE_PASSED.format(model=MODEL_NAME, version="3", gate="failed")


def test_rejection_is_final(registry):
    out = reject(version=2, reviewer="m.siddiqui", rationale="proxy risk", **_kw(registry))
    assert out.status == "rejected"
    with pytest.raises(ReviewError) as info:
        _approve(registry, 2, "r.adeyemi")
    assert str(info.value) == ALREADY_REJECTED.format(model=MODEL_NAME, version="2")
    statuses = {
        s.version: s.status
        for s in list_versions(model_name=MODEL_NAME, tracking_uri=registry["uri"])
    }
    assert statuses == {"3": "pending", "2": "rejected", "1": "pending"}


def test_verify_uses_the_registry_head(registry):
    _approve(registry, 1, "r.adeyemi")
    kwargs = {"tracking_uri": registry["uri"], "model_names": (MODEL_NAME,)}
    assert verify_log(registry["log"], **kwargs).ok
    head = _client(registry).get_registered_model(MODEL_NAME).tags[TAG_AUDIT_HEAD]
    assert head == read_log(registry["log"])[-1]["hash"]
    lines = registry["log"].read_text().splitlines()
    registry["log"].write_text("\n".join(lines[:-1]) + "\n")
    result = verify_log(registry["log"], **kwargs)
    assert not result.ok and result.first_bad == len(lines)
