"""The rolling-origin backtest: the model against the analysts' baselines and the oracle.

Every method forecasts the same rows: each area, each of the last
``BacktestParams.weeks`` target weeks, each horizon (the ablations may be
limited to ``BacktestParams.ablation_horizons``). The model and its
ablations (police only, no neighbours, one per ablated feature group) are
refitted every ``retrain_every`` weeks of origin on the outcomes known at
the refit (``training.backtest.folds``); the baselines come from
``training.baselines.predict_baselines`` (its Poisson GLM uses the model's
non-spatial features: the same lags, season and static layers). Scores,
margins over the best baseline with paired week-level bootstrap intervals,
the oracle capture share and the gain of linked sources over police data alone
come from ``training.backtest.scoring``; what each ablated feature group adds
(the ablation table) from ``training.backtest.ablation``. The ``stacked``
method, the model and the fitted baselines combined by weights learned at each
refit, comes from ``training.backtest.stacked``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import lightgbm as lgb
import pandas as pd
from matplotlib.figure import Figure

from training.backtest.ablation import ablation_markdown, ablation_table
from training.backtest.folds import Fold, fit_folds, plan_folds, scored_weeks, variants
from training.backtest.scoring import score_backtest, table_markdown
from training.backtest.stacked import StackedRun, run_stacked
from training.baselines.predict import predict_baselines
from training.config import Params
from training.features import feature_columns
from training.plots import backtest_figures
from training.predictions import PREDICTION_COLUMNS

__all__ = [
    "BacktestResult",
    "run_backtest",
    "write_backtest",
    "read_fold_boosters",
    "STACK_FORECASTS",
]

#: the components' out-of-sample forecasts (warm-up and scored weeks) the stacker learns from
STACK_FORECASTS = "stack_forecasts.parquet"


@dataclass
class BacktestResult:
    """What a backtest produced.

    Attributes
    ----------
    predictions : the ``predictions`` frame of every method on the scored rows.
    table : metrics per method and horizon (``training.metrics.score_predictions``).
    margins : the model's margin over the best baseline (and the police-only
        ablation) per metric and horizon, with bootstrap intervals.
    summary : the headline figures (JSON-ready).
    folds : the refits, with the model's booster of each.
    plots : name -> matplotlib figure.
    feature_names : the model's feature columns.
    stacked : the stacker's out-of-sample inputs and per-fold weights.
    ablations : what each ablated feature group adds (``training.backtest.ablation``).
    """

    predictions: pd.DataFrame
    table: pd.DataFrame
    margins: pd.DataFrame
    summary: dict
    folds: list[Fold]
    plots: dict[str, Figure] = field(default_factory=dict)
    feature_names: list[str] = field(default_factory=list)
    stacked: StackedRun | None = None
    ablations: pd.DataFrame = field(default_factory=pd.DataFrame)


def run_backtest(
    features: pd.DataFrame,
    panel: pd.DataFrame,
    areas: pd.DataFrame,
    adjacency: pd.DataFrame,
    oracle: pd.DataFrame | None,
    params: Params,
    *,
    progress=None,
) -> BacktestResult:
    """Run the rolling-origin backtest.

    Parameters
    ----------
    features : from ``training.features.build_features``.
    panel, areas, adjacency : the panel layer.
    oracle : the synthetic city's true expected counts, or None.
    params : all settings (features, model, backtest, baselines).
    progress : a ``rich.progress.Progress`` to report on, or None.

    Returns
    -------
    BacktestResult
    """
    targets = scored_weeks(features, params.backtest)
    folds = plan_folds(features, params.backtest)
    total = len(folds) * len(variants(features, params.backtest)) + 3
    task = progress.add_task("backtest", total=total) if progress is not None else None

    def advance(label: str) -> None:
        if progress is not None:
            progress.update(task, advance=1, description=f"backtest: {label}")

    fitted, folds = fit_folds(
        features, folds, targets, params.model, params.backtest, advance=advance
    )
    origins = pd.DatetimeIndex(fitted["origin_week"].unique()).sort_values()
    baselines = predict_baselines(
        panel,
        adjacency,
        origins,
        params.features.horizons,
        glm_features=features,
        glm_columns=feature_columns(features, spatial=False),
        oracle=oracle,
        params=params.baselines,
    )
    advance("baselines")
    baselines = baselines[baselines["target_week"].isin(targets)]
    predictions = pd.concat([fitted[PREDICTION_COLUMNS], baselines], ignore_index=True)
    # Stacking: the model and the fitted baselines combined by weights learned per fold.
    stacked = run_stacked(features, panel, adjacency, predictions, folds, params)
    predictions = pd.concat([predictions, stacked.predictions], ignore_index=True)
    advance("stacked")
    table, margins, summary, per_week = score_backtest(predictions, areas, params.backtest)
    summary["stacking"] = {
        "warmup_weeks": stacked.warmup_weeks,
        "seconds": round(stacked.seconds, 1),
        "weights": stacked.weights,
    }
    summary["folds"] = [
        {"k": f.k, "cutoff": str(f.cutoff.date()), "until": str(f.until.date())} for f in folds
    ]
    summary["target_weeks"] = [str(targets[0].date()), str(targets[-1].date())]
    plots = backtest_figures(predictions, per_week, areas, params.backtest.coverages)
    names = feature_columns(features)
    ablations = ablation_table(per_week, names, params.backtest)
    advance("scored")
    return BacktestResult(
        predictions, table, margins, summary, folds, plots, names, stacked, ablations
    )


def write_backtest(result: BacktestResult, out_dir: str | Path) -> list[Path]:
    """Write predictions, results.json, table.md, plots/*.png and folds/ to ``out_dir``."""
    out_dir = Path(out_dir)
    (out_dir / "plots").mkdir(parents=True, exist_ok=True)
    (out_dir / "folds").mkdir(parents=True, exist_ok=True)
    written = [out_dir / "predictions.parquet", out_dir / "results.json", out_dir / "table.md"]
    result.predictions.to_parquet(written[0], index=False)
    results = {
        "summary": result.summary,
        "table": json.loads(result.table.to_json(orient="records")),
        "margins": json.loads(result.margins.to_json(orient="records")),
        "feature_names": result.feature_names,
        "ablations": json.loads(result.ablations.to_json(orient="records")),
    }
    written[1].write_text(json.dumps(results, indent=2, default=str))
    if result.stacked is not None:
        written.append(out_dir / STACK_FORECASTS)
        result.stacked.forecasts.to_parquet(written[-1], index=False)
    markdown = table_markdown(result.table, result.margins, result.summary)
    written[2].write_text(markdown + "\n" + ablation_markdown(result.ablations))
    for name, figure in result.plots.items():
        path = out_dir / "plots" / f"{name}.png"
        figure.savefig(path, dpi=110, bbox_inches="tight")
        written.append(path)
    index = []
    for fold in result.folds:
        path = out_dir / "folds" / f"fold_{fold.k}.lgb"
        fold.booster.save_model(str(path))
        index.append({"k": fold.k, "origin_week": str(fold.cutoff.date()), "file": path.name})
        written.append(path)
    (out_dir / "folds" / "folds.json").write_text(json.dumps(index, indent=2))
    return written


def read_fold_boosters(out_dir: str | Path) -> list[tuple[pd.Timestamp, lgb.Booster]]:
    """Read the fold boosters a backtest wrote: ``[(origin_week, booster), ...]``."""
    folds = Path(out_dir) / "folds"
    index = json.loads((folds / "folds.json").read_text())
    return [
        (pd.Timestamp(e["origin_week"]), lgb.Booster(model_file=str(folds / e["file"])))
        for e in index
    ]
