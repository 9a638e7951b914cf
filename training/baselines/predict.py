"""The baselines crime analysts use, as forecasts in the ``predictions`` frame.

Every forecast made at an origin week uses panel data up to the end of that
week only. The panel is pivoted once to an areas x weeks matrix; rolling means
come from cumulative sums and the prospective hotspot from a recursive
exponential filter, so all origins are computed at once.

Methods (``METHODS``):

- ``last_week``, ``mean_4``, ``mean_13``: the last week, the mean of the last
  4 and 13 weeks up to the origin.
- ``prior_52``: the mean of the last 52 weeks, the hardest simple baseline in
  published comparisons.
- ``seasonal_naive``: the count in the same ISO week one ISO year before the
  target week (week 52 when that year has no week 53); ``prior_52`` when that
  week precedes the panel.
- ``prospective_hotspot`` (after Bowers, Johnson & Pease 2004): an
  exponentially weighted mean of past weekly counts (half-life a parameter),
  blended with the mean of the adjacent areas' with weight ``1/(1+d)`` for
  neighbours at distance ``d = 1``: ``(s_i + w mean_j s_j) / (1 + w)``.
- ``hawkes``: a grid self-exciting model (``training.baselines.hawkes``), refitted every
  ``refit_every`` weeks of origin on data up to the refit origin, predicting
  from the counts up to each origin.
- ``poisson_glm``: see ``training.baselines.fitted``.
- ``oracle``: the synthetic city's true expected count, when given.

Input errors (``SchemaError``) use the messages of ``training.baselines.grid``.
Horizon-free methods forecast the same ``mu`` at every horizon. ``q_lo``,
``q_hi`` and ``p_any`` come from a Poisson(``mu``) distribution, ``mu`` floored
at ``BaselineParams.mu_floor``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
import pandas as pd
from scipy import sparse, special
from scipy.signal import lfilter

from training.baselines.fitted import hawkes_forecasts, predict_glm
from training.baselines.grid import WEEK, Grid, build_grid, require_columns
from training.config import BaselineParams
from training.predictions import PREDICTION_COLUMNS

__all__ = [
    "METHODS",
    "PREDICTION_COLUMNS",
    "predict_baselines",
    "poisson_quantile",
]

METHODS = (
    "last_week",
    "mean_4",
    "mean_13",
    "prior_52",
    "seasonal_naive",
    "prospective_hotspot",
    "hawkes",
    "poisson_glm",
    "oracle",
)


def _window_means(grid: Grid, window: int) -> np.ndarray:
    """Mean of the last ``window`` weeks up to each origin (fewer at the panel start)."""
    cum = np.concatenate([np.zeros((grid.counts.shape[0], 1)), grid.counts.cumsum(axis=1)], axis=1)
    end = grid.origin_idx + 1
    start = np.maximum(end - window, 0)
    return (cum[:, end] - cum[:, start]) / (end - start)


def _seasonal_columns(grid: Grid) -> np.ndarray:
    """Column of the same ISO week one ISO year before each (origin, horizon) target."""
    out = np.empty((grid.origins.size, grid.horizons.size), dtype=int)
    for i, origin in enumerate(grid.origins):
        for j, h in enumerate(grid.horizons):
            iso = (origin + int(h) * WEEK).isocalendar()
            try:
                last_year = pd.Timestamp.fromisocalendar(iso.year - 1, iso.week, 1)
            except ValueError:  # week 53 in a year that has none
                last_year = pd.Timestamp.fromisocalendar(iso.year - 1, 52, 1)
            out[i, j] = (last_year - grid.weeks[0]) // WEEK
    return out


def _hotspot(grid: Grid, adjacency: pd.DataFrame, params: BaselineParams) -> np.ndarray:
    decay = 0.5 ** (1.0 / params.hotspot_half_life_weeks)
    weighted = lfilter([1.0], [1.0, -decay], grid.counts, axis=1)[:, grid.origin_idx]
    weights = lfilter([1.0], [1.0, -decay], np.ones(grid.counts.shape[1]))[grid.origin_idx]
    own = weighted / weights
    pos = pd.Index(grid.codes)
    rows = pos.get_indexer(adjacency["area_code"].astype(str))
    cols = pos.get_indexer(adjacency["neighbour_code"].astype(str))
    keep = (rows >= 0) & (cols >= 0) & (rows != cols)
    n = grid.codes.size
    adj = sparse.csr_matrix((np.ones(keep.sum()), (rows[keep], cols[keep])), shape=(n, n))
    adj.data[:] = 1.0  # duplicated pairs count once
    degree = np.asarray(adj.sum(axis=1)).ravel()
    neighbour_mean = (adj @ own) / np.maximum(degree, 1.0)[:, None]
    w = np.where(degree > 0, params.hotspot_neighbour_weight, 0.0)[:, None]
    return (own + w * neighbour_mean) / (1.0 + w)


def _hawkes(grid: Grid, params: BaselineParams) -> np.ndarray:
    return hawkes_forecasts(
        grid.counts,
        grid.origin_idx,
        grid.horizons,
        refit_every=params.refit_every,
        max_iter=params.hawkes_max_iter,
        tol=params.hawkes_tol,
        season_period=params.hawkes_season_period,
    )


def _point_forecasts(grid: Grid, adjacency: pd.DataFrame, params: BaselineParams) -> dict:
    n_h = grid.horizons.size
    prior = _window_means(grid, 52)
    seasonal_cols = _seasonal_columns(grid)
    seasonal = grid.counts[:, np.maximum(seasonal_cols, 0)]
    seasonal = np.where(seasonal_cols[None] >= 0, seasonal, prior[:, :, None])
    flat = {
        "last_week": grid.counts[:, grid.origin_idx],
        "mean_4": _window_means(grid, 4),
        "mean_13": _window_means(grid, 13),
        "prior_52": prior,
        "prospective_hotspot": _hotspot(grid, adjacency, params),
    }
    out = {name: np.repeat(value[:, :, None], n_h, axis=2) for name, value in flat.items()}
    out["seasonal_naive"] = seasonal
    return out


def _glm(grid: Grid, features, columns, params: BaselineParams, prior: np.ndarray) -> np.ndarray:
    glm = predict_glm(
        features,
        columns,
        grid.origins,
        grid.horizons,
        alpha=params.glm_alpha,
        max_iter=params.glm_max_iter,
        refit_every=params.refit_every,
        threads=params.threads,
    )
    out = prior.copy()  # the fallback where the GLM has no row or no training data yet
    a = pd.Index(grid.codes).get_indexer(glm["area_code"].astype(str))
    o = grid.origins.get_indexer(glm["origin_week"])
    h = pd.Index(grid.horizons).get_indexer(glm["horizon"])
    ok = (a >= 0) & (o >= 0) & (h >= 0) & glm["mu"].notna().to_numpy()
    out[a[ok], o[ok], h[ok]] = glm["mu"].to_numpy()[ok]
    return out


def poisson_quantile(q: float, mu: np.ndarray) -> np.ndarray:
    """Smallest ``k`` with ``P(Poisson(mu) <= k) >= q``, as ``scipy.stats.poisson.ppf``.

    Starts from the normal approximation and steps to the exact value, which is
    about twenty times faster than ``scipy.stats.poisson.ppf`` on a million values.
    """
    mu = np.asarray(mu, dtype=float)
    z = float(np.sqrt(2.0) * special.erfinv(2.0 * q - 1.0))
    k = np.maximum(np.floor(mu + z * np.sqrt(mu)), 0.0)
    for _ in range(64):
        up = special.pdtr(k, mu) < q
        if not up.any():
            break
        k = k + up
    for _ in range(64):
        down = (k > 0) & (special.pdtr(k - 1, mu) >= q)
        if not down.any():
            break
        k = k - down
    return k


def _rows(grid: Grid, method: str, mu: np.ndarray) -> pd.DataFrame:
    """Flatten an areas x origins x horizons array to prediction rows."""
    n_a, n_o, n_h = mu.shape
    target_idx = grid.origin_idx[:, None] + grid.horizons[None, :]
    inside = target_idx < grid.weeks.size
    safe = np.minimum(target_idx, grid.weeks.size - 1)
    truth = grid.counts if grid.observed is None else grid.observed
    y = np.where(inside[None], truth[:, safe], np.nan)
    y_ae = np.where(inside[None], grid.ae[:, safe], np.nan)
    origin = np.repeat(grid.origins.to_numpy(), n_h * n_a)
    horizon = np.tile(np.repeat(grid.horizons, n_a), n_o)
    return pd.DataFrame(
        {
            "method": method,
            "area_code": np.tile(grid.codes, n_o * n_h),
            "origin_week": origin,
            "target_week": origin + pd.to_timedelta(horizon * 7, unit="D").to_numpy(),
            "horizon": horizon,
            "mu": mu.transpose(1, 2, 0).ravel(),
            "y": y.transpose(1, 2, 0).ravel(),
            "y_ae": y_ae.transpose(1, 2, 0).ravel(),
        }
    )


def _oracle_rows(template: pd.DataFrame, oracle: pd.DataFrame) -> pd.DataFrame:
    require_columns(oracle, "oracle", ["area_code", "week_start", "expected_violence"])
    truth = pd.DataFrame(
        {
            "area_code": oracle["area_code"].astype(str),
            "target_week": pd.to_datetime(oracle["week_start"]).dt.normalize(),
            "oracle_mu": oracle["expected_violence"].astype(float),
        }
    ).drop_duplicates(["area_code", "target_week"])
    rows = template.drop(columns="mu").merge(truth, on=["area_code", "target_week"], how="inner")
    return rows.rename(columns={"oracle_mu": "mu"}).assign(method="oracle")


def predict_baselines(
    panel: pd.DataFrame,
    adjacency: pd.DataFrame,
    origin_weeks: Iterable,
    horizons: Iterable[int],
    *,
    glm_features: pd.DataFrame | None = None,
    glm_columns: Sequence[str] | None = None,
    oracle: pd.DataFrame | None = None,
    params: BaselineParams | None = None,
    methods: Sequence[str] | None = None,
) -> pd.DataFrame:
    """Forecast every area at each origin week and horizon with the analysts' baselines.

    Parameters
    ----------
    panel : the area x week panel (``area_code``, ``week_start``, ``violence``,
        ``ae_assault``...). Missing (area, week) rows count as zero.
    adjacency : ``area_code``, ``neighbour_code`` (for the prospective hotspot).
    origin_weeks : the Mondays forecasts are made at; each must be a panel week.
    horizons : weeks ahead, 1 to 52.
    glm_features : the ``features`` frame; ``poisson_glm`` is produced only when it
        and ``glm_columns`` are given.
    glm_columns : the feature columns the GLM uses (lags and static layers).
    oracle : ``area_code``, ``week_start``, ``expected_violence``; adds ``oracle`` rows
        for the target weeks it covers.
    params : baseline settings (defaults when None).
    methods : restrict to these methods (default: all that can be produced).

    Returns
    -------
    pandas.DataFrame
        The ``predictions`` frame (``PREDICTION_COLUMNS``); ``y``/``y_ae`` are NaN for
        target weeks beyond the panel.

    Raises
    ------
    SchemaError
        When the panel lacks a column, has duplicates, negative or missing counts,
        non-Monday weeks, or does not contain an origin week.
    """
    params = params or BaselineParams()
    wanted = set(methods or METHODS)
    grid = build_grid(panel, origin_weeks, horizons)
    require_columns(adjacency, "adjacency", ["area_code", "neighbour_code"])
    point = _point_forecasts(grid, adjacency, params)
    if "hawkes" in wanted:
        point["hawkes"] = _hawkes(grid, params)
    if "poisson_glm" in wanted and glm_features is not None and glm_columns:
        point["poisson_glm"] = _glm(grid, glm_features, glm_columns, params, point["prior_52"])
    frames = [_rows(grid, name, mu) for name, mu in point.items() if name in wanted]
    if oracle is not None and "oracle" in wanted:
        template = frames[0] if frames else _rows(grid, "oracle", point["last_week"])
        frames.append(_oracle_rows(template, oracle))
    predictions = pd.concat(frames, ignore_index=True)
    mu = np.maximum(predictions["mu"].to_numpy(dtype=float), params.mu_floor)
    lo, hi = params.interval
    predictions["mu"] = mu
    predictions["q_lo"] = poisson_quantile(lo, mu)
    predictions["q_hi"] = poisson_quantile(hi, mu)
    predictions["p_any"] = -np.expm1(-mu)
    return predictions[PREDICTION_COLUMNS]
