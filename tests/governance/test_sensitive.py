"""Audit-only attributes are refused as features by their values, whatever their name."""

import numpy as np
import pytest

from governance.sensitive import sensitive_content_check, sensitive_matches
from tests.governance import gate_fixtures as gf
from training.errors import HarmcastError, SensitiveFeature


@pytest.fixture(scope="module")
def areas():
    table = gf.areas()
    rng = np.random.default_rng(11)
    # Shares loosely tied to deprivation, as in a real city.
    share = np.clip(0.04 * (11 - table["imd_decile"]) + rng.normal(0, 0.12, len(table)), 0, 1)
    return table.assign(audit_share_black=share.round(4))


@pytest.fixture(scope="module")
def features(areas):
    return gf.feature_frame(areas, weeks=12)


def _by_area(features, areas, column):
    return features["area_code"].map(areas.set_index("area_code")[column])


def test_legitimate_features_pass(features, areas):
    check = sensitive_content_check(features, gf.FEATURES, areas, gf.policy().shap)
    assert check.passed and check.gated
    assert check.value < gf.policy().shap.max_sensitive_correlation
    assert check.detail.startswith("strongest: ")


def test_renamed_audit_share_is_refused(features, areas):
    renamed = features.assign(
        share_black=_by_area(features, areas, "audit_share_black").astype("float32")
    )
    names = [*gf.FEATURES, "share_black"]
    check = sensitive_content_check(renamed, names, areas, gf.policy().shap)
    assert not check.passed and check.gated
    assert "share_black ~ audit_share_black (1.000)" in check.detail
    top = sensitive_matches(renamed, names, areas)[0]
    assert (top.feature, top.attribute) == ("share_black", "audit_share_black")


def test_a_monotone_transform_of_a_share_is_refused(features, areas):
    share = _by_area(features, areas, "audit_share_black")
    disguised = features.assign(community_index=np.log1p(100 * share))
    check = sensitive_content_check(
        disguised, [*gf.FEATURES, "community_index"], areas, gf.policy().shap
    )
    assert not check.passed
    assert "community_index ~ audit_share_black" in check.detail


def test_encoded_ethnic_band_is_refused(features, areas):
    band = _by_area(features, areas, "audit_ethnic_band")
    coded = features.assign(group_code=(band == "B").astype(float))
    check = sensitive_content_check(coded, [*gf.FEATURES, "group_code"], areas, gf.policy().shap)
    assert not check.passed
    assert "group_code ~ audit_ethnic_band (1.000)" in check.detail


def test_audit_prefixed_column_is_refused_by_name(features, areas):
    named = features.assign(audit_share_black=_by_area(features, areas, "audit_share_black"))
    check = sensitive_content_check(
        named, [*gf.FEATURES, "audit_share_black"], areas, gf.policy().shap
    )
    assert not check.passed


def test_train_refuses_an_audit_column_with_a_clear_error(tmp_path, features):
    from typer.testing import CliRunner

    from harmcast.cli import app
    from training.features import SENSITIVE_FEATURE

    layer = tmp_path / "data" / "04_features"
    layer.mkdir(parents=True)
    frame = features.assign(y_ae=0.0, audit_share_black=0.3)
    frame.to_parquet(layer / "features.parquet")
    result = CliRunner().invoke(app, ["train", "--root", str(tmp_path)])
    assert result.exit_code == 1
    assert "Traceback" not in result.output
    assert SENSITIVE_FEATURE.format(columns="audit_share_black") in " ".join(result.output.split())
    assert isinstance(result.exception, SystemExit)
    assert issubclass(SensitiveFeature, HarmcastError) and issubclass(SensitiveFeature, ValueError)
    assert not (tmp_path / "data" / "05_models" / "model.lgb").exists()
