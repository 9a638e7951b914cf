"""Rolling-origin folds of the backtest: the model and its ablations, refitted as origins move.

The scored target weeks are the last ``BacktestParams.weeks`` weeks of the
panel. Every (origin, horizon) whose target is one of them is forecast. Folds
cut the origin weeks into blocks of ``retrain_every`` weeks; fold ``k`` is
trained at its cutoff week ``c_k`` on the rows whose ``target_week <= c_k``
(the outcomes known at the end of ``c_k``) and forecasts the rows whose origin
lies in ``[c_k, c_{k+1})``. No row is ever forecast by a model that saw its
target, nor any outcome after its origin.

Each variant (the model, each ablation) reads its feature matrix out of the
frame once, over the union of its folds' training rows; each fold bins its own
rows. Binning once over that union and training each fold on a ``subset`` was
measured (binning all 566,000 rows of the default city took 49 s on a loaded
machine, a fold's subset 4 s) but moved the PAI 5% margin over the GLM from
+0.039 to -0.012, outside its bootstrap interval, so it is not used. Each fold
samples at most ``ModelParams.max_train_rows`` rows as ``harmcast train`` does.

The variants are the model, ``ablation_police_only``, ``ablation_no_spatial``
and one ``ablation_no_<group>`` per feature group in
``BacktestParams.ablation_groups`` (``training.feature_groups``) that has
columns in the features: the model refitted without that group's columns.
Each ablation costs one fit per fold (at ``ablation_horizons`` and
``ablation_rounds``).

Fits run side by side in ``BacktestParams.n_jobs`` worker processes (joblib's
loky pool; each variant's feature matrix is written once to a temporary
``.npy`` file that the workers memory-map, so no matrix is sent per fit), all the
variants' refits in one queue, each booster with ``ModelParams.num_threads //
n_jobs`` OpenMP threads. LightGBM's results do not depend on the thread count
(``deterministic``), so the forecasts are those of one fit after another; two
single-threaded boosters use two cores better than one booster's two OpenMP
threads, above all on a machine shared with other work. Processes, not
threads: LightGBM's thread count is process-wide state, and concurrent fits in
one process are a known source of crashes.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import lightgbm as lgb
import numpy as np
import pandas as pd
from joblib import Parallel, delayed

from training.config import BacktestParams, ModelParams
from training.errors import SchemaError
from training.feature_groups import LEAD_GROUPS, group_columns
from training.features import assert_no_sensitive, feature_columns
from training.forecaster import nb_summary
from training.model import (
    feature_matrix,
    fit_booster,
    fit_dispersion,
    training_rows,
)

__all__ = [
    "Fold", "plan_folds", "scored_weeks", "fit_folds", "VARIANTS", "NO_WEEKS", "ABLATION_PREFIX",
    "variants", "ablated_group",
]  # fmt: skip

NO_WEEKS = "the panel has {have} weeks with observed targets; the backtest needs more than {need}"

ABLATION_PREFIX = "ablation_no_"
#: method name -> feature_columns options (every group that can be ablated; see :func:`variants`)
VARIANTS = {
    "model": {},
    "ablation_police_only": {"police_only": True},
    "ablation_no_spatial": {"spatial": False},
    **{f"{ABLATION_PREFIX}{group}": {"without": (group,)} for group in LEAD_GROUPS},
}


def ablated_group(method: str) -> str | None:
    """Return the feature group a ``ablation_no_<group>`` method leaves out, else None."""
    group = method.removeprefix(ABLATION_PREFIX)
    return group if group != method and group in LEAD_GROUPS else None


def variants(features: pd.DataFrame, params: BacktestParams) -> dict[str, dict]:
    """Return the variants to fit: the model, the two fixed ablations and the ablated groups.

    A group in ``params.ablation_groups`` without columns in ``features`` (the
    near-repeat group when no linked records were given) is not fitted.
    """
    columns = feature_columns(features)
    return {
        method: options
        for method, options in VARIANTS.items()
        if (group := ablated_group(method)) is None
        or (group in params.ablation_groups and group_columns(columns, group))
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


@dataclass(frozen=True)
class _Refit:
    fold: Fold
    method: str
    rows: np.ndarray  # training positions in ``features``
    test_rows: np.ndarray  # forecast positions in ``features``


def _plan_refits(
    features: pd.DataFrame,
    folds: list[Fold],
    targets: pd.DatetimeIndex,
    backtest: BacktestParams,
    methods: list[str],
) -> list[_Refit]:
    target_week = features["target_week"].to_numpy()
    origin_week = features["origin_week"].to_numpy()
    has_y = features["y"].notna().to_numpy()
    in_scope = np.isin(target_week, targets.to_numpy())
    ablation_h = backtest.ablation_horizons
    keep = None
    if ablation_h is not None:
        keep = np.isin(features["horizon"].to_numpy(), ablation_h)
    refits = []
    for fold in folds:
        train = np.flatnonzero(has_y & (target_week <= fold.cutoff.to_datetime64()))
        test = in_scope & (origin_week >= fold.cutoff.to_datetime64())
        test &= origin_week < fold.until.to_datetime64()
        for method in methods:
            rows, test_rows = train, np.flatnonzero(test)
            if method != "model" and keep is not None:
                rows, test_rows = rows[keep[rows]], test_rows[keep[test_rows]]
            refits.append(_Refit(fold, method, rows, test_rows))
    return refits


@dataclass(frozen=True)
class _Variant:
    """One variant's training matrix: every row any of its folds trains on."""

    columns: list[str]
    rounds: int | None
    x_file: str  # a column-major float32 ``.npy`` of the feature matrix of ``union``
    y: np.ndarray
    union: np.ndarray  # positions in ``features``


def _prepare_variant(
    features: pd.DataFrame,
    refits: list[_Refit],
    columns: list[str],
    model: ModelParams,
    rounds: int | None,
    folder: Path,
) -> tuple[_Variant, list[np.ndarray]]:
    """Write one variant's matrix to ``folder`` once; return it and each fold's rows in it."""
    y_all = features["y"].to_numpy(np.float64)
    fold_rows = [training_rows(y_all, r.rows, model) for r in refits]
    union = np.unique(np.concatenate(fold_rows))
    x_file = folder / f"{refits[0].method}.npy"
    np.save(x_file, feature_matrix(features, columns, union))
    variant = _Variant(list(columns), rounds, str(x_file), y_all[union], union)
    return variant, [np.searchsorted(union, rows) for rows in fold_rows]


def _fit_one(
    variant: _Variant,
    local: np.ndarray,
    horizons: np.ndarray,
    test_x: np.ndarray,
    model: ModelParams,
) -> tuple[str, float, np.ndarray]:
    """Fit one refit (in a worker process); return the booster as text, its dispersion, mu."""
    x = np.load(variant.x_file, mmap_mode="r")
    data = lgb.Dataset(x[local], label=variant.y[local], feature_name=variant.columns)
    booster = fit_booster(
        data, variant.columns, model, horizons=horizons, num_boost_round=variant.rounds
    )
    dispersion = fit_dispersion(booster, x, variant.y, seed=model.seed, rows=local)
    mu = np.asarray(booster.predict(test_x), dtype=np.float64)
    return booster.model_to_string(), dispersion, mu


def _forecast_frame(
    features: pd.DataFrame, refit: _Refit, mu: np.ndarray, dispersion: float, model: ModelParams
) -> pd.DataFrame:
    out = pd.DataFrame(nb_summary(mu, dispersion, tuple(model.interval)))
    out.insert(0, "method", refit.method)
    test = features.iloc[refit.test_rows]
    for key in ("area_code", "origin_week", "target_week", "horizon", "y", "y_ae"):
        out[key] = test[key].to_numpy()
    return out


def _fit_refits(
    features: pd.DataFrame,
    refits: list[_Refit],
    model: ModelParams,
    backtest: BacktestParams,
    folder: Path,
    advance: Callable[[str], None] | None,
    n_folds: int,
) -> dict[tuple[int, str], tuple[lgb.Booster, pd.DataFrame]]:
    """Fit every refit of every variant, side by side; key the results by (fold, method)."""
    horizon = features["horizon"].to_numpy()
    jobs = []  # (refit, variant, local rows), the model's (largest) fits first
    for method, options in VARIANTS.items():
        columns = feature_columns(features, **options)
        assert_no_sensitive(columns)
        rounds = None if method == "model" else backtest.ablation_rounds
        chosen = [r for r in refits if r.method == method]
        if not chosen:
            continue
        variant, locals_ = _prepare_variant(features, chosen, columns, model, rounds, folder)
        jobs += [(r, variant, local) for r, local in zip(chosen, locals_, strict=True)]
    n_jobs = max(backtest.n_jobs, 1)
    per_fit = model.model_copy(update={"num_threads": max(model.num_threads // n_jobs, 1)})
    calls = (
        delayed(_fit_one)(
            variant,
            local,
            horizon[variant.union[local]],
            feature_matrix(features, variant.columns, refit.test_rows),
            per_fit,
        )
        for refit, variant, local in jobs
    )
    results = {}
    pool = Parallel(n_jobs=n_jobs, backend="loky", return_as="generator", max_nbytes=None)
    for (refit, _, _), (text, dispersion, mu) in zip(jobs, pool(calls), strict=True):
        frame = _forecast_frame(features, refit, mu, dispersion, model)
        results[refit.fold.k, refit.method] = (lgb.Booster(model_str=text), frame)
        if advance is not None:
            advance(f"fold {refit.fold.k + 1} of {n_folds}: {refit.method}")
    return results


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
    chosen_variants = variants(features, backtest)
    refits = _plan_refits(features, folds, targets, backtest, list(chosen_variants))
    with tempfile.TemporaryDirectory(prefix="harmcast-backtest-") as folder:
        results = _fit_refits(features, refits, model, backtest, Path(folder), advance, len(folds))
    boosters = {k: b for (k, method), (b, _) in results.items() if method == "model"}
    kept = [Fold(f.k, f.cutoff, f.until, boosters[f.k]) for f in folds]
    order = [(f.k, method) for f in folds for method in chosen_variants]
    predictions = pd.concat([results[key][1] for key in order], ignore_index=True)
    predictions["horizon"] = predictions["horizon"].astype(int)
    return predictions, kept
