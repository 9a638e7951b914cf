"""The stacked method of the backtest: the model and the fitted baselines, combined.

At each refit (fold) of the backtest and for each horizon, non-negative
weights (``training.stacking``) are fitted on the components' out-of-sample
forecasts whose ``target_week <= fold.cutoff``: outcomes known at that refit.
They are applied to the fold's own forecast rows (origins in ``[cutoff,
until)``, so targets after the cutoff), which the weights never saw.

So that the first fold has forecasts to learn from, the model (no ablations)
and the components among the baselines also forecast the
``BacktestParams.stack_warmup_weeks`` target weeks up to the first fold's
cutoff, refitted every ``retrain_every`` weeks as the scored folds are. These
warm-up rows train the stacker only: they are never scored and never appear in
the backtest's predictions, tables or margins.
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from training.backtest.folds import Fold, _fit_refits, _plan_refits
from training.baselines.predict import predict_baselines
from training.config import Params
from training.features import feature_columns
from training.forecaster import nb_summary
from training.predictions import PREDICTION_COLUMNS
from training.stacking import COMPONENTS, STACKED, StackingError, combine, fit_stack

__all__ = ["StackedRun", "warmup_targets", "warmup_forecasts", "stack_folds", "run_stacked"]

_KEYS = ["area_code", "origin_week", "target_week", "horizon"]


@dataclass
class StackedRun:
    """The stacked rows of a backtest and what they were learned from.

    Attributes
    ----------
    predictions : the ``stacked`` rows on the scored weeks (``PREDICTION_COLUMNS``).
    forecasts : the components' out-of-sample rows, warm-up and scored weeks
        (what ``harmcast train`` fits the final weights on).
    weights : per fold and horizon: weights, dispersion, rows and weeks learned from.
    warmup_weeks : the warm-up target weeks (first, last).
    seconds : wall time of the warm-up forecasts and the stacking.
    """

    predictions: pd.DataFrame
    forecasts: pd.DataFrame
    weights: list[dict] = field(default_factory=list)
    warmup_weeks: list[str] = field(default_factory=list)
    seconds: float = 0.0


def warmup_targets(features: pd.DataFrame, folds: list[Fold], n_weeks: int) -> pd.DatetimeIndex:
    """Return the last ``n_weeks`` observed target weeks up to the first fold's cutoff."""
    observed = pd.DatetimeIndex(features.loc[features["y"].notna(), "target_week"].unique())
    observed = observed[observed <= folds[0].cutoff].sort_values()
    return observed[-n_weeks:] if n_weeks > 0 else observed[:0]


def _warmup_folds(features: pd.DataFrame, targets: pd.DatetimeIndex, every: int) -> list[Fold]:
    rows = features["target_week"].isin(targets)
    origins = pd.DatetimeIndex(features.loc[rows, "origin_week"].unique()).sort_values()
    cutoffs = pd.date_range(origins[0], origins[-1], freq=pd.Timedelta(weeks=every))
    ends = list(cutoffs[1:]) + [origins[-1] + pd.Timedelta(weeks=1)]
    n = len(cutoffs)
    return [Fold(k - n, c, e) for k, (c, e) in enumerate(zip(cutoffs, ends, strict=True))]


def warmup_forecasts(
    features: pd.DataFrame,
    panel: pd.DataFrame,
    adjacency: pd.DataFrame,
    targets: pd.DatetimeIndex,
    params: Params,
) -> pd.DataFrame:
    """Forecast the warm-up ``targets`` with the model and the baseline components.

    The model is refitted as in the scored folds (``training.backtest.folds``):
    each warm-up fold trains on the rows whose target is at or before its cutoff.
    """
    folds = _warmup_folds(features, targets, params.backtest.retrain_every)
    refits = [
        r
        for r in _plan_refits(features, folds, targets, params.backtest, ["model"])
        if r.method == "model"
    ]
    with tempfile.TemporaryDirectory(prefix="harmcast-warmup-") as folder:
        fitted = _fit_refits(
            features, refits, params.model, params.backtest, Path(folder), None, len(folds)
        )
    model = pd.concat([out for _, out in fitted.values()], ignore_index=True)
    origins = pd.DatetimeIndex(model["origin_week"].unique()).sort_values()
    baselines = predict_baselines(
        panel,
        adjacency,
        origins,
        params.features.horizons,
        glm_features=features,
        glm_columns=feature_columns(features, spatial=False),
        params=params.baselines,
        methods=[c for c in COMPONENTS if c != "model"],
    )
    baselines = baselines.loc[baselines["target_week"].isin(targets)]
    out = pd.concat([model[PREDICTION_COLUMNS], baselines], ignore_index=True)
    out["horizon"] = out["horizon"].astype(int)
    return out


def _wide(rows: pd.DataFrame) -> pd.DataFrame:
    wide = rows.pivot_table(index=_KEYS, columns="method", values="mu", aggfunc="first")
    outcome = rows.groupby(_KEYS)[["y", "y_ae"]].first()
    return wide.join(outcome).reset_index().dropna(subset=list(COMPONENTS))


def stack_folds(
    forecasts: pd.DataFrame,
    scored: pd.DataFrame,
    folds: list[Fold],
    interval: tuple[float, float],
) -> tuple[pd.DataFrame, list[dict]]:
    """Fit weights per fold and horizon on known outcomes; apply them to the fold's rows.

    Parameters
    ----------
    forecasts : the components' out-of-sample rows the stacker may learn from
        (warm-up and scored weeks); only those with ``target_week <= fold.cutoff``
        are used at a fold.
    scored : the components' rows on the scored weeks, to be combined.
    folds : the backtest's refits.
    interval : the quantile levels of the stacked rows' intervals.

    Returns
    -------
    tuple
        ``(stacked rows, weight records)``. A horizon with nothing to learn from
        at a fold is served by the model alone (recorded as ``fallback``).
    """
    apply = _wide(scored)
    frames, records = [], []
    for fold in folds:
        known = forecasts.loc[forecasts["target_week"] <= fold.cutoff]
        rows = apply.loc[
            (apply["origin_week"] >= fold.cutoff) & (apply["origin_week"] < fold.until)
        ]
        try:
            weights, dispersion, n_rows = fit_stack(known, COMPONENTS)
        except StackingError:
            weights, dispersion, n_rows = {}, {}, {}
        for h, at in rows.groupby("horizon"):
            h = int(h)
            fallback = h not in weights
            w = weights.get(h, np.array([1.0 if c == "model" else 0.0 for c in COMPONENTS]))
            mu = combine(at[list(COMPONENTS)].to_numpy(), w)
            out = pd.DataFrame(nb_summary(mu, dispersion.get(h, 0.0), interval))
            for key in (*_KEYS, "y", "y_ae"):
                out[key] = at[key].to_numpy()
            frames.append(out.assign(method=STACKED))
            weeks = known.loc[known["horizon"] == h, "target_week"]
            span = [str(weeks.min().date()), str(weeks.max().date())] if len(weeks) else []
            records.append({
                "k": fold.k,
                "cutoff": str(fold.cutoff.date()),
                "horizon": h,
                "weights": dict(zip(COMPONENTS, (float(v) for v in w), strict=True)),
                "dispersion": float(dispersion.get(h, 0.0)),
                "n_rows": int(n_rows.get(h, 0)),
                "learned_from": span,
                "fallback": fallback,
            })  # fmt: skip
    stacked = pd.concat(frames, ignore_index=True)[PREDICTION_COLUMNS]
    stacked["horizon"] = stacked["horizon"].astype(int)
    return stacked, records


def run_stacked(
    features: pd.DataFrame,
    panel: pd.DataFrame,
    adjacency: pd.DataFrame,
    predictions: pd.DataFrame,
    folds: list[Fold],
    params: Params,
) -> StackedRun:
    """Add the warm-up forecasts, fit the stacker per fold and return the stacked rows.

    ``predictions`` are the backtest's scored rows of every method; the
    components' rows are read from them.
    """
    start = time.perf_counter()
    targets = warmup_targets(features, folds, params.backtest.stack_warmup_weeks)
    scored = predictions.loc[predictions["method"].isin(COMPONENTS)]
    warm = scored.iloc[:0]
    if len(targets):
        warm = warmup_forecasts(features, panel, adjacency, targets, params)
    forecasts = pd.concat([warm, scored], ignore_index=True)
    stacked, weights = stack_folds(forecasts, scored, folds, tuple(params.model.interval))
    weeks = [str(targets[0].date()), str(targets[-1].date())] if len(targets) else []
    return StackedRun(stacked, forecasts, weights, weeks, time.perf_counter() - start)
