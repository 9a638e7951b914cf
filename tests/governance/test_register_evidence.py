"""Registration reads the gate report the audit logged, and leaves nothing half-made."""

import json

import mlflow
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
from typer.testing import CliRunner

from governance.gate_record import GATE_REPORT_ARTIFACT, NOT_AUDITED, TAG_GATE_REPORT
from governance.registry import (
    LOCAL_COPY_EDITED,
    SUBJECT_MODEL,
    RegistrationFailed,
    register_candidate,
)
from harmcast.cli import app
from training.errors import GateFailed


def _register(tmp_path, run_id, model_uri, **extra):
    kwargs = dict(
        run_id=run_id, model_uri=model_uri, model_name=MODEL_NAME, policy=policy(),
        data_sha256="d" * 64, code_version="abc", backtest_metrics={},
        tracking_uri=tracking_uri(tmp_path), audit_log=tmp_path / "audit.jsonl",
    )  # fmt: skip
    return register_candidate(**{**kwargs, **extra})


def _versions(uri):
    return MlflowClient(uri, registry_uri=uri).search_model_versions(f"name = '{MODEL_NAME}'")


def test_unaudited_run_is_refused(tmp_path):
    uri = tracking_uri(tmp_path)
    run_id, model_uri = log_candidate(uri)
    with pytest.raises(GateFailed) as info:
        _register(tmp_path, run_id, model_uri)
    assert info.value.failed == [
        NOT_AUDITED.format(run=run_id, artifact=GATE_REPORT_ARTIFACT, tag=TAG_GATE_REPORT)
    ]
    assert _versions(uri) == []


def test_logged_report_rewritten_after_audit_is_refused(tmp_path):
    uri, pol = tracking_uri(tmp_path), policy()
    run_id, model_uri = log_candidate(uri)
    log_audit(run_id, gate_report(run_id, model_uri, pol.sha256, passed=False))
    client = MlflowClient(uri)
    expected = client.get_run(run_id).data.tags[TAG_GATE_REPORT]
    # Overwrite the artefact with a passing report, keeping the audit's hash tag.
    forged = tmp_path / "gate_report.json"
    forged.write_text(json.dumps(gate_report(run_id, model_uri, pol.sha256)))
    client.log_artifact(run_id, str(forged), "gate")
    client.set_tag(run_id, TAG_GATE_REPORT, expected)
    with pytest.raises(GateFailed) as info:
        _register(tmp_path, run_id, model_uri)
    assert "the audit tagged " + expected in info.value.failed[0]
    assert _versions(uri) == []


def test_report_on_another_model_is_refused(tmp_path):
    uri, pol = tracking_uri(tmp_path), policy()
    run_id, model_uri = log_candidate(uri, seed=0)
    _, other_uri = log_candidate(uri, seed=1)
    report = gate_report(run_id, model_uri, pol.sha256)
    audited = report["subject"]["model_sha256"]
    log_audit(run_id, report)
    with pytest.raises(GateFailed) as info:
        _register(tmp_path, run_id, other_uri)
    assert any(
        f.startswith(SUBJECT_MODEL.split("{")[0]) and audited in f for f in info.value.failed
    )
    assert _versions(uri) == []


def test_registry_refusal_leaves_no_empty_model_and_no_passed_tag(tmp_path):
    uri, pol = tracking_uri(tmp_path), policy()
    run_id, model_uri = log_candidate(uri)
    log_audit(run_id, gate_report(run_id, model_uri, pol.sha256))
    with pytest.raises(RegistrationFailed):
        # A tag key longer than the registry accepts makes the version fail.
        _register(tmp_path, run_id, model_uri, backtest_metrics={"x" * 300: 1.0})
    client = MlflowClient(uri, registry_uri=uri)
    assert client.search_registered_models() == []
    assert client.get_run(run_id).data.tags.get("harmcast.gate") != "passed"


def _project(tmp_path, *, passed):
    pol = policy()
    (tmp_path / "mlruns").mkdir()
    uri = tracking_uri(tmp_path / "mlruns")
    run_id, model_uri = log_candidate(uri)
    paths = write_reports(tmp_path, run_id, model_uri, pol.sha256)
    report = gate_report(run_id, model_uri, pol.sha256, passed=passed)
    paths["gate"].write_text(json.dumps(report))
    log_audit(run_id, report)
    return uri, paths["gate"]


def test_cli_refuses_a_gate_report_edited_on_disk(tmp_path):
    uri, gate_file = _project(tmp_path, passed=False)
    edited = json.loads(gate_file.read_text())
    edited["passed"] = True
    for check in edited["checks"]:
        check["passed"] = True
    gate_file.write_text(json.dumps(edited))
    result = CliRunner().invoke(app, ["register", "--root", str(tmp_path)])
    assert result.exit_code == 1
    assert "Traceback" not in result.output
    run_id = json.loads((tmp_path / "data/05_models/model_meta.json").read_text())["run_id"]
    assert " ".join(LOCAL_COPY_EDITED.format(run=run_id).split()[:6]) in " ".join(
        result.output.split()
    )
    assert "fpr_top_k:ethnic_band:B (fairness) value=1.6" in result.output
    assert _versions(uri) == []


def test_cli_register_from_another_folder_and_list_shows_aliases(tmp_path, monkeypatch):
    root = tmp_path / "root"
    root.mkdir()
    uri, _ = _project(root, passed=True)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    # A fresh process: MLflow's process-wide URIs are unset (they default to the cwd).
    mlflow.set_tracking_uri(None)
    mlflow.set_registry_uri(None)
    runner = CliRunner()
    out = runner.invoke(app, ["register", "--root", str(root)])
    assert out.exit_code == 0, out.output
    # the alias alone (approval itself is signed: tests/governance/test_review.py)
    mlflow.MlflowClient(uri, uri).set_registered_model_alias(MODEL_NAME, "production", "1")
    listing = runner.invoke(app, ["review", "list", "--root", str(root)], terminal_width=200)
    assert listing.exit_code == 0, listing.output
    row = next(line for line in listing.output.splitlines() if "production" in line)
    assert row.replace("│", " ").split()[0] == "1"
    assert list(elsewhere.iterdir()) == []
    assert [str(v.version) for v in _versions(uri)] == ["1"]
