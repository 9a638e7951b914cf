import numpy as np
import pandas as pd
import pytest

from training.config import FeatureParams
from training.errors import SchemaError
from training.features import (
    KEY_COLUMNS,
    SENSITIVE_FEATURE,
    SOURCE_COLUMNS,
    STATIC_COLUMNS,
    assert_no_sensitive,
    build_features,
    describe_feature,
    feature_columns,
)

PARAMS = FeatureParams(min_history_weeks=4, lags=(1, 2, 3, 4))


def make_panel(n_areas: int = 6, n_weeks: int = 30, seed: int = 0):
    rng = np.random.default_rng(seed)
    codes = [f"SYN{i:05d}" for i in range(1, n_areas + 1)]
    weeks = pd.date_range("2023-01-02", periods=n_weeks, freq="7D")
    panel = pd.MultiIndex.from_product([codes, weeks], names=["area_code", "week_start"])
    panel = panel.to_frame(index=False)
    for column in SOURCE_COLUMNS:
        panel[column] = rng.poisson(2.0, len(panel)).astype(float)
    panel["violence"] = panel["police_violence"] + panel["ae_assault"]
    areas = pd.DataFrame(
        {
            "area_code": codes,
            "area_km2": rng.uniform(0.5, 2.0, n_areas),
            "population": rng.integers(1000, 2000, n_areas).astype(float),
            "imd_decile": rng.integers(1, 11, n_areas).astype(float),
            "premises": rng.integers(0, 5, n_areas).astype(float),
            "late_premises": rng.integers(0, 2, n_areas).astype(float),
            "audit_ethnic_band": "A",
            "audit_share_white": rng.uniform(0, 1, n_areas),
        }
    )
    adjacency = pd.DataFrame(
        {"area_code": codes[:-1] + codes[1:], "neighbour_code": codes[1:] + codes[:-1]}
    )
    return panel, areas, adjacency


def test_one_row_per_area_origin_horizon_with_targets():
    panel, areas, adjacency = make_panel()
    features = build_features(panel, areas, adjacency, PARAMS)
    n_origins = 30 - (PARAMS.min_history_weeks - 1)
    assert len(features) == 6 * n_origins * len(PARAMS.horizons)
    assert not features.duplicated(["area_code", "origin_week", "horizon"]).any()
    delta = (features["target_week"] - features["origin_week"]).dt.days
    assert (delta == 7 * features["horizon"]).all()
    truth = panel.set_index(["area_code", "week_start"])
    known = features.dropna(subset=["y"])
    expected = truth.loc[list(zip(known["area_code"], known["target_week"], strict=True))]
    np.testing.assert_allclose(known["y"], expected["violence"])
    np.testing.assert_allclose(known["y_ae"], expected["ae_assault"])
    last = features["origin_week"] == panel["week_start"].max()
    assert features.loc[last, "y"].isna().all()


def test_lags_and_means_use_the_origin_week_and_before():
    panel, areas, adjacency = make_panel()
    features = build_features(panel, areas, adjacency, PARAMS)
    series = panel.loc[panel["area_code"] == "SYN00003"].set_index("week_start")["ae_assault"]
    origin = series.index[10]
    row = features.loc[(features["area_code"] == "SYN00003") & (features["origin_week"] == origin)]
    row = row.iloc[0]
    assert row["ae_assault_lag1"] == series.iloc[10]
    assert row["ae_assault_lag4"] == series.iloc[7]
    assert row["ae_assault_mean4"] == pytest.approx(series.iloc[7:11].mean())
    assert row["ae_assault_mean52"] == pytest.approx(series.iloc[:11].mean())
    neighbours = panel.loc[panel["area_code"].isin(["SYN00002", "SYN00004"])]
    at_origin = neighbours.loc[neighbours["week_start"] == origin, "violence"]
    assert row["nb_violence_lag1"] == pytest.approx(at_origin.mean())


def test_features_do_not_change_when_the_future_changes():
    panel, areas, adjacency = make_panel()
    origin = panel["week_start"].sort_values().unique()[15]
    before = build_features(panel, areas, adjacency, PARAMS)
    future = panel["week_start"] > origin
    changed = panel.copy()
    changed.loc[future, [*SOURCE_COLUMNS, "violence"]] += 50.0
    after = build_features(changed, areas, adjacency, PARAMS)
    columns = feature_columns(before)
    mask = before["origin_week"] <= origin
    pd.testing.assert_frame_equal(before.loc[mask, columns], after.loc[mask, columns])
    moved = before["target_week"] > origin
    assert (after.loc[moved & mask, "y"] != before.loc[moved & mask, "y"]).all()


def test_no_feature_equals_the_target():
    panel, areas, adjacency = make_panel()
    features = build_features(panel, areas, adjacency, PARAMS).dropna(subset=["y"])
    for column in feature_columns(features):
        assert not np.allclose(features[column].to_numpy(float), features["y"]), column


def test_feature_sets_and_sensitive_guard():
    panel, areas, adjacency = make_panel()
    features = build_features(panel, areas, adjacency, PARAMS)
    full = feature_columns(features)
    assert not any(c.startswith("audit_") for c in features.columns)
    assert not set(KEY_COLUMNS) & set(full)
    assert {*STATIC_COLUMNS, "horizon", "woy_sin", "holiday"} <= set(full)
    for source in SOURCE_COLUMNS:
        assert {f"{source}_lag1", f"{source}_lag4", f"{source}_mean13"} <= set(full)
    police = feature_columns(features, police_only=True)
    assert "police_violence_lag1" in police and "nb_police_violence_mean4" in police
    assert not [c for c in police if "violence_lag" in c and "police" not in c]
    assert not [c for c in police if c.startswith(("ae_", "ambulance", "exclusions", "evict"))]
    flat = feature_columns(features, spatial=False)
    assert not [c for c in flat if c.startswith("nb_")]
    with pytest.raises(ValueError) as caught:
        assert_no_sensitive(["violence_lag1", "audit_share_black"])
    assert str(caught.value) == SENSITIVE_FEATURE.format(columns="audit_share_black")


def test_christmas_week_is_a_holiday_and_describe_feature_words():
    panel, areas, adjacency = make_panel(n_weeks=60)
    features = build_features(panel, areas, adjacency, PARAMS)
    christmas = features["target_week"] == pd.Timestamp("2023-12-25")
    assert (features.loc[christmas, "holiday"] == 1).all()
    assert (
        features.loc[features["target_week"] == pd.Timestamp("2023-11-13"), "holiday"] == 0
    ).all()
    assert describe_feature("violence_mean4").endswith("in the last 4 weeks (weekly mean)")
    assert describe_feature("ae_assault_lag1") == "A&E assault attendances in the origin week"
    for column in feature_columns(features):
        assert describe_feature(column) != column


def test_a_panel_with_holes_is_refused():
    panel, areas, adjacency = make_panel()
    with pytest.raises(SchemaError, match="not a full area x week grid"):
        build_features(panel.iloc[1:], areas, adjacency, PARAMS)
    with pytest.raises(SchemaError, match="field 'ae_weapon'"):
        build_features(panel.drop(columns="ae_weapon"), areas, adjacency, PARAMS)
