import json

import pytest
from mlflow import MlflowClient
from mlflow_helpers import (
    MODEL_NAME,
    gate_report,
    log_audit,
    log_candidate,
    policy,
    tracking_uri,
    write_reports,
)

from governance.auditlog import read_log, verify_log
from governance.registry import (
    POLICY_MISMATCH,
    RUN_MISMATCH,
    SUBJECT_RUN,
    TAG_AUDIT_HEAD,
    register_candidate,
)
from training.errors import GateFailed


def _register(tmp_path, report, run_id, model_uri, pol):
    # As `harmcast audit` does, the report is logged to the run first.
    log_audit(run_id, report if isinstance(report, dict) else json.loads(report.read_text()))
    return register_candidate(
        run_id=run_id,
        model_uri=model_uri,
        gate_report=report,
        model_name=MODEL_NAME,
        policy=pol,
        data_sha256="d" * 64,
        code_version="abc123",
        backtest_metrics={"poisson_deviance": 0.91, "pai_area_10": 3.2},
        tracking_uri=tracking_uri(tmp_path),
        audit_log=tmp_path / "audit.jsonl",
    )


def test_passed_gate_registers_with_tags_and_artifacts(tmp_path):
    uri, pol = tracking_uri(tmp_path), policy()
    run_id, model_uri = log_candidate(uri)
    report_path = tmp_path / "gate_report.json"
    report_path.write_text(json.dumps(gate_report(run_id, model_uri, pol.sha256)))
    mv = _register(tmp_path, report_path, run_id, model_uri, pol)
    assert str(mv.version) == "1" and mv.run_id == run_id
    assert mv.tags["harmcast.gate"] == "passed"
    assert mv.tags["harmcast.approval_status"] == "pending"
    assert mv.tags["harmcast.policy_sha256"] == pol.sha256
    assert mv.tags["harmcast.data_sha256"] == "d" * 64
    assert mv.tags["harmcast.code_version"] == "abc123"
    assert float(mv.tags["harmcast.metric.poisson_deviance"]) == 0.91
    assert float(mv.tags["harmcast.metric.pai_area_10"]) == 3.2
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    assert client.get_run(run_id).data.tags["harmcast.gate"] == "passed"
    assert "gate/gate_report.json" in [a.path for a in client.list_artifacts(run_id, "gate")]
    assert (
        mv.tags["harmcast.gate_report_sha256"]
        == client.get_run(run_id).data.tags["harmcast.gate_report_sha256"]
    )
    assert len(mv.tags["harmcast.model_sha256"]) == 64
    entries = read_log(tmp_path / "audit.jsonl")
    assert [e["action"] for e in entries] == ["register"]
    assert client.get_registered_model(MODEL_NAME).tags[TAG_AUDIT_HEAD] == entries[-1]["hash"]
    assert verify_log(tmp_path / "audit.jsonl").ok


def test_failed_gate_registers_nothing_and_tags_run(tmp_path):
    uri, pol = tracking_uri(tmp_path), policy()
    run_id, model_uri = log_candidate(uri)
    report = gate_report(run_id, model_uri, pol.sha256, passed=False)
    with pytest.raises(GateFailed) as info:
        _register(tmp_path, report, run_id, model_uri, pol)
    assert len(info.value.failed) == 1
    assert info.value.failed[0].startswith("fpr_top_k:ethnic_band:B (fairness) value=1.6")
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    assert client.search_model_versions(f"name = '{MODEL_NAME}'") == []
    assert client.get_run(run_id).data.tags["harmcast.gate"] == "failed"
    assert [e["action"] for e in read_log(tmp_path / "audit.jsonl")] == ["gate_failed"]


def test_report_for_another_run_or_policy_is_refused(tmp_path):
    uri, pol = tracking_uri(tmp_path), policy()
    run_id, model_uri = log_candidate(uri)
    report = gate_report("another-run", model_uri, "f" * 64)
    with pytest.raises(GateFailed) as info:
        _register(tmp_path, report, run_id, model_uri, pol)
    assert info.value.failed == [
        SUBJECT_RUN.format(subject="another-run", run=run_id),
        RUN_MISMATCH.format(report="another-run", run=run_id),
        POLICY_MISMATCH.format(report="f" * 64, policy=pol.sha256),
    ]
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    assert client.search_model_versions(f"name = '{MODEL_NAME}'") == []


def _cli_project(tmp_path, *, passed):
    from mlflow_helpers import write_reports

    pol = policy()
    (tmp_path / "mlruns").mkdir()
    uri = tracking_uri(tmp_path / "mlruns")
    run_id, model_uri = log_candidate(uri)
    paths = write_reports(tmp_path, run_id, model_uri, pol.sha256)
    report = gate_report(run_id, model_uri, pol.sha256, passed=passed)
    paths["gate"].write_text(json.dumps(report))
    log_audit(run_id, report)
    return uri


def test_cli_register_fails_naming_each_check(tmp_path):
    from typer.testing import CliRunner

    from harmcast.cli import app

    uri = _cli_project(tmp_path, passed=False)
    result = CliRunner().invoke(app, ["register", "--root", str(tmp_path)])
    assert result.exit_code == 1
    assert "failed: fpr_top_k:ethnic_band:B (fairness) value=1.6" in result.output
    assert "Traceback" not in result.output
    assert MlflowClient(uri).search_model_versions(f"name = '{MODEL_NAME}'") == []


def test_cli_register_then_review(tmp_path):
    """register, draft card, two members' signed approvals, published card, verify."""
    from typer.testing import CliRunner

    from governance.signing import write_private_key
    from harmcast.cli import app
    from tests.governance.board_helpers import seal_board
    from tests.governance.governed import log_gate_report, model_sha

    (tmp_path / "mlruns").mkdir()
    uri = tracking_uri(tmp_path / "mlruns")
    keys, chain = seal_board(tmp_path, tracking_uri=uri, model_name=MODEL_NAME)
    run_id, model_uri = log_candidate(uri)
    write_reports(tmp_path, run_id, model_uri, chain.head.sha256)
    report = gate_report(run_id, model_uri, chain.head.sha256)
    report["subject"] = {"run_id": run_id, "model_sha256": model_sha(uri, model_uri),
                         "policy_sha256": chain.head.sha256, "predictions_sha256": "p" * 64,
                         "features_sha256": "f" * 64}  # fmt: skip
    # What `harmcast audit` leaves: the report on disk and logged to the run, its hash tagged.
    (tmp_path / "data/07_audit/gate_report.json").write_text(json.dumps(report, indent=2))
    digest = log_gate_report(uri, run_id, report)
    MlflowClient(uri).set_tag(run_id, "harmcast.gate_report_sha256", digest)
    runner = CliRunner()
    root = ["--root", str(tmp_path)]
    assert runner.invoke(app, ["register", *root]).exit_code == 0
    assert runner.invoke(app, ["card", "--version", "1", *root]).exit_code == 0
    for who in ("r.adeyemi", "t.hughes"):
        key = write_private_key(keys[who], tmp_path / f"{who}.key")
        out = runner.invoke(app, ["review", "approve", "--version", "1", "--member", who,
                                  "--key", str(key), "--rationale", "ok", *root])  # fmt: skip
        assert out.exit_code == 0, out.output
    assert "approved" in runner.invoke(app, ["review", "list", *root]).output
    refused = runner.invoke(app, ["review", "approve", "--version", "1", "--member", "x",
                                  "--key", str(key), "--rationale", "ok", *root])  # fmt: skip
    assert refused.exit_code == 1 and "not on the board roster" in refused.output
    published = runner.invoke(app, ["card", "--version", "1", *root])
    assert published.exit_code == 0 and "published" in published.output
    verified = runner.invoke(app, ["review", "verify", *root])
    assert verified.exit_code == 0, verified.output
    assert "servable" in verified.output
    client = MlflowClient(uri, registry_uri=uri)
    assert str(client.get_model_version_by_alias(MODEL_NAME, "production").version) == "1"
