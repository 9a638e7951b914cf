import mlflow
import pytest

from governance.champion import compare_to_champion
from tests.governance import gate_fixtures as gf


@pytest.fixture(autouse=True)
def _restore_mlflow_uris():
    # these tests point MLflow at their own sqlite stores; leave no trace for others
    import mlflow

    before = mlflow.get_tracking_uri()
    yield
    mlflow.set_tracking_uri(before)


MODEL = "harmcast-violence"


@pytest.fixture(scope="module")
def setting(tmp_path_factory):
    root = tmp_path_factory.mktemp("champion")
    uri = f"sqlite:///{root}/mlflow.db"
    areas = gf.areas()
    features = gf.feature_frame(areas, weeks=16)
    weeks = sorted(features["origin_week"].unique())
    train, test = (
        features[features["origin_week"] < weeks[8]],
        features[features["origin_week"] >= weeks[8]],
    )
    booster = gf.train(train)
    before = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(uri)
    mlflow.set_experiment("harmcast")
    with mlflow.start_run() as run:
        info = mlflow.lightgbm.log_model(booster, name="model", pip_requirements=["lightgbm"])
    # an explicit client: the process-wide registry URI may point elsewhere
    client = mlflow.MlflowClient(tracking_uri=uri, registry_uri=uri)
    client.create_registered_model(MODEL)
    version = client.create_model_version(
        MODEL, info.model_uri, run_id=run.info.run_id, model_id=info.model_id
    )
    client.set_registered_model_alias(MODEL, "production", version.version)
    rows = gf.predictions_from(booster, test).merge(
        test[["area_code", "origin_week", *gf.FEATURES]]
    )
    table = gf.areas().set_index("area_code")
    rows["group"] = rows["area_code"].map(table["audit_ethnic_band"])
    yield uri, rows, version.version
    mlflow.set_tracking_uri(before)


def test_equal_candidate_passes(setting):
    uri, rows, version = setting
    result = compare_to_champion(rows, gf.policy().champion, tracking_uri=uri, model_name=MODEL)
    assert result.status == "compared" and result.production_version == str(version)
    assert result.passed
    assert {c.name for c in result.checks} == {
        "champion.poisson_deviance",
        "champion.pai_area_10",
        "champion.calibration_gap",
    }
    assert result.candidate["poisson_deviance"] == pytest.approx(
        result.champion["poisson_deviance"]
    )
    assert result.thresholds["poisson_deviance"] == pytest.approx(
        result.champion["poisson_deviance"] * 1.02
    )


def test_clearly_worse_candidate_fails(setting):
    uri, rows, _ = setting
    # a flat forecast: same total, no ranking of areas
    worse = rows.assign(mu=rows["mu"].mean())
    result = compare_to_champion(worse, gf.policy().champion, tracking_uri=uri, model_name=MODEL)
    failed = {c.name for c in result.checks if not c.passed}
    assert {"champion.poisson_deviance", "champion.pai_area_10"} <= failed
    assert not result.passed
    pai = next(c for c in result.checks if c.name == "champion.pai_area_10")
    assert pai.value < pai.lower
    assert "validation" in pai.detail.lower() or "threshold" in pai.detail.lower()


def test_better_candidate_passes(setting):
    uri, rows, _ = setting
    # shrinking the forecast toward the outcome is better on every metric
    better = rows.assign(mu=0.5 * rows["mu"] + 0.5 * rows["y"])
    result = compare_to_champion(better, gf.policy().champion, tracking_uri=uri, model_name=MODEL)
    assert result.passed
    assert result.candidate["poisson_deviance"] < result.champion["poisson_deviance"]


def test_no_champion_or_missing_features_does_not_fail(setting, tmp_path):
    _, rows, _ = setting
    empty = f"sqlite:///{tmp_path}/empty.db"
    result = compare_to_champion(rows, gf.policy().champion, tracking_uri=empty, model_name=MODEL)
    assert result.status == "no_champion" and result.passed
    uri = setting[0]
    result = compare_to_champion(
        rows.drop(columns="violence_mean4"),
        gf.policy().champion,
        tracking_uri=uri,
        model_name=MODEL,
    )
    assert result.status == "not_comparable" and result.passed
    assert "violence_mean4" in result.checks[0].detail
