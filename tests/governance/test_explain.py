import numpy as np
import pytest

from governance.explain import MISSING_FEATURE, FoldModel, shap_audit
from tests.governance import gate_fixtures as gf
from training.errors import SchemaError


@pytest.fixture(scope="module")
def features():
    return gf.feature_frame(gf.areas(), weeks=24)


@pytest.fixture(scope="module")
def booster(features):
    return gf.train(features)


def _check(audit, name):
    return next(c for c in audit.checks if c.name == name)


def _shap_policy(**update):
    return gf.policy().shap.model_copy(update={"sample_rows": 400, **update})


def test_fair_model_passes_and_values_add_up(features, booster):
    folds = [
        FoldModel(fold=k, booster=gf.train(features[features["origin_week"] >= w], seed=k))
        for k, w in enumerate(sorted(features["origin_week"].unique())[:3:2])
    ]
    audit = shap_audit(booster, gf.FEATURES, features, _shap_policy(), folds=folds)
    failed = [c.name for c in audit.checks if c.gated and not c.passed]
    assert failed == []
    additivity = _check(audit, "shap.additivity")
    assert additivity.value < 1e-6
    assert _check(audit, "shap.crosscheck").value < 1e-6
    assert _check(audit, "shap.rank_stability").gated
    assert audit.importance["feature"].iloc[0].startswith("violence_")
    assert audit.importance["share"].sum() == pytest.approx(1.0)
    assert audit.values.shape == (400, len(gf.FEATURES))


def test_additivity_reproduces_raw_prediction(features, booster):
    audit = shap_audit(booster, gf.FEATURES, features, _shap_policy())
    raw = booster.predict(audit.sample, raw_score=True)
    np.testing.assert_allclose(audit.values.sum(axis=1) + audit.base_value, raw, atol=1e-8)
    np.testing.assert_allclose(np.exp(raw), booster.predict(audit.sample), rtol=1e-9)


def test_model_trained_with_audit_column_fails_sensitive_check(features):
    table = gf.areas().set_index("area_code")
    leaky = features.assign(
        audit_band_b=features["area_code"].map(table["audit_ethnic_band"]).eq("B").astype(float)
    )
    columns = [*gf.FEATURES, "audit_band_b"]
    audit = shap_audit(gf.train(leaky, columns), columns, leaky, _shap_policy())
    check = _check(audit, "shap.sensitive_features")
    assert not check.passed and check.gated
    assert "audit_band_b" in check.detail


def test_proxy_heavy_model_fails_proxy_share(features):
    # risk made to follow deprivation and population alone: the proxies carry the attribution
    proxy = features.assign(
        y=np.random.default_rng(5)
        .poisson(0.05 * features["imd_decile"] + features["population"] / 2000)
        .astype(float)
    )
    audit = shap_audit(gf.train(proxy), gf.FEATURES, proxy, _shap_policy())
    check = _check(audit, "shap.proxy_share")
    assert not check.passed and check.value > 0.35


def test_negative_recent_violence_effect_fails_monotone_check(features):
    inverse = gf.feature_frame(gf.areas(), weeks=24, effect=-0.9)
    audit = shap_audit(gf.train(inverse), gf.FEATURES, inverse, _shap_policy())
    failed = [c.name for c in audit.checks if c.name.startswith("shap.monotone") and not c.passed]
    assert failed
    assert any(c.gated for c in audit.checks if c.name in failed)
    fair = shap_audit(gf.train(features), gf.FEATURES, features, _shap_policy())
    assert all(c.passed for c in fair.checks if c.name.startswith("shap.monotone") and c.gated)


def test_unstable_folds_fail_rank_stability(features, booster):
    rng = np.random.default_rng(9)
    noise = features.assign(y=rng.poisson(0.4, len(features)).astype(float))
    folds = [
        FoldModel(fold=k, booster=gf.train(noise.sample(frac=0.5, random_state=k), seed=k))
        for k in range(3)
    ]
    audit = shap_audit(
        booster, gf.FEATURES, features, _shap_policy(min_rank_stability=0.9), folds=folds
    )
    check = _check(audit, "shap.rank_stability")
    assert check.gated and not check.passed
    assert len(audit.stability) == 3


def test_missing_feature_is_named(features, booster):
    with pytest.raises(SchemaError) as err:
        shap_audit(booster, gf.FEATURES, features.drop(columns="population"), _shap_policy())
    assert err.value.field == "population"
    assert MISSING_FEATURE.format(name="population") in str(err.value)


def test_progress_reports_the_candidate_then_each_fold(features, booster):
    calls = []
    folds = [FoldModel(fold=k, booster=booster) for k in range(3)]
    shap_audit(booster, gf.FEATURES, features, _shap_policy(sample_rows=50), folds=folds,
               progress=lambda step, done, total: calls.append((step, done, total)))  # fmt: skip
    assert calls[:2] == [("SHAP: candidate", 0, 1), ("SHAP: candidate", 1, 1)]
    assert calls[2:] == [("SHAP: backtest folds", k, 3) for k in range(4)]
