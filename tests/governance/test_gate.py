import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest

from governance.evidence import sha256_bytes, sha256_file
from governance.explain import FoldModel, shap_audit
from governance.fairness import fairness_audit
from governance.gate import GateInputs, read_gate_report, run_gate, write_gate_report
from governance.recording import STANDARDISED_AWAY
from tests.governance import gate_fixtures as gf
from training.errors import SchemaError


@pytest.fixture(autouse=True)
def _restore_mlflow_uris():
    # these tests point MLflow at their own sqlite stores; leave no trace for others
    import mlflow

    before = mlflow.get_tracking_uri()
    yield
    mlflow.set_tracking_uri(before)


def _inputs(inflate: dict[str, float] | None = None) -> GateInputs:
    areas = gf.areas()
    features = gf.feature_frame(areas, weeks=40)
    weeks = sorted(features["origin_week"].unique())
    booster = gf.train(features[features["origin_week"] < weeks[20]])
    folds = [
        FoldModel(fold=k, booster=gf.train(features[features["origin_week"] < weeks[w]], seed=k))
        for k, w in enumerate((14, 17, 20))
    ]
    test = features[features["origin_week"] >= weeks[20]]
    predictions = gf.predictions_from(booster, test)
    if inflate:
        band = test["area_code"].map(areas.set_index("area_code")["audit_ethnic_band"])
        predictions["mu"] = predictions["mu"] * band.map(inflate).fillna(1.0).to_numpy()
    return GateInputs(
        predictions=predictions,
        areas=areas,
        booster=booster,
        feature_names=gf.FEATURES,
        features=features,
        folds=folds,
        run_id="r" * 32,
        model_uri="models:/m-abc",
    )


def _policy():
    # small groups make single weeks noisy: judge fairness on the bootstrap interval
    policy = gf.policy(gate_on="ci")
    return policy.model_copy(update={"shap": policy.shap.model_copy(update={"sample_rows": 300})})


def test_fair_candidate_passes_and_report_round_trips(tmp_path):
    policy = _policy()
    report = run_gate(
        _inputs(), policy, tracking_uri=None, model_name="harmcast-violence", out_dir=tmp_path
    )
    assert report.failed() == []
    assert report.passed
    assert report.policy_sha256 == policy.sha256 and len(report.policy_sha256) == 64
    assert {c.category for c in report.checks} == {"fairness", "shap", "champion"}
    assert report.champion["status"] == "skipped"
    written = write_gate_report(report, tmp_path)
    assert {p.name for p in written} == {
        "gate_report.json",
        "fairness.json",
        "shap.json",
        "gate_report.html",
    }
    html = (tmp_path / "gate_report.html").read_text()
    assert policy.sha256 in html and "data:image/png;base64," in html
    assert html.count("data:image/png;base64,") == 2
    again = read_gate_report(tmp_path)
    assert again == report
    payload = json.loads((tmp_path / "gate_report.json").read_text())
    assert payload["shap"]["top_features"][0]["feature"].startswith("violence_")
    assert {"ratios", "groups", "references"} <= set(payload["fairness"])


def test_side_by_side_audits_report_what_each_finds_alone(tmp_path):
    inputs, policy = _inputs(inflate={"B": 1.6}), _policy()
    report = run_gate(inputs, policy, tracking_uri=None, model_name="m", out_dir=tmp_path)
    fair = fairness_audit(inputs.predictions, inputs.areas, policy.fairness)
    expl = shap_audit(
        inputs.booster, inputs.feature_names, inputs.features, policy.shap, folds=inputs.folds
    )
    alone = [*fair.checks, *expl.checks]
    gate_only = {"champion", "shap.sensitive_content"}
    assert [c for c in report.checks if gate_only.isdisjoint({c.category, c.name})] == alone
    assert report.shap["stability"] == expl.stability


def test_an_audit_that_fails_stops_the_gate_with_its_error(tmp_path):
    inputs = _inputs()
    broken = inputs.predictions.drop(columns="y_ae")
    with pytest.raises(SchemaError, match="y_ae|columns"):
        run_gate(
            dataclasses.replace(inputs, predictions=broken),
            _policy(),
            tracking_uri=None,
            model_name="m",
            out_dir=tmp_path,
        )


def test_unfair_candidate_fails_the_gate(tmp_path):
    report = run_gate(
        _inputs(inflate={"B": 1.6}),
        _policy(),
        tracking_uri=None,
        model_name="harmcast-violence",
        out_dir=tmp_path,
    )
    assert not report.passed
    assert "fairness.calibration_ratio.ethnic_band.B" in report.failed()
    assert all(name.startswith("fairness.") for name in report.failed())
    html_path = write_gate_report(report, tmp_path)[-1]
    assert "FAILED" in html_path.read_text()


@pytest.mark.slow
def test_gate_against_a_registered_champion(tmp_path):
    import mlflow

    inputs = _inputs()
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    mlflow.set_tracking_uri(uri)
    mlflow.set_experiment("harmcast")
    with mlflow.start_run() as run:
        info = mlflow.lightgbm.log_model(
            inputs.booster, name="model", pip_requirements=["lightgbm"]
        )
    client = mlflow.MlflowClient(tracking_uri=uri, registry_uri=uri)
    client.create_registered_model("harmcast-violence")
    version = client.create_model_version(
        "harmcast-violence", info.model_uri, run_id=run.info.run_id, model_id=info.model_id
    )
    client.set_registered_model_alias("harmcast-violence", "production", version.version)
    report = run_gate(
        inputs,
        _policy(),
        tracking_uri=uri,
        model_name="harmcast-violence",
        out_dir=tmp_path / "audit",
    )
    assert report.champion["status"] == "compared"
    assert report.champion["production_version"] == str(version.version)
    champion_checks = [c for c in report.checks if c.category == "champion"]
    assert champion_checks and all(c.passed for c in champion_checks)
    assert report.passed


@pytest.mark.slow
def test_audit_command_writes_logs_tags_and_exits_on_failure(tmp_path):
    import mlflow
    from typer.testing import CliRunner

    from harmcast.cli import app

    inputs = _inputs(inflate={"B": 1.6})
    uri, run_id = gf.write_audit_layers(tmp_path, inputs)
    run = mlflow.get_run(run_id)
    result = CliRunner().invoke(app, ["audit", "--root", str(tmp_path)])
    assert result.exit_code == 1, result.output
    assert "fairness.calibration_ratio.ethnic_band.B" in result.output
    report = read_gate_report(tmp_path / "data" / "07_audit")
    assert not report.passed and report.run_id == run.info.run_id
    client = mlflow.MlflowClient(tracking_uri=uri)
    assert client.get_run(run.info.run_id).data.tags["harmcast.gate"] == "failed"
    logged = {f.path for f in client.list_artifacts(run.info.run_id, "audit")}
    assert {"audit/gate_report.json", "audit/gate_report.html", "audit/plots"} <= logged
    # The evidence registration reads: the report's exact bytes and their hash.
    on_disk = (tmp_path / "data" / "07_audit" / "gate_report.json").read_bytes()
    tags = client.get_run(run.info.run_id).data.tags
    assert tags["harmcast.gate_report_sha256"] == sha256_bytes(on_disk)
    local = client.download_artifacts(run.info.run_id, "gate/gate_report.json", str(tmp_path))
    assert Path(local).read_bytes() == on_disk
    subject = report.subject
    assert subject.run_id == run.info.run_id and subject.policy_sha256 == report.policy_sha256
    assert subject.model_sha256 == sha256_file(tmp_path / "data/05_models/model.lgb")
    assert subject.predictions_sha256 == sha256_file(
        tmp_path / "data/06_backtest/predictions.parquet"
    )
    assert subject.features_sha256 == sha256_file(tmp_path / "data/04_features/features.parquet")


def test_audit_refuses_a_backtest_of_other_features(tmp_path):
    # Retrained on changed data without a new backtest: the forecasts on disk are
    # an earlier model's, so auditing them would say nothing of this candidate.
    from typer.testing import CliRunner

    from governance.gate_inputs import STALE_BACKTEST
    from harmcast.cli import app

    gf.write_audit_layers(tmp_path, _inputs(), backtest_features_sha256="0" * 64)
    result = CliRunner().invoke(app, ["audit", "--root", str(tmp_path)])
    assert result.exit_code == 1
    assert "Traceback" not in result.output
    text = " ".join(result.output.split())
    assert "field 'summary.inputs.features_sha256'" in text
    assert STALE_BACKTEST.split("(")[0].strip() in text
    assert not (tmp_path / "data" / "07_audit" / "gate_report.json").exists()


def test_audit_refuses_features_changed_since_training(tmp_path):
    from governance.gate_inputs import load_gate_inputs
    from training.config import load_params

    inputs = _inputs()
    gf.write_audit_layers(tmp_path, inputs)
    features = tmp_path / "data/04_features/features.parquet"
    inputs.features.assign(imd_decile=inputs.features["imd_decile"] + 1).to_parquet(features)
    with pytest.raises(SchemaError, match="inputs.features_sha256"):
        load_gate_inputs(tmp_path, load_params(root=tmp_path))


def test_audit_refuses_predictions_replaced_after_the_backtest(tmp_path):
    from governance.gate_inputs import load_gate_inputs
    from training.config import load_params

    inputs = _inputs()
    gf.write_audit_layers(tmp_path, inputs)
    path = tmp_path / "data/06_backtest/predictions.parquet"
    inputs.predictions.assign(mu=inputs.predictions["mu"] * 0.9).to_parquet(path)
    with pytest.raises(SchemaError, match="is not the .* the backtest recorded"):
        load_gate_inputs(tmp_path, load_params(root=tmp_path))


def test_renamed_audit_column_among_the_features_fails_the_gate(tmp_path):
    inputs = _inputs()
    areas = inputs.areas.assign(
        audit_share_black=np.random.default_rng(2).uniform(0, 0.6, len(inputs.areas)).round(4)
    )
    share = inputs.features["area_code"].map(areas.set_index("area_code")["audit_share_black"])
    features = inputs.features.assign(share_black=share.astype("float32"))
    names = [*gf.FEATURES, "share_black"]
    candidate = dataclasses.replace(
        inputs, areas=areas, features=features, feature_names=names,
        booster=gf.train(features, names), folds=[],
    )  # fmt: skip
    report = run_gate(candidate, _policy(), tracking_uri=None, model_name="m", out_dir=tmp_path)
    assert not report.passed
    assert "shap.sensitive_content" in report.failed()


def test_differential_recording_fails_the_gate(tmp_path):
    # Either direction, on a synthetic city, is tested in test_recording.py.
    inputs = _inputs()
    panel = gf.panel_from(inputs.predictions, inputs.areas, police_bias={"B": 0.5})
    candidate = dataclasses.replace(inputs, panel=panel, folds=[])
    report = run_gate(candidate, _policy(), tracking_uri=None, model_name="m", out_dir=tmp_path)
    assert not report.passed
    assert "fairness.recording_ratio.ethnic_band.B" in report.failed()
    recorded = {(r["grouping"], r["group"]): r for r in report.fairness["recording"]}
    assert recorded[("ethnic_band", "B")]["direction"] == "under-recorded"
    assert report.fairness["recording_skipped"] == {"imd_quintile": STANDARDISED_AWAY}
