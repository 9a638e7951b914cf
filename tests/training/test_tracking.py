import json
import shutil

import mlflow
import numpy as np
import pandas as pd
import pytest
from mlflow import MlflowClient

from training.config import ModelParams, Params, Paths, tracking_uri
from training.model import Forecaster, fit_forecaster
from training.tracking import (
    code_version,
    log_backtest,
    log_final_model,
    pip_requirements,
    sha256_file,
)

COLUMNS = ["violence_lag1", "violence_mean4", "imd_decile", "horizon"]


def tiny_features(n: int = 800, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "violence_lag1": rng.poisson(2, n).astype(float),
            "violence_mean4": rng.gamma(2, 1, n),
            "imd_decile": rng.integers(1, 11, n).astype(float),
            "horizon": rng.integers(1, 5, n).astype(float),
        }
    )
    frame["y"] = rng.poisson(0.5 + 0.5 * frame["violence_mean4"]).astype(float)
    return frame


@pytest.fixture(scope="module")
def empty_store(tmp_path_factory):
    """A migrated empty MLflow database: creating the schema takes seconds, copying it not."""
    store = tmp_path_factory.mktemp("store")
    MlflowClient(f"sqlite:///{store / 'mlflow.db'}").search_experiments()
    return store / "mlflow.db"


def make_params(tmp_path, empty_store) -> Params:
    (tmp_path / "mlruns").mkdir()
    shutil.copyfile(empty_store, tmp_path / "mlruns" / "mlflow.db")
    return Params(
        model=ModelParams(num_boost_round=20, num_leaves=7, min_data_in_leaf=10),
        paths=Paths(root=tmp_path),
    )


def test_backtest_and_final_model_share_one_run_and_round_trip(tmp_path, empty_store):
    params = make_params(tmp_path, empty_store)
    backtest_dir = tmp_path / "data" / "06_backtest"
    (backtest_dir / "plots").mkdir(parents=True)
    (backtest_dir / "results.json").write_text("{}")
    (backtest_dir / "table.md").write_text("# table")
    (backtest_dir / "plots" / "pai_by_coverage.png").write_bytes(b"png")
    report = tmp_path / "linkage_report.json"
    report.write_text(json.dumps({"police": {"match_rate": 1.0}}))
    panel_file = tmp_path / "panel.parquet"
    pd.DataFrame({"a": [1, 2]}).to_parquet(panel_file)
    summary = {"headline": {"h1.model.poisson_deviance": 0.9, "h1.oracle_capture.pai": np.nan}}
    run_id = log_backtest(
        params, summary, backtest_dir, data_file=panel_file, linkage_report=report
    )

    features = tiny_features()
    forecaster = fit_forecaster(features, COLUMNS, params.model)
    models = tmp_path / "data" / "05_models"
    forecaster.save(models)
    meta = log_final_model(forecaster, params, features, models, run_id=run_id,
                           data_file=panel_file)  # fmt: skip

    assert meta["run_id"] == run_id
    assert json.loads((models / "model_meta.json").read_text())["model_uri"] == meta["model_uri"]
    client = MlflowClient(tracking_uri(params))
    run = client.get_run(run_id)
    assert run.data.metrics["h1.model.poisson_deviance"] == 0.9
    assert "h1.oracle_capture.pai" not in run.data.metrics
    assert run.data.metrics["model.dispersion"] == forecaster.dispersion
    assert run.data.params["model.num_boost_round"] == "20"
    assert run.data.tags["harmcast.data_sha256"] == sha256_file(panel_file)
    assert run.data.tags["harmcast.code_version"] == code_version(tmp_path)
    assert run.data.tags["harmcast.stage"] == "candidate"
    artifacts = {a.path for a in client.list_artifacts(run_id)}
    assert {"backtest", "linkage_report.json", "model_meta.json"} <= artifacts
    plots = {a.path for a in client.list_artifacts(run_id, "backtest/plots")}
    assert plots == {"backtest/plots/pai_by_coverage.png"}
    experiment = client.get_experiment(run.info.experiment_id)
    assert experiment.artifact_location.endswith("mlruns/artifacts")

    mlflow.set_tracking_uri(tracking_uri(params))
    booster = mlflow.lightgbm.load_model(meta["model_uri"])
    rebuilt = Forecaster.from_booster(booster, meta["dispersion"])
    pd.testing.assert_frame_equal(rebuilt.predict(features), forecaster.predict(features))
    info = mlflow.models.get_model_info(meta["model_uri"])
    assert info.metadata["dispersion"] == forecaster.dispersion
    assert [c.name for c in info.signature.inputs] == COLUMNS
    assert any(r.startswith("lightgbm==") for r in pip_requirements())


def test_train_without_backtest_opens_its_own_run(tmp_path, empty_store):
    params = make_params(tmp_path, empty_store)
    features = tiny_features(seed=1)
    forecaster = fit_forecaster(features, COLUMNS, params.model)
    models = tmp_path / "models"
    forecaster.save(models)
    meta = log_final_model(forecaster, params, features, models)
    run = MlflowClient(tracking_uri(params)).get_run(meta["run_id"])
    assert run.info.run_name == "train"
    assert "harmcast.data_sha256" not in run.data.tags
    assert Forecaster.load(models).dispersion == forecaster.dispersion
