"""Figures of the governance audit (matplotlib, Agg backend)."""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import shap

__all__ = ["plot_fairness", "plot_shap_summary"]


def plot_fairness(
    ratios: pd.DataFrame, *, band: tuple[float, float], metrics: list[str], path: Path
) -> Path:
    """Each group's ratio to its reference, with its interval and the policy band.

    One panel per (grouping, metric); a log x axis so 0.8 and 1.25 sit evenly
    around parity. Failed gated ratios are red, reported-only ones grey.
    """
    groupings = list(dict.fromkeys(ratios["grouping"]))
    fig, axes = plt.subplots(
        len(groupings),
        len(metrics),
        squeeze=False,
        sharex=True,
        figsize=(3.2 * len(metrics), 0.6 + 0.9 * max(2, len(groupings)) * 1.6),
    )
    for i, grouping in enumerate(groupings):
        for j, metric in enumerate(metrics):
            ax = axes[i][j]
            sub = ratios[(ratios["grouping"] == grouping) & (ratios["metric"] == metric)]
            ax.axvspan(*band, color="tab:green", alpha=0.12)
            ax.axvline(1.0, color="black", lw=0.6)
            ypos = np.arange(len(sub))
            value = sub["ratio"].clip(0.1, 10).to_numpy(float)
            low = sub["ci_low"].clip(0.1, 10).fillna(sub["ratio"]).to_numpy(float)
            high = sub["ci_high"].clip(0.1, 10).fillna(sub["ratio"]).to_numpy(float)
            colors = [
                "grey" if not g else ("tab:blue" if p else "tab:red")
                for g, p in zip(sub["gated"], sub["passed"], strict=True)
            ]
            ax.errorbar(
                value,
                ypos,
                xerr=[np.maximum(value - low, 0), np.maximum(high - value, 0)],
                fmt="none",
                ecolor="grey",
                lw=1,
            )
            ax.scatter(value, ypos, c=colors, zorder=3, s=18)
            ax.set_yticks(ypos, sub["group"].astype(str).tolist(), fontsize=7)
            ax.set_xscale("log")
            ax.set_xlim(0.1, 10)
            if i == 0:
                ax.set_title(metric, fontsize=9)
            if j == 0:
                ref = sub["reference"].iloc[0] if len(sub) else ""
                ax.set_ylabel(f"{grouping}\n(vs {ref})", fontsize=8)
    fig.suptitle("Group / reference ratio (band shaded; red = failed gated check)", fontsize=10)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def plot_shap_summary(
    values: np.ndarray, sample: pd.DataFrame, *, path: Path, max_display: int = 15
) -> Path:
    """Draw the SHAP beeswarm summary of the sample (raw, log-link scale)."""
    shap.summary_plot(values, sample, show=False, max_display=max_display, plot_size=(7, 5))
    fig = plt.gcf()
    fig.suptitle("SHAP values (log scale of the forecast)", fontsize=10)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100, bbox_inches="tight")
    plt.close(fig)
    return path
