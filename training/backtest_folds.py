"""Rolling-origin folds of the backtest: the model and its ablations, refitted as origins move.

The scored target weeks are the last ``BacktestParams.weeks`` weeks of the
panel. Every (origin, horizon) whose target is one of them is forecast. Folds
cut the origin weeks into blocks of ``retrain_every`` weeks; fold ``k`` is
trained at its cutoff week ``c_k`` on the rows whose ``target_week <= c_k``
(the outcomes known at the end of ``c_k``) and forecasts the rows whose origin
lies in ``[c_k, c_{k+1})``. No row is ever forecast by a model that saw its
target, nor any outcome after its origin.

Fits run in a thread pool (``BacktestParams.n_jobs``): LightGBM releases the
GIL, and single-threaded boosters side by side are faster than OpenMP threads
contending on a small shared machine.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import lightgbm as lgb
import numpy as np
import pandas as pd

from training.config import BacktestParams, ModelParams
from training.errors import SchemaError
from training.features import feature_columns
from training.model import fit_forecaster

__all__ = ["Fold", "plan_folds", "scored_weeks", "fit_folds", "VARIANTS", "NO_WEEKS"]

NO_WEEKS = "the panel has {have} weeks with observed targets; the backtest needs more than {need}"

#: method name -> feature_columns options
VARIANTS = {
    "model": {},
    "ablation_police_only": {"police_only": True},
    "ablation_no_spatial": {"spatial": False},
}


@dataclass(frozen=True)
class Fold:
    """One refit of the backtest.

    Attributes
    ----------
    k : fold number, from 0.
    cutoff : the origin week the fold is trained at (targets up to it are known).
    until : the first origin week of the next fold (exclusive end).
    booster : the model's booster (the ablations' are not kept).
    """

    k: int
    cutoff: pd.Timestamp
    until: pd.Timestamp
    booster: lgb.Booster | None = None


def scored_weeks(features: pd.DataFrame, params: BacktestParams) -> pd.DatetimeIndex:
    """Return the last ``params.weeks`` target weeks with an observed ``y``."""
    observed = pd.DatetimeIndex(features.loc[features["y"].notna(), "target_week"].unique())
    observed = observed.sort_values()
    if len(observed) <= params.weeks:
        raise SchemaError(
            "features", NO_WEEKS.format(have=len(observed), need=params.weeks), field="y"
        )
    return observed[-params.weeks :]


def plan_folds(features: pd.DataFrame, params: BacktestParams) -> list[Fold]:
    """Cut the origins forecasting the scored weeks into refit blocks."""
    targets = scored_weeks(features, params)
    scored = features["target_week"].isin(targets)
    origins = pd.DatetimeIndex(features.loc[scored, "origin_week"].unique()).sort_values()
    step = pd.Timedelta(weeks=params.retrain_every)
    cutoffs = pd.date_range(origins[0], origins[-1], freq=step)
    ends = list(cutoffs[1:]) + [origins[-1] + pd.Timedelta(weeks=1)]
    return [Fold(k, c, e) for k, (c, e) in enumerate(zip(cutoffs, ends, strict=True))]


def fit_folds(
    features: pd.DataFrame,
    folds: list[Fold],
    targets: pd.DatetimeIndex,
    model: ModelParams,
    backtest: BacktestParams,
    *,
    advance: Callable[[str], None] | None = None,
) -> tuple[pd.DataFrame, list[Fold]]:
    """Fit the model and ablations per fold; return their predictions and the model folds."""
    target_week = features["target_week"].to_numpy()
    origin_week = features["origin_week"].to_numpy()
    has_y = features["y"].notna().to_numpy()
    in_scope = np.isin(target_week, targets.to_numpy())
    ablation_h = backtest.ablation_horizons
    tasks = []
    for fold in folds:
        train = np.flatnonzero(has_y & (target_week <= fold.cutoff.to_datetime64()))
        test = in_scope & (origin_week >= fold.cutoff.to_datetime64())
        test &= origin_week < fold.until.to_datetime64()
        for method, options in VARIANTS.items():
            rows, test_rows, rounds = train, np.flatnonzero(test), None
            if method != "model":
                rounds = backtest.ablation_rounds
                if ablation_h is not None:
                    keep = np.isin(features["horizon"].to_numpy(), ablation_h)
                    rows = rows[keep[rows]]
                    test_rows = test_rows[keep[test_rows]]
            columns = feature_columns(features, **options)
            tasks.append((fold, method, columns, rows, test_rows, rounds))

    def run(task):
        fold, method, columns, rows, test_rows, rounds = task
        forecaster = fit_forecaster(features, columns, model, num_boost_round=rounds, rows=rows)
        test = features.iloc[test_rows]
        out = forecaster.predict(test)
        out.insert(0, "method", method)
        for key in ("area_code", "origin_week", "target_week", "horizon", "y", "y_ae"):
            out[key] = test[key].to_numpy()
        if advance is not None:
            advance(f"fold {fold.k} {method}")
        return fold.k, method, forecaster.booster, out

    with ThreadPoolExecutor(max_workers=max(backtest.n_jobs, 1)) as pool:
        results = list(pool.map(run, tasks))
    boosters = {k: b for k, method, b, _ in results if method == "model"}
    kept = [Fold(f.k, f.cutoff, f.until, boosters[f.k]) for f in folds]
    predictions = pd.concat([r[3] for r in results], ignore_index=True)
    predictions["horizon"] = predictions["horizon"].astype(int)
    return predictions, kept
