import json

import numpy as np
import pandas as pd
import pytest

from training.backtest.folds import fit_folds, plan_folds, scored_weeks, variants
from training.backtest.run import read_fold_boosters, run_backtest, write_backtest
from training.baselines.predict import METHODS
from training.config import (
    BacktestParams,
    FeatureParams,
    LinkParams,
    ModelParams,
    Params,
    SourceParams,
)
from training.feature_groups import LEAD_GROUPS
from training.features import build_features
from training.link.linker import link_sources
from training.near_repeat import daily_events
from training.panel import build_panel
from training.stacking import COMPONENTS, STACKED

PARAMS = Params(
    features=FeatureParams(min_history_weeks=8),
    model=ModelParams(num_boost_round=30, learning_rate=0.1, num_leaves=7, min_data_in_leaf=20),
    backtest=BacktestParams(weeks=8, retrain_every=4, n_boot=200, ablation_rounds=15),
)


@pytest.fixture(scope="module")
def city(synthetic_city):
    linked = link_sources(synthetic_city, SourceParams(), LinkParams())
    panel = build_panel(linked.records, linked.areas)
    features = build_features(
        panel, linked.areas, linked.adjacency, PARAMS.features, daily_events(linked.records)
    )
    oracle = pd.read_parquet(synthetic_city / "oracle" / "expected_counts.parquet")
    return features, panel, linked.areas, linked.adjacency, oracle


def test_folds_never_train_on_a_target_after_their_cutoff(city):
    features = city[0]
    folds = plan_folds(features, PARAMS.backtest)
    assert len(folds) >= 3
    assert all(a.until == b.cutoff for a, b in zip(folds, folds[1:], strict=False))
    last_targets = features.loc[features["y"].notna(), "target_week"].max()
    assert folds[-1].until > last_targets - pd.Timedelta(weeks=1)


@pytest.mark.slow
def test_backtest_scores_every_method_and_horizon_without_leakage(city, tmp_path):
    features, panel, areas, adjacency, oracle = city
    result = run_backtest(features, panel, areas, adjacency, oracle, PARAMS)
    predictions = result.predictions
    groups = [f"ablation_no_{g}" for g in LEAD_GROUPS]
    expected = {"model", "ablation_police_only", "ablation_no_spatial", *groups, STACKED, *METHODS}
    assert set(predictions["method"]) == expected
    ablation_horizons = set(PARAMS.backtest.ablation_horizons or PARAMS.features.horizons)
    for method, rows in predictions.groupby("method"):
        horizons = ablation_horizons if method.startswith("ablation_") else PARAMS.features.horizons
        assert set(rows["horizon"]) == set(horizons), method
        assert rows["target_week"].nunique() == PARAMS.backtest.weeks, method
    model = predictions.loc[predictions["method"] == "model"]
    assert not model.duplicated(["area_code", "origin_week", "horizon"]).any()
    by_fold = pd.DataFrame([(f.cutoff, f.until) for f in result.folds], columns=["c", "u"])
    for _, fold in by_fold.iterrows():
        served = model.loc[(model["origin_week"] >= fold["c"]) & (model["origin_week"] < fold["u"])]
        assert (served["target_week"] > fold["c"]).all()
    assert set(result.table["method"]) == expected
    assert {"poisson_deviance", "pai_area_5", "pai_area_10"} <= set(result.table.columns)
    assert set(result.margins["comparator"]) >= {"ablation_police_only"}
    assert np.isfinite(result.margins["difference"]).all()
    assert "h1.oracle_capture.poisson_deviance" in result.summary["headline"]
    # the stacker: weights learned up to each cutoff; warm-up weeks never scored
    targets = set(predictions["target_week"])
    assert len(targets) == PARAMS.backtest.weeks
    warm = result.stacked.forecasts.loc[~result.stacked.forecasts["target_week"].isin(targets)]
    assert warm["target_week"].nunique() == PARAMS.backtest.stack_warmup_weeks
    assert set(warm["method"]) == set(COMPONENTS)
    assert warm["target_week"].max() <= result.folds[0].cutoff
    assert (
        result.table.loc[result.table["method"] == STACKED, "weeks"].max() == PARAMS.backtest.weeks
    )
    records = result.summary["stacking"]["weights"]
    assert {r["k"] for r in records} == {f.k for f in result.folds}
    assert all(r["learned_from"][1] <= r["cutoff"] and not r["fallback"] for r in records)
    assert all(min(r["weights"].values()) >= 0 for r in records)
    stacked_margins = result.margins.loc[result.margins["method"] == STACKED]
    assert set(stacked_margins["comparator"]) == set(COMPONENTS)

    written = write_backtest(result, tmp_path)
    assert (tmp_path / "table.md").read_text().startswith("# Backtest results")
    results = json.loads((tmp_path / "results.json").read_text())
    assert "acceptance" in results["summary"]
    ablations = pd.DataFrame(results["ablations"])
    assert ablations.groupby("group").size().to_dict() == dict.fromkeys(LEAD_GROUPS, 3)
    assert (ablations["horizon"] == 1).all() and (ablations["n_columns"] > 0).all()
    assert (ablations["ci_low"] <= ablations["difference"]).all()
    assert (ablations["difference"] <= ablations["ci_high"]).all()
    assert "## What each feature group adds" in (tmp_path / "table.md").read_text()
    assert {p.name for p in (tmp_path / "plots").glob("*.png")} == {
        "calibration_by_decile.png", "hit_rate_by_coverage.png",
        "pai_by_coverage.png", "error_by_week.png",
    }  # fmt: skip
    folds = read_fold_boosters(tmp_path)
    assert [w for w, _ in folds] == [f.cutoff for f in result.folds]
    assert folds[0][1].feature_name() == result.feature_names
    assert all(p.exists() for p in written)


def test_refits_side_by_side_in_processes_equal_one_after_another(city):
    """Worker processes and thread counts change no forecast and no booster."""
    features = city[0]
    folds = plan_folds(features, PARAMS.backtest)
    targets = scored_weeks(features, PARAMS.backtest)
    alone = PARAMS.backtest.model_copy(update={"n_jobs": 1})
    side = PARAMS.backtest.model_copy(update={"n_jobs": 2})
    one, one_folds = fit_folds(features, folds, targets, PARAMS.model, alone)
    two, two_folds = fit_folds(features, folds, targets, PARAMS.model, side)
    pd.testing.assert_frame_equal(one, two)
    assert set(one["method"]) == set(variants(features, PARAMS.backtest))
    assert {"model", "ablation_police_only", "ablation_no_spatial"} <= set(one["method"])
    for a, b in zip(one_folds, two_folds, strict=True):
        assert a.booster.dump_model()["tree_info"] == b.booster.dump_model()["tree_info"]
