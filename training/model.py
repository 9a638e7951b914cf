"""The forecaster: one LightGBM Poisson booster over all horizons, NB intervals.

``horizon`` is a feature, so a single booster serves every horizon. The booster
gives the expected count ``mu``. Counts are over-dispersed, so intervals and the
chance of at least one event come from a negative binomial with variance
``mu + dispersion * mu**2``, where ``dispersion`` is fitted by the method of
moments on the training rows' in-sample residuals::

    dispersion = sum((y - mu)**2 - mu) / sum(mu**2)   (clipped to [1e-6, 10])

In-sample residuals are slightly smaller than out-of-sample ones, so the
intervals lean narrow; the backtest reports their realised coverage.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable
from pathlib import Path

import lightgbm as lgb
import numpy as np
import pandas as pd

from training.config import ModelParams
from training.errors import SchemaError
from training.features import assert_no_sensitive
from training.forecaster import (
    MAX_DISPERSION,
    META_FILE,
    MIN_DISPERSION,
    MISSING_FEATURE,
    MODEL_FILE,
    Forecaster,
    nb_summary,
)

__all__ = [
    "Forecaster",
    "fit_forecaster",
    "fit_booster",
    "fit_dispersion",
    "feature_matrix",
    "training_rows",
    "nb_summary",
    "lgb_params",
    "horizon_splits",
    "MODEL_FILE",
    "META_FILE",
    "MISSING_FEATURE",
    "NO_TARGET",
]

_DISPERSION_SAMPLE = 200_000

NO_TARGET = "no rows with an observed target to train on"


def lgb_params(params: ModelParams) -> dict:
    """Return the LightGBM parameter dict for :func:`lightgbm.train`."""
    return {
        "objective": "poisson",
        "learning_rate": params.learning_rate,
        "num_leaves": params.num_leaves,
        "min_data_in_leaf": params.min_data_in_leaf,
        "feature_fraction": params.feature_fraction,
        "bagging_fraction": params.bagging_fraction,
        "bagging_freq": params.bagging_freq,
        "lambda_l2": params.lambda_l2,
        "max_bin": params.max_bin,
        "num_threads": params.num_threads,
        "seed": params.seed,
        "deterministic": True,
        "force_col_wise": True,
        "verbosity": -1,
    }


def _forced_chain(index: int, thresholds: list[float]) -> dict:
    node: dict = {"feature": index, "threshold": thresholds[-1]}
    for threshold in reversed(thresholds[:-1]):
        node = {"feature": index, "threshold": threshold, "right": node}
    return node


def horizon_splits(columns: list[str], horizons: np.ndarray) -> str:
    """Return the forced-splits JSON that splits on ``horizon`` first, one leaf per horizon.

    ``horizons`` are the sorted distinct horizons of the training rows; the
    thresholds lie halfway between neighbours.
    """
    thresholds = [float(a + b) / 2 for a, b in zip(horizons[:-1], horizons[1:], strict=True)]
    return json.dumps(_forced_chain(columns.index("horizon"), thresholds))


def _split_by_horizon(
    settings: dict, columns: list[str], horizons: np.ndarray, folder: Path
) -> dict:
    """Force every tree to split on ``horizon`` first.

    One booster then holds one sub-model per horizon, fitted side by side: a
    shared booster let the long horizons dilute the short ones (measured on
    the default city), while separate boosters would split the model, its
    explanations and its registry entry in four. ``num_leaves`` is per
    horizon; column sampling moves to the node level because forced splits
    need the ``horizon`` column in every tree.
    """
    path = folder / "forced_splits.json"
    path.write_text(horizon_splits(columns, horizons))
    return {
        **settings,
        "forcedsplits_filename": str(path),
        "num_leaves": settings["num_leaves"] * len(horizons),
        "feature_fraction": 1.0,
        "feature_fraction_bynode": settings["feature_fraction"],
    }


def fit_forecaster(
    features: pd.DataFrame,
    columns: list[str],
    params: ModelParams,
    *,
    num_boost_round: int | None = None,
    rows: np.ndarray | None = None,
    on_round: Callable[[int, int], None] | None = None,
) -> Forecaster:
    """Fit the booster on rows with an observed ``y`` and the NB dispersion.

    At most ``params.max_train_rows`` rows are used, drawn at random (seeded):
    rows of neighbouring origins and horizons repeat much the same history, so
    a sample loses little and keeps the backtest's many refits fast.

    Parameters
    ----------
    features : rows from ``training.features.build_features``.
    columns : the feature columns to use (``feature_columns(features)``).
    params : LightGBM settings and interval levels.
    num_boost_round : overrides ``params.num_boost_round`` (the backtest's
        ablations may use fewer rounds).
    rows : positions (``iloc``) of the rows allowed for training (default: all);
        the backtest passes the rows whose target is known at a fold's cutoff.
    on_round : called as ``on_round(done, total)`` after each boosting round.

    Raises
    ------
    SchemaError
        When no allowed row has an observed ``y``.
    """
    assert_no_sensitive(columns)
    allowed = training_rows(features["y"].to_numpy(np.float64), rows, params)
    x = feature_matrix(features, columns, allowed)
    y = features["y"].to_numpy(np.float64)[allowed]
    data = lgb.Dataset(x, label=y, feature_name=list(columns), free_raw_data=True)
    horizons = features["horizon"].to_numpy()[allowed] if "horizon" in features.columns else None
    booster = fit_booster(
        data,
        columns,
        params,
        horizons=horizons,
        num_boost_round=num_boost_round,
        on_round=on_round,
    )
    dispersion = fit_dispersion(booster, x, y, seed=params.seed)
    return Forecaster(booster, tuple(columns), dispersion, tuple(params.interval), params)


def training_rows(y: np.ndarray, rows: np.ndarray | None, params: ModelParams) -> np.ndarray:
    """Return the sorted positions a fit trains on: allowed, with an observed ``y``, sampled.

    ``rows`` are the allowed positions (default: all). At most
    ``params.max_train_rows`` are kept, drawn at random with ``params.seed``.

    Raises
    ------
    SchemaError
        When no allowed row has an observed ``y``.
    """
    allowed = np.arange(len(y)) if rows is None else np.asarray(rows)
    allowed = allowed[~np.isnan(y[allowed])]
    if allowed.size == 0:
        raise SchemaError("features", NO_TARGET, field="y")
    if params.max_train_rows is not None and allowed.size > params.max_train_rows:
        rng = np.random.default_rng(params.seed)
        allowed = np.sort(rng.choice(allowed, params.max_train_rows, replace=False))
    return allowed


def feature_matrix(features: pd.DataFrame, columns: list[str], rows: np.ndarray) -> np.ndarray:
    """Return ``features[columns]`` at positions ``rows`` as a column-major float32 matrix.

    Column by column into a Fortran-ordered array (each write is contiguous;
    LightGBM reads column-major input without a copy): about as fast as
    ``features.iloc[rows][columns].to_numpy(np.float32)`` without first copying
    every column of the frame at its own (mostly float64) width.
    """
    x = np.empty((len(rows), len(columns)), dtype=np.float32, order="F")
    for j, column in enumerate(columns):
        x[:, j] = features[column].to_numpy()[rows]
    return x


def fit_booster(
    data: lgb.Dataset,
    columns: list[str],
    params: ModelParams,
    *,
    horizons: np.ndarray | None = None,
    num_boost_round: int | None = None,
    on_round: Callable[[int, int], None] | None = None,
) -> lgb.Booster:
    """Boost on ``data`` (a new ``Dataset``, or a ``subset`` of one binned with ``lgb_params``).

    ``horizons`` are the training rows' horizons; with ``split_by_horizon`` every
    tree splits on them first. ``on_round(done, total)`` is called after each round.
    """
    rounds = num_boost_round or params.num_boost_round
    callbacks = []
    if on_round is not None:
        callbacks.append(lambda env: on_round(env.iteration + 1, env.end_iteration))
    distinct = np.unique(horizons) if horizons is not None else np.array([])
    with tempfile.TemporaryDirectory(prefix="harmcast-lgb-") as tmp:
        settings = lgb_params(params)
        if params.split_by_horizon and "horizon" in columns and distinct.size > 1:
            settings = _split_by_horizon(settings, list(columns), distinct, Path(tmp))
        return lgb.train(settings, data, num_boost_round=rounds, callbacks=callbacks)


def fit_dispersion(
    booster: lgb.Booster,
    x: np.ndarray,
    y: np.ndarray,
    *,
    seed: int,
    rows: np.ndarray | None = None,
) -> float:
    """Method-of-moments NB dispersion on (a sample of) the training rows.

    ``rows`` picks the training rows out of ``x`` and ``y`` (default: all), so a
    caller holding a larger matrix need not copy the rows out first.
    """
    rows = np.arange(len(y)) if rows is None else np.asarray(rows)
    if len(rows) > _DISPERSION_SAMPLE:
        pick = np.random.default_rng(seed).choice(len(rows), _DISPERSION_SAMPLE, replace=False)
        rows = rows[pick]
    x, y = x[rows], y[rows]
    mu = np.asarray(booster.predict(x), dtype=np.float64)
    alpha = float(np.sum((y - mu) ** 2 - mu) / max(np.sum(mu**2), 1e-12))
    return float(np.clip(alpha, MIN_DISPERSION, MAX_DISPERSION))
