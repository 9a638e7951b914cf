"""The fitted baselines: a grid Hawkes model and a Poisson GLM, refitted as origins move.

Both refit when the origin has moved ``refit_every`` weeks or more since the
last fit and use only data available at the refit origin; forecasts between
refits use the latest fit with the data up to their own origin.

The GLM (``sklearn.linear_model.PoissonRegressor``) is fitted per horizon on the
``features`` rows whose target week is at or before the refit origin (only
those outcomes are known then). Non-negative inputs (counts, rates, areas) are
``log1p``-transformed before standardising, because a log link on raw counts
would make the forecast grow exponentially with them; missing inputs take the
training median.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pandas as pd
from sklearn.linear_model import PoissonRegressor
from threadpoolctl import threadpool_limits

from training.baselines.hawkes import HawkesModel, fit_grid_hawkes
from training.errors import SchemaError

__all__ = ["refit_schedule", "hawkes_forecasts", "predict_glm", "MISSING_FEATURES"]

MISSING_FEATURES = "missing column(s) {columns}"
_MIN_TRAIN_ROWS = 20


def refit_schedule(origin_idx: np.ndarray, every: int) -> np.ndarray:
    """Week index each origin's model is fitted at, for sorted origin week indices."""
    fitted_at = np.empty_like(np.asarray(origin_idx))
    last = None
    for i, t in enumerate(origin_idx):
        if last is None or t - last >= every:
            last = t
        fitted_at[i] = last
    return fitted_at


def hawkes_forecasts(
    counts: np.ndarray,
    origin_idx: np.ndarray,
    horizons: np.ndarray,
    *,
    refit_every: int,
    max_iter: int,
    tol: float,
    season_period: int | None,
) -> np.ndarray:
    """Hawkes forecasts, areas x origins x horizons, each from data up to its origin."""
    out = np.empty((counts.shape[0], len(origin_idx), len(horizons)))
    fitted_at = refit_schedule(origin_idx, refit_every)
    model: HawkesModel | None = None
    last_fit = None
    for i, t in enumerate(origin_idx):
        if fitted_at[i] != last_fit:
            model = fit_grid_hawkes(
                counts[:, : fitted_at[i] + 1],
                max_iter=max_iter,
                tol=tol,
                season_period=season_period,
                init=model,  # a warm start from the previous window
            )
            last_fit = fitted_at[i]
        for j, h in enumerate(horizons):
            out[:, i, j] = model.intensity(counts[:, : t + 1], int(h))
    return out


class _Inputs:
    """log1p on columns non-negative in training, median imputation, standardising.

    ``logged`` is ``log1p(max(x, 0))`` of the same rows as ``x``, computed once
    per horizon by the caller: each refit then picks its columns out of it
    rather than taking logarithms again (the same values, bit for bit).
    """

    def fit_transform(self, x: np.ndarray, logged: np.ndarray) -> np.ndarray:
        """Fit on the training inputs and return them transformed."""
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns
            self.log_ = np.nanmin(np.where(np.isnan(x), np.inf, x), axis=0) >= 0
            z = self._pick(x, logged)
            self.median_ = np.nan_to_num(_column_medians(z))
            z = np.where(np.isnan(z), self.median_, z)
            self.mean_ = z.mean(axis=0)
            std = z.std(axis=0)
        self.scale_ = np.where(std > 0, std, 1.0)
        return (z - self.mean_) / self.scale_

    def _pick(self, x: np.ndarray, logged: np.ndarray) -> np.ndarray:
        return np.where(self.log_, logged, x)

    def transform(self, x: np.ndarray, logged: np.ndarray) -> np.ndarray:
        z = self._pick(x, logged)
        z = np.where(np.isnan(z), self.median_, z)
        return (z - self.mean_) / self.scale_


def _column_medians(z: np.ndarray) -> np.ndarray:
    """``np.nanmedian(z, axis=0)``: one vectorised median over the columns without NaN."""
    gaps = np.isnan(z).any(axis=0)
    out = np.empty(z.shape[1])
    if (~gaps).any():
        out[~gaps] = np.median(z[:, ~gaps], axis=0)
    for j in np.flatnonzero(gaps):
        out[j] = np.nanmedian(z[:, j])
    return out


def _log_inputs(x: np.ndarray) -> np.ndarray:
    """``log1p(max(x, 0))``, NaN kept."""
    with np.errstate(invalid="ignore"):
        return np.log1p(np.maximum(x, 0.0))


def _fit(x: np.ndarray, logged: np.ndarray, y: np.ndarray, alpha: float, max_iter: int):
    inputs = _Inputs()
    z = inputs.fit_transform(x, logged)
    model = PoissonRegressor(alpha=alpha, max_iter=max_iter, solver="newton-cholesky")
    model.fit(z, y)
    return inputs, model


def predict_glm(
    features: pd.DataFrame,
    columns: Sequence[str],
    origins: pd.DatetimeIndex,
    horizons: Sequence[int],
    *,
    alpha: float,
    max_iter: int,
    refit_every: int,
    threads: int = 1,
) -> pd.DataFrame:
    """Poisson GLM forecasts for the ``features`` rows at the given origins.

    ``threads`` refits of a horizon run side by side (one BLAS thread each).

    Returns
    -------
    pandas.DataFrame
        ``area_code``, ``origin_week``, ``horizon``, ``mu``. An (origin, horizon)
        without enough known outcomes to fit yet has no rows.
    """
    columns = list(columns)
    needed = ["area_code", "origin_week", "target_week", "horizon", "y", *columns]
    missing = [c for c in needed if c not in features.columns]
    if missing:
        raise SchemaError("features", MISSING_FEATURES.format(columns=", ".join(missing)))
    origins = pd.DatetimeIndex(origins)
    week_no = ((origins - origins[0]) // pd.Timedelta(weeks=1)).to_numpy()
    fitted_at = origins[0] + pd.to_timedelta(refit_schedule(week_no, refit_every) * 7, unit="D")
    target_week = pd.to_datetime(features["target_week"]).to_numpy()
    origin_week = pd.to_datetime(features["origin_week"]).to_numpy()
    y_all = features["y"].to_numpy(dtype=float)
    observed = ~np.isnan(y_all)
    area_code = features["area_code"].astype(str).to_numpy()
    horizon = features["horizon"].to_numpy()
    out = []
    for h in horizons:
        rows = np.flatnonzero(horizon == h)
        # each horizon's inputs are read out of the frame (and logged) once, not per refit
        x = features[columns].iloc[rows].to_numpy(dtype=float)
        logged = _log_inputs(x)

        def run(fit_week: pd.Timestamp, h=h, rows=rows, x=x, logged=logged) -> pd.DataFrame | None:
            known = np.flatnonzero((target_week[rows] <= fit_week.to_datetime64()) & observed[rows])
            y = y_all[rows[known]]
            if len(known) < _MIN_TRAIN_ROWS or y.sum() <= 0:
                return None
            served = origins[fitted_at == fit_week].to_numpy()
            test = np.flatnonzero(np.isin(origin_week[rows], served))
            if test.size == 0:
                return None
            inputs, model = _fit(x[known], logged[known], y, alpha, max_iter)
            mu = model.predict(inputs.transform(x[test], logged[test]))
            return pd.DataFrame(
                {
                    "area_code": area_code[rows[test]],
                    "origin_week": origin_week[rows[test]],
                    "horizon": int(h),
                    "mu": mu,
                }
            )

        # A horizon's refits are independent: side by side on ``threads`` threads, each
        # with one BLAS thread (set once around them all, so each fit runs as it would alone).
        with threadpool_limits(limits=1), ThreadPoolExecutor(max(threads, 1)) as pool:
            fits = pool.map(run, pd.DatetimeIndex(fitted_at).unique())
            out += [frame for frame in fits if frame is not None]
    if not out:
        return pd.DataFrame({"area_code": [], "origin_week": [], "horizon": [], "mu": []})
    return pd.concat(out, ignore_index=True)
