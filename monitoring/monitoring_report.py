"""The monitoring report: one self-contained HTML page over the whole log.

Plots (matplotlib, Agg, embedded as base64 PNG): accuracy over the weeks
(hit rate, PAI and calibration, weekly and pooled), calibration by audit group
relative to the reference group (latest window), and input drift per source.
"""

from __future__ import annotations

import base64
import datetime as dt
import io
from pathlib import Path

import jinja2
import matplotlib.dates as mdates
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from governance.policy import Policy
from training.disclosure import suppress_small

__all__ = ["TEMPLATE", "REPORT_FILE", "monitoring_figures", "render_report"]

TEMPLATE = Path(__file__).with_name("templates") / "monitoring_report.html.j2"
REPORT_FILE = "monitoring_report.html"
_TITLES = {
    "accuracy": "Accuracy over the weeks",
    "groups": "Calibration by audit group (relative to the reference group, latest window)",
    "drift": "Input drift per source (how unlikely each week's count is, -log10 p)",
}


def _series(entries: list[dict], section: str, key: str) -> pd.Series:
    values = {pd.Timestamp(e["week"]): (e.get(section) or {}).get(key) for e in entries}
    return pd.Series(values, dtype="float64").sort_index()


def _date_axis(ax) -> None:
    # few, short labels: tick layout dominates the cost of drawing these figures
    locator = mdates.AutoDateLocator()
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))


def _accuracy(entries: list[dict], policy: Policy) -> Figure:
    fig = Figure(figsize=(9, 6.5))
    axes = fig.subplots(3, 1, sharex=True)
    mon = policy.monitoring
    for ax, key, label in zip(axes, ("hit_rate", "pai", "calibration"),
                              ("hit rate", "PAI", "calibration"), strict=True):  # fmt: skip
        ax.plot(_series(entries, "score", key), "o", ms=3, color="0.6", label="week")
        ax.plot(_series(entries, "window", key), "-", color="C3", lw=2, label="pooled window")
        ax.set_ylabel(label)
    axes[1].axhline(mon.min_pai, color="k", ls="--", lw=1, label="policy minimum")
    for bound in mon.calibration_band:
        axes[2].axhline(bound, color="k", ls="--", lw=1)
    axes[0].legend(loc="upper left", fontsize=8)
    axes[2].set_xlabel("week")
    _date_axis(axes[2])
    fig.subplots_adjust(left=0.09, right=0.98, top=0.97, bottom=0.08, hspace=0.12)
    return fig


def _groups(entries: list[dict], policy: Policy) -> Figure | None:
    ratios = (entries[-1].get("window") or {}).get("group_ratios") or {}
    bars = [(f"{g}: {label}", r) for g, d in ratios.items() for label, r in d.items()]
    if not bars:
        return None
    fig = Figure(figsize=(8, 0.35 * len(bars) + 1.5))
    ax = fig.subplots()
    names, values = zip(*bars, strict=True)
    low, high = policy.fairness.band
    colours = ["C3" if not low <= v <= high else "C0" for v in values]
    ax.barh(names, values, color=colours)
    for bound in (low, 1.0, high):
        ax.axvline(bound, color="k", ls="--" if bound != 1.0 else "-", lw=1)
    ax.set_xlabel("calibration ratio to reference group")
    fig.subplots_adjust(left=0.3, right=0.97, top=0.95, bottom=0.6 / (0.35 * len(bars) + 1.5))
    return fig


def _drift(entries: list[dict], policy: Policy) -> Figure:
    rows = [{"week": pd.Timestamp(e["week"]), "source": d["source"], "p": d.get("count_p")}
            for e in entries for d in e.get("drift", [])]  # fmt: skip
    fig = Figure(figsize=(9, 3.5))
    ax = fig.subplots()
    if rows:
        frame = pd.DataFrame(rows).astype({"p": "float64"})
        frame["score"] = -np.log10(frame["p"].clip(lower=1e-12))
        for source, part in frame.groupby("source"):
            ax.plot(part["week"], part["score"], "-o", ms=2, label=source)
    limit = -np.log10(policy.monitoring.drift.min_count_p)
    ax.axhline(limit, color="C3", ls="--", lw=1, label="policy")
    ax.set_ylabel("-log10 p of the count")
    ax.legend(loc="upper left", fontsize=8, ncol=5)
    _date_axis(ax)
    fig.subplots_adjust(left=0.09, right=0.98, top=0.95, bottom=0.15)
    return fig


def monitoring_figures(entries: list[dict], policy: Policy) -> dict[str, Figure]:
    """Return the report's figures from the log entries (oldest first)."""
    figures = {"accuracy": _accuracy(entries, policy), "drift": _drift(entries, policy)}
    groups = _groups(entries, policy)
    if groups is not None:
        figures["groups"] = groups
    return figures


def _png(figure: Figure) -> str:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=90)
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def _absent(value) -> bool:
    """Say whether the week lacks a figure: None, or a key its entry has not (never scored)."""
    return value is None or isinstance(value, jinja2.Undefined)


def render_report(entries: list[dict], policy: Policy, *, log_path: Path) -> str:
    """Render the HTML report of the whole log (the latest entry on top)."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATE.parent),
        autoescape=jinja2.select_autoescape(["html", "j2"]),
    )
    env.filters["num"] = lambda v: "" if _absent(v) else f"{v:.3g}"
    env.filters["small"] = lambda v: "" if _absent(v) else suppress_small(v)
    images = {name: _png(fig) for name, fig in monitoring_figures(entries, policy).items()}
    return env.get_template(TEMPLATE.name).render(
        entries=entries,
        latest=entries[-1],
        images=images,
        titles=_TITLES,
        breach_weeks=policy.monitoring.breach_weeks,
        min_pai=policy.monitoring.min_pai,
        band=policy.monitoring.calibration_band,
        policy_sha256=policy.sha256,
        log_path=log_path,
        generated=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    )
