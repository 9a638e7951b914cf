"""Figures of a backtest (matplotlib, Agg): calibration, hit rate, PAI, error by week.

Each function takes frames and returns a new ``Figure``; the caller saves it.
All figures show horizon 1 (next week), the headline horizon.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from training.metrics.scores import calibration_by_decile, score_predictions

__all__ = [
    "backtest_figures",
    "calibration_figure",
    "coverage_curves_figure",
    "error_by_week_figure",
]

_HIGHLIGHT = {"model": "C3", "oracle": "k", "ablation_police_only": "C0"}
_CURVE_GRID = tuple(np.round(np.arange(0.01, 0.31, 0.01), 2))


def _style(method: str) -> dict:
    if method in _HIGHLIGHT:
        return {"color": _HIGHLIGHT[method], "lw": 2.2, "label": method}
    return {"lw": 1.0, "ls": "--", "alpha": 0.7, "label": method}


def backtest_figures(
    predictions: pd.DataFrame,
    per_week: pd.DataFrame,
    areas: pd.DataFrame,
    coverages: Sequence[float],
) -> dict[str, Figure]:
    """All backtest figures, by file stem."""
    h1 = predictions.loc[predictions["horizon"] == 1]
    curves = score_predictions(h1, areas, _CURVE_GRID)
    return {
        "calibration_by_decile": calibration_figure(calibration_by_decile(h1)),
        "hit_rate_by_coverage": coverage_curves_figure(curves, "hit_rate", "hit rate"),
        "pai_by_coverage": coverage_curves_figure(curves, "pai_area", "PAI (by area km2)"),
        "error_by_week": error_by_week_figure(per_week),
    }


def calibration_figure(calibration: pd.DataFrame) -> Figure:
    """Mean outcome against mean forecast per decile of the forecast."""
    fig = Figure(figsize=(6, 5))
    ax = fig.subplots()
    top = float(max(calibration["mean_mu"].max(), calibration["mean_y"].max()))
    ax.plot([0, top], [0, top], color="grey", lw=0.8)
    for method, rows in calibration.groupby("method"):
        ax.plot(rows["mean_mu"], rows["mean_y"], marker="o", ms=3, **_style(str(method)))
    ax.set(xlabel="mean forecast (decile)", ylabel="mean observed", title="Calibration, h=1")
    ax.legend(fontsize=7)
    return fig


def coverage_curves_figure(table: pd.DataFrame, prefix: str, label: str) -> Figure:
    """Plot a hot-spot metric against the share of the city selected."""
    grid = [c for c in _CURVE_GRID if f"{prefix}_{round(c * 100)}" in table.columns]
    fig = Figure(figsize=(6, 5))
    ax = fig.subplots()
    for _, row in table.iterrows():
        values = [row[f"{prefix}_{round(c * 100)}"] for c in grid]
        ax.plot(np.asarray(grid) * 100, values, **_style(str(row["method"])))
    ax.set(xlabel="share of the city selected (% of km2)", ylabel=label, title=f"{label}, h=1")
    ax.legend(fontsize=7)
    return fig


def error_by_week_figure(per_week: pd.DataFrame) -> Figure:
    """Mean Poisson deviance per target week."""
    fig = Figure(figsize=(8, 4))
    ax = fig.subplots()
    rows = per_week.loc[per_week["horizon"] == 1]
    for method, part in rows.groupby("method"):
        part = part.sort_values("target_week")
        ax.plot(part["target_week"], part["poisson_deviance"], **_style(str(method)))
    ax.set(xlabel="target week", ylabel="mean Poisson deviance", title="Error by week, h=1")
    ax.legend(fontsize=6, ncol=2)
    fig.autofmt_xdate()
    return fig
