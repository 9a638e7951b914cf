"""How well can any booster on these features rank areas? Train one on the truth.

On the synthetic city the oracle (the true expected counts) beats every
baseline on PAI. This asks how much of that lead is reachable from the
records: the same LightGBM is trained twice at one cutoff, once on the
observed counts ``y`` and once on the oracle's expected counts (no Poisson
noise at all), and both are scored with the backtest's metrics on the last
``backtest.weeks`` target weeks (horizon 1, no refits) against the Poisson GLM
and the oracle, with the backtest's paired week bootstrap.

If the booster trained on the truth ranks no better than the GLM, what the
oracle knows beyond the GLM is not in the features: no model trained on these
records can get it.

Usage (after ``harmcast panel`` on the default city)::

    uv run python benchmarks/feature_ceiling.py --root .

Writes ``benchmarks/results/feature_ceiling.{json,md}``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import lightgbm as lgb
import numpy as np
import pandas as pd

from training.baselines.predict import predict_baselines
from training.config import load_params
from training.features import build_features, feature_columns
from training.metrics.scores import paired_bootstrap, per_week_metrics
from training.model import lgb_params
from training.panel import read_panel_layer

RESULTS = Path(__file__).resolve().parent / "results"
METRICS = ("poisson_deviance", "pai_area_5", "pai_area_10")
KEYS = ["method", "area_code", "origin_week", "target_week", "horizon", "mu", "y"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=Path("."))
    args = parser.parse_args()
    params = load_params(args.root / "params.yaml" if (args.root / "params.yaml").exists()
                         else None, root=args.root)  # fmt: skip
    panel, areas, adjacency = read_panel_layer(params.paths.resolve("panel"))
    features = build_features(
        panel, areas, adjacency, params.features.model_copy(update={"horizons": (1,)})
    )
    oracle = pd.read_parquet(params.paths.resolve("raw") / "oracle" / "expected_counts.parquet")
    truth = oracle.rename(columns={"week_start": "target_week"})
    features = features.merge(
        truth[["area_code", "target_week", "expected_violence"]],
        on=["area_code", "target_week"], how="left",
    )  # fmt: skip
    columns = feature_columns(features.drop(columns="expected_violence"))
    weeks = np.sort(features["target_week"].unique())[-params.backtest.weeks :]
    train = features[(features["target_week"] < weeks[0]) & features["y"].notna()]
    test = features[features["target_week"].isin(weeks)]

    settings = lgb_params(params.model)
    forecasts = []
    for method, target in (("booster_on_y", "y"), ("booster_on_truth", "expected_violence")):
        data = lgb.Dataset(train[columns], label=train[target])
        booster = lgb.train(settings, data, num_boost_round=params.model.num_boost_round)
        forecasts.append(test.assign(method=method, mu=booster.predict(test[columns]))[KEYS])
    origins = pd.DatetimeIndex(weeks) - pd.Timedelta(days=7)
    baselines = predict_baselines(
        panel, adjacency, origins, (1,), glm_features=features.drop(columns="expected_violence"),
        glm_columns=feature_columns(features.drop(columns="expected_violence"), spatial=False),
        oracle=oracle, params=params.baselines, methods=["poisson_glm", "oracle"],
    )  # fmt: skip
    scored = pd.concat([baselines[baselines["target_week"].isin(weeks)][KEYS], *forecasts])
    scored["p_any"] = 1 - np.exp(-scored["mu"])
    per_week = per_week_metrics(scored, areas, (0.05, 0.10))
    means = per_week.groupby("method")[list(METRICS)].mean()
    margins = []
    for method in ("booster_on_y", "booster_on_truth", "oracle"):
        for metric in METRICS:
            better = metric != "poisson_deviance"
            boot = paired_bootstrap(
                per_week, metric, method, "poisson_glm",
                seed=params.backtest.seed, greater_is_better=better,
            )  # fmt: skip
            margins.append({"method": method, "metric": metric, **boot})
    _write(means, pd.DataFrame(margins), len(weeks))


def _write(means: pd.DataFrame, margins: pd.DataFrame, n_weeks: int) -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    result = {"means": json.loads(means.to_json()), "margins": margins.to_dict("records")}
    (RESULTS / "feature_ceiling.json").write_text(json.dumps(result, indent=2, default=str))
    lines = [
        "# Feature ceiling: a booster trained on the truth vs the GLM",
        "",
        f"Horizon 1, last {n_weeks} target weeks, one fit at the first of them.",
        "",
        "| method | deviance | PAI 5% | PAI 10% |",
        "|---|---:|---:|---:|",
    ]
    for method, row in means.iterrows():
        lines.append(f"| {method} | " + " | ".join(f"{row[m]:.4f}" for m in METRICS) + " |")
    lines += ["", "| margin over the GLM | metric | difference [95% CI] |", "|---|---|---|"]
    for row in margins.itertuples():
        lines.append(f"| {row.method} | {row.metric} | "
                     f"{row.estimate:+.4f} [{row.ci_low:+.4f}, {row.ci_high:+.4f}] |")  # fmt: skip
    (RESULTS / "feature_ceiling.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
