"""Lead-time features: council lags and their jump, night-time economy, feature groups."""

import numpy as np
import pandas as pd
import pytest

from tests.training.test_features import make_panel
from training.config import BacktestParams, FeatureParams
from training.feature_groups import FEATURE_GROUPS, LEAD_GROUPS, group_columns
from training.features import build_features, describe_feature, feature_columns
from training.lead_features import bank_holiday_weekend, council_lead_block
from training.near_repeat import daily_events

PARAMS = FeatureParams(min_history_weeks=4, council_baseline_weeks=4)


def _mats(evictions: np.ndarray) -> dict[str, np.ndarray]:
    return {"evictions": evictions, "exclusions": np.zeros_like(evictions)}


def test_council_lags_and_jump_equal_hand_computed_values():
    # one area; week w has w evictions
    mat = np.arange(20, dtype=float)[:, None]
    block = council_lead_block(_mats(mat), PARAMS, np.array([15]))
    # lag k is the count k - 1 weeks before the origin week 15: weeks 13 down to 8
    for k in range(3, 9):
        assert block[f"evictions_lag{k}"][0, 0] == 15 - (k - 1)
    lead = np.mean([13, 12, 11, 10, 9, 8])  # 10.5
    base = np.mean([4, 5, 6, 7])  # the 4 weeks before week 8
    assert block["evictions_lead_change"][0, 0] == pytest.approx(lead - base)
    assert block["evictions_lead_ratio"][0, 0] == pytest.approx((lead + 0.5) / (base + 0.5))


def test_council_weeks_outside_coverage_are_missing_not_zero():
    mat = np.arange(20, dtype=float)[:, None]
    mat[[5, 10]] = np.nan  # two weeks outside the source's coverage
    block = council_lead_block(_mats(mat), PARAMS, np.array([15, 2]))
    assert np.isnan(block["evictions_lag6"][0, 0])  # week 10
    lead = np.mean([13, 12, 11, 9, 8])
    base = np.mean([4, 6, 7])
    assert block["evictions_lead_change"][0, 0] == pytest.approx(lead - base)
    # origin 2: lag 3 is the first week, lag 4 is before it, and there is no baseline
    assert block["evictions_lag3"][1, 0] == 0 and np.isnan(block["evictions_lag4"][1, 0])
    assert np.isnan(block["evictions_lead_change"][1, 0])
    assert np.isnan(block["evictions_lead_ratio"][1, 0])


def test_council_features_in_build_features_use_the_panel_weeks_back():
    panel, areas, adjacency = make_panel()
    features = build_features(panel, areas, adjacency, PARAMS)
    truth = panel.set_index(["area_code", "week_start"])["evictions"]
    rows = features.loc[features["origin_week"] >= pd.Timestamp("2023-03-06")].head(40)
    for _, row in rows.iterrows():
        week = row["origin_week"] - pd.Timedelta(weeks=4)  # lag 5
        assert row["evictions_lag5"] == pytest.approx(truth[row["area_code"], week])
    # the neighbours' mean of a council lag (areas on a line)
    row = features.iloc[-1]
    nbrs = adjacency.loc[adjacency["area_code"] == row["area_code"], "neighbour_code"]
    week = row["origin_week"] - pd.Timedelta(weeks=2)
    assert row["nb_evictions_lag3"] == pytest.approx(np.mean([truth[c, week] for c in nbrs]))


def test_night_time_economy_is_late_premises_by_season_and_long_weekend():
    assert list(bank_holiday_weekend(pd.DatetimeIndex(["2024-05-20", "2024-05-13"]))) == [1, 0]
    # Good Friday 2024-03-29 and Easter Monday 2024-04-01 make the weekend of 25 March long
    assert bank_holiday_weekend(pd.DatetimeIndex(["2024-03-25"]))[0] == 1
    panel, areas, adjacency = make_panel()
    features = build_features(panel, areas, adjacency, PARAMS)
    late = features["late_premises"].to_numpy(np.float64)
    summer = (1 - features["woy_cos"].to_numpy(np.float64)) / 2
    np.testing.assert_allclose(features["nte_summer"], late * summer, atol=1e-5)
    december = (features["target_week"] + pd.Timedelta(days=3)).dt.month == 12
    np.testing.assert_array_equal(features["nte_december"], late * december)
    weekend = bank_holiday_weekend(pd.DatetimeIndex(features["target_week"]))
    np.testing.assert_array_equal(features["nte_bank_holiday_weekend"], late * weekend)


def _features_with_daily():
    panel, areas, adjacency = make_panel()
    days = pd.date_range("2023-01-02", periods=30 * 7, freq="D")
    rng = np.random.default_rng(1)
    records = pd.DataFrame(
        {
            "source": "istv",
            "area_code": rng.choice(areas["area_code"], 400),
            "date": rng.choice(days, 400),
            "grain": "day",
            "is_violence": True,
        }
    )
    return build_features(panel, areas, adjacency, PARAMS, daily_events(records))


def test_every_ablation_leaves_out_exactly_its_group():
    from training.backtest.folds import VARIANTS, ablated_group, variants

    features = _features_with_daily()
    full = feature_columns(features)
    for group in FEATURE_GROUPS:
        assert not any(c.startswith("audit_") for c in group_columns(full, group))
    for method, options in VARIANTS.items():
        group = ablated_group(method)
        if group is None:
            continue
        dropped = set(full) - set(feature_columns(features, **options))
        assert dropped == set(group_columns(full, group)) and dropped, method
        for name in dropped:
            assert describe_feature(name) != name, name
    assert set(LEAD_GROUPS) == {ablated_group(m) for m in VARIANTS} - {None}
    chosen = variants(features, BacktestParams(ablation_groups=("council_lead",)))
    assert list(chosen) == [
        "model", "ablation_police_only", "ablation_no_spatial", "ablation_no_council_lead"
    ]  # fmt: skip
    # without linked records there are no near-repeat columns, and no such ablation
    panel, areas, adjacency = make_panel()
    plain = build_features(panel, areas, adjacency, PARAMS)
    assert not group_columns(feature_columns(plain), "near_repeat")
    assert "ablation_no_near_repeat" not in variants(plain, BacktestParams())
    assert "ablation_no_near_repeat" in variants(features, BacktestParams())
