"""Scores for the ``predictions`` frame: accuracy, calibration and hot-spot capture.

Rows whose outcome ``y`` is not yet observed (NaN) are left out. ``mu`` is
floored at ``mu_floor`` before the Poisson deviance, as scikit-learn's
``mean_poisson_deviance`` requires strictly positive predictions. Hot-spot
metrics (hit rate, PAI, PEI: see ``training.metrics.hotspot``) are computed per
target week and averaged over the weeks with at least one incident.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy.special import xlogy

from training.errors import SchemaError
from training.metrics.hotspot import HOTSPOT_PREFIXES, coverage_label, hotspot_metrics
from training.predictions import prediction_columns

__all__ = [
    "score_predictions",
    "per_week_metrics",
    "calibration_by_decile",
    "paired_bootstrap",
    "best_baseline",
    "oracle_capture",
    "coverage_label",
    "MISSING_COLUMNS",
    "UNKNOWN_AREAS",
    "BAD_KM2",
    "NO_COMMON_WEEKS",
    "METRIC_NOT_FOUND",
]

MISSING_COLUMNS = "missing column(s) {columns}"
UNKNOWN_AREAS = "{n} area code(s) of the predictions are not in the areas table, first {first}"
BAD_KM2 = "area_km2 must be positive and finite, first bad area {first}"
NO_COMMON_WEEKS = "methods {a!r} and {b!r} share no week with a finite {metric!r}"
METRIC_NOT_FOUND = "no rows for metric {metric!r} of method(s) {methods}"
_KEYS = ["method", "horizon", "target_week"]
_PREDICTION_COLUMNS = prediction_columns(
    "method", "area_code", "horizon", "target_week", "mu", "y", "p_any"
)


def _observed(predictions: pd.DataFrame, areas: pd.DataFrame | None, mu_floor: float):
    missing = [c for c in _PREDICTION_COLUMNS if c not in predictions.columns]
    if missing:
        raise SchemaError("predictions", MISSING_COLUMNS.format(columns=", ".join(missing)))
    frame = predictions.loc[predictions["y"].notna()].copy()
    frame["mu"] = np.maximum(frame["mu"].to_numpy(dtype=float), mu_floor)
    if areas is None:
        return frame
    for column in ("area_code", "area_km2"):
        if column not in areas.columns:
            raise SchemaError("areas", MISSING_COLUMNS.format(columns=column))
    km2 = areas.drop_duplicates("area_code").set_index("area_code")["area_km2"].astype(float)
    bad = km2.index[~(np.isfinite(km2) & (km2 > 0))]
    if len(bad):
        raise SchemaError("areas", BAD_KM2.format(first=bad[0]), field="area_km2")
    frame["area_km2"] = frame["area_code"].map(km2).to_numpy()
    unknown = frame.loc[frame["area_km2"].isna(), "area_code"].unique()
    if len(unknown):
        raise SchemaError("areas", UNKNOWN_AREAS.format(n=len(unknown), first=unknown[0]))
    return frame


def _row_errors(frame: pd.DataFrame) -> pd.DataFrame:
    y, mu = frame["y"].to_numpy(float), frame["mu"].to_numpy(float)
    errors = {
        "poisson_deviance": 2.0 * (xlogy(y, y / mu) - y + mu),
        "mae": np.abs(y - mu),
        "mse": (y - mu) ** 2,
        "brier": (frame["p_any"].to_numpy(float) - (y >= 1)) ** 2,
    }
    if {"q_lo", "q_hi"} <= set(frame.columns):
        inside = (y >= frame["q_lo"].to_numpy(float)) & (y <= frame["q_hi"].to_numpy(float))
        errors["interval_coverage"] = inside.astype(float)
    return frame[_KEYS].assign(**errors)


def per_week_metrics(
    predictions: pd.DataFrame,
    areas: pd.DataFrame,
    coverages: Sequence[float] = (0.01, 0.05, 0.10, 0.20),
    *,
    mu_floor: float = 1e-6,
) -> pd.DataFrame:
    """Return metrics per (method, horizon, target week), for the bootstrap and plots.

    Returns
    -------
    pandas.DataFrame
        ``method``, ``horizon``, ``target_week``, ``n_areas``, ``incidents``, the
        weekly means of ``poisson_deviance``, ``mae``, ``brier``,
        ``interval_coverage``, ``rmse`` and the hot-spot metrics per coverage.
    """
    frame = _observed(predictions, areas, mu_floor)
    weekly = _row_errors(frame).groupby(_KEYS, sort=True).mean().reset_index()
    weekly["rmse"] = np.sqrt(weekly.pop("mse"))
    hot = hotspot_metrics(frame, coverages)
    return hot.merge(weekly, on=_KEYS, how="left")


def score_predictions(
    predictions: pd.DataFrame,
    areas: pd.DataFrame,
    coverages: Sequence[float] = (0.01, 0.05, 0.10, 0.20),
    *,
    mu_floor: float = 1e-6,
) -> pd.DataFrame:
    """Score each (method, horizon).

    Parameters
    ----------
    predictions : the ``predictions`` frame.
    areas : ``area_code``, ``area_km2`` for every predicted area.
    coverages : the shares of the city selected for hot-spot metrics.
    mu_floor : the smallest ``mu`` used in the deviance.

    Returns
    -------
    pandas.DataFrame
        ``method``, ``horizon``, ``n`` (scored rows), ``poisson_deviance`` (mean unit
        deviance), ``mae``, ``rmse``, ``brier``, ``interval_coverage``, ``weeks``,
        ``weeks_without_incidents`` and, per coverage, the means over weeks with
        incidents of ``hit_rate_{c}``, ``pai_area_{c}``, ``pai_count_{c}``, ``pei_{c}``
        (plus ``hit_rate_count_{c}`` and ``pei_area_{c}``).
    """
    frame = _observed(predictions, areas, mu_floor)
    errors = _row_errors(frame).drop(columns="target_week")
    grouped = errors.groupby(["method", "horizon"], sort=True)
    table = grouped.mean()
    table.insert(0, "n", grouped.size())
    table["rmse"] = np.sqrt(table.pop("mse"))
    hot = hotspot_metrics(frame, coverages)
    hot_cols = [c for c in hot.columns if c.startswith(HOTSPOT_PREFIXES)]
    by_week = hot.groupby(["method", "horizon"], sort=True)
    table["weeks"] = by_week.size()
    table["weeks_without_incidents"] = by_week["incidents"].apply(lambda s: int((s <= 0).sum()))
    table = table.join(by_week[hot_cols].mean())  # NaN weeks (no incident) are skipped
    return table.reset_index()


def calibration_by_decile(predictions: pd.DataFrame, *, mu_floor: float = 1e-6) -> pd.DataFrame:
    """Return mean forecast and mean outcome per decile of ``mu``, by method and horizon.

    Deciles are of the rank of ``mu`` (ties split by row order), so each holds a
    tenth of the rows even when many forecasts are equal.
    """
    frame = _observed(predictions, None, mu_floor)
    rank = frame.groupby(["method", "horizon"])["mu"].rank(method="first", pct=True)
    frame["decile"] = np.minimum(np.ceil(rank * 10), 10).astype(int)
    grouped = frame.groupby(["method", "horizon", "decile"], sort=True)
    return grouped.agg(mean_mu=("mu", "mean"), mean_y=("y", "mean"), n=("y", "size")).reset_index()


def paired_bootstrap(
    per_week: pd.DataFrame,
    metric: str,
    method_a: str,
    method_b: str,
    *,
    n_boot: int = 1000,
    seed: int = 0,
    greater_is_better: bool = True,
    level: float = 0.95,
    horizon: int | None = None,
) -> dict:
    """Bootstrap the difference ``a - b`` of a weekly metric, resampling weeks in pairs.

    Target weeks are drawn with replacement, each with all of its horizons (the
    forecasts of one target week share its outcomes); both methods are scored
    on the same draws. Weeks where either method's metric is NaN (no
    incident) are left out.

    Returns
    -------
    dict
        ``estimate`` (mean difference), ``ci_low``, ``ci_high`` (percentile interval
        at ``level``), ``p_value`` (two-sided: twice the smaller share of bootstrap
        differences on either side of 0), ``a_better`` (the interval excludes 0 on
        the side where ``a`` is better) and ``n_weeks``.
    """
    rows = per_week if horizon is None else per_week.loc[per_week["horizon"] == horizon]
    rows = rows.loc[rows["method"].isin([method_a, method_b])]
    if metric not in rows.columns or rows.empty:
        raise KeyError(METRIC_NOT_FOUND.format(metric=metric, methods=[method_a, method_b]))
    wide = rows.pivot_table(index=["horizon", "target_week"], columns="method", values=metric)
    if method_a not in wide.columns or method_b not in wide.columns:
        raise KeyError(METRIC_NOT_FOUND.format(metric=metric, methods=[method_a, method_b]))
    diff = (wide[method_a] - wide[method_b]).dropna()
    if diff.size == 0:
        raise ValueError(NO_COMMON_WEEKS.format(a=method_a, b=method_b, metric=metric))
    # One draw is a target week with all its horizons: they share the same outcomes.
    by_week = diff.groupby(level="target_week").agg(["sum", "size"])
    sums, sizes = by_week["sum"].to_numpy(), by_week["size"].to_numpy()
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, len(sums), size=(n_boot, len(sums)))
    boot = sums[draws].sum(axis=1) / sizes[draws].sum(axis=1)
    alpha = (1.0 - level) / 2.0
    low, high = np.quantile(boot, [alpha, 1.0 - alpha])
    p_value = min(1.0, 2.0 * min(np.mean(boot <= 0), np.mean(boot >= 0)))
    return {
        "estimate": float(diff.mean()),
        "ci_low": float(low),
        "ci_high": float(high),
        "p_value": float(p_value),
        "a_better": bool(low > 0) if greater_is_better else bool(high < 0),
        "n_weeks": int(len(sums)),
    }


def _metric_by_method(table: pd.DataFrame, metric: str, horizon: int | None) -> pd.Series:
    rows = table if horizon is None else table.loc[table["horizon"] == horizon]
    if metric not in rows.columns:
        raise KeyError(METRIC_NOT_FOUND.format(metric=metric, methods="any"))
    return rows.groupby("method")[metric].mean()


def best_baseline(
    table: pd.DataFrame,
    metric: str,
    baselines: Sequence[str],
    greater_is_better: bool,
    *,
    horizon: int | None = None,
) -> str:
    """Return the baseline with the best ``metric`` (averaged over horizons unless one is given)."""
    values = _metric_by_method(table, metric, horizon)
    values = values.loc[values.index.isin(list(baselines))].dropna()
    if values.empty:
        raise KeyError(METRIC_NOT_FOUND.format(metric=metric, methods=list(baselines)))
    return str(values.idxmax() if greater_is_better else values.idxmin())


def oracle_capture(
    table: pd.DataFrame,
    metric: str,
    model: str,
    best_baseline: str,
    oracle: str,
    *,
    horizon: int | None = None,
) -> float:
    """Return the share of the baseline-to-oracle gap the model closes.

    ``(model - baseline) / (oracle - baseline)`` on ``metric`` averaged over
    horizons (or at ``horizon``): 0 is no better than the baseline, 1 is as good as
    the true expected counts. NaN when the oracle equals the baseline.
    """
    values = _metric_by_method(table, metric, horizon)
    missing = [m for m in (model, best_baseline, oracle) if m not in values.index]
    if missing:
        raise KeyError(METRIC_NOT_FOUND.format(metric=metric, methods=missing))
    gap = values[oracle] - values[best_baseline]
    if gap == 0 or not np.isfinite(gap):
        return float("nan")
    return float((values[model] - values[best_baseline]) / gap)
