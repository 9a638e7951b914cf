"""Scores of a backtest: the table, margins with bootstrap intervals, the headline summary.

A margin is ``method - comparator`` (``method`` is ``model``, or ``stacked`` over
each of its components) on a metric's weekly values (the mean over
the scored weeks), with a paired bootstrap over weeks
(``training.metrics.paired_bootstrap``). Comparators: the best baseline for
that metric and horizon (chosen on the backtest table), and the police-only
ablation (what the linked A&E, ambulance and council sources add).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from training.config import BacktestParams
from training.metrics.scores import (
    best_baseline,
    oracle_capture,
    paired_bootstrap,
    per_week_metrics,
    score_predictions,
)
from training.stacking import COMPONENTS, STACKED

__all__ = [
    "HEADLINE_METRICS",
    "NOT_BASELINES",
    "score_backtest",
    "table_markdown",
    "baselines_of",
    "stacked_margins",
]

#: metric -> greater is better
HEADLINE_METRICS = {"poisson_deviance": False, "pai_area_5": True, "pai_area_10": True}
NOT_BASELINES = ("model", "oracle", "ablation_police_only", "ablation_no_spatial")
_TABLE_COLUMNS = {
    "poisson_deviance": "deviance",
    "mae": "MAE",
    "pai_area_5": "PAI 5%",
    "pai_area_10": "PAI 10%",
    "hit_rate_10": "hit rate 10%",
    "interval_coverage": "interval cover",
}


def baselines_of(predictions: pd.DataFrame) -> list[str]:
    """Return the baseline methods present in ``predictions``."""
    methods = set(predictions["method"].unique()) - set(NOT_BASELINES) - {STACKED}
    return sorted(m for m in methods if not m.startswith("ablation_"))


def _margin(per_week, metric, better, comparator, horizon, params: BacktestParams) -> dict:
    boot = paired_bootstrap(
        per_week,
        metric,
        "model",
        comparator,
        n_boot=params.n_boot,
        seed=params.seed,
        greater_is_better=better,
        horizon=horizon,
    )
    return {
        "method": "model",
        "metric": metric,
        "horizon": "all" if horizon is None else int(horizon),
        "comparator": comparator,
        "difference": boot["estimate"],
        "ci_low": boot["ci_low"],
        "ci_high": boot["ci_high"],
        "p_value": boot["p_value"],
        "model_better": boot["a_better"],
        "n_weeks": boot["n_weeks"],
    }


def score_backtest(
    predictions: pd.DataFrame, areas: pd.DataFrame, params: BacktestParams
) -> tuple[pd.DataFrame, pd.DataFrame, dict, pd.DataFrame]:
    """Score every method; return ``(table, margins, summary, per_week)``."""
    coverages = sorted(set(params.coverages) | {0.05, 0.10})
    table = score_predictions(predictions, areas, coverages)
    per_week = per_week_metrics(predictions, areas, coverages)
    methods = set(predictions["method"].unique())
    baselines = baselines_of(predictions)
    horizons = sorted(int(h) for h in table["horizon"].unique())
    ablation_h = sorted(
        int(h) for h in table.loc[table["method"] == "ablation_police_only", "horizon"].unique()
    )
    rows, headline, beats = [], {}, {}
    for metric, better in HEADLINE_METRICS.items():
        for horizon in [*horizons, None]:
            best = best_baseline(table, metric, baselines, better, horizon=horizon)
            rows.append(_margin(per_week, metric, better, best, horizon, params))
            if horizon in ablation_h or (horizon is None and ablation_h == horizons):
                rows.append(_margin(per_week, metric, better, "ablation_police_only",
                                    horizon, params))  # fmt: skip
            beats[f"{metric}@{'all' if horizon is None else horizon}"] = _beats_all(
                table, metric, better, baselines, horizon
            )
            if horizon == 1 or (horizon is None and 1 not in horizons):
                h = 1 if horizon == 1 else None
                headline.update(_headline(table, metric, best, h, "oracle" in methods))
    for row in rows:
        if row["horizon"] == 1:
            tag = "best" if row["comparator"] != "ablation_police_only" else "police_only"
            for key in ("difference", "ci_low", "ci_high"):
                headline[f"h1.margin_{tag}.{row['metric']}.{key}"] = row[key]
    if STACKED in methods:
        rows += stacked_margins(per_week, horizons, params)
    margins = pd.DataFrame(rows)
    summary = {
        "baselines": baselines,
        "horizons": horizons,
        "beats_every_baseline": beats,
        "acceptance": _acceptance(beats, margins),
        "headline": headline,
    }
    return table, margins, summary, per_week


def _value(table: pd.DataFrame, method: str, metric: str, horizon: int | None) -> float:
    rows = table.loc[table["method"] == method]
    if horizon is not None:
        rows = rows.loc[rows["horizon"] == horizon]
    return float(rows[metric].mean()) if len(rows) else float("nan")


def _beats_all(table, metric, better, baselines, horizon) -> bool:
    model = _value(table, "model", metric, horizon)
    others = [_value(table, b, metric, horizon) for b in baselines]
    return bool(all(model > o if better else model < o for o in others if np.isfinite(o)))


def _headline(table, metric, best, horizon, has_oracle) -> dict:
    out = {
        f"h1.model.{metric}": _value(table, "model", metric, horizon),
        f"h1.best_baseline.{metric}": _value(table, best, metric, horizon),
        f"h1.police_only.{metric}": _value(table, "ablation_police_only", metric, horizon),
        f"h1.no_spatial.{metric}": _value(table, "ablation_no_spatial", metric, horizon),
    }
    if has_oracle:
        out[f"h1.oracle.{metric}"] = _value(table, "oracle", metric, horizon)
        out[f"h1.oracle_capture.{metric}"] = oracle_capture(
            table, metric, "model", best, "oracle", horizon=horizon
        )
    return out


def _acceptance(beats: dict, margins: pd.DataFrame) -> dict:
    """Check that the model beats every baseline and its CI over the best one excludes zero."""
    best = margins.loc[margins["comparator"] != "ablation_police_only"]
    best = best.loc[best["method"] == "model"]
    out = {}
    for (metric, horizon), row in best.set_index(["metric", "horizon"]).iterrows():
        out[f"{metric}@{horizon}"] = bool(beats[f"{metric}@{horizon}"] and row["model_better"])
    out["all"] = all(out.values())
    return out


def table_markdown(table: pd.DataFrame, margins: pd.DataFrame, summary: dict) -> str:
    """Return a readable results table: headline at horizon 1, margins, then every horizon."""
    cols = [c for c in _TABLE_COLUMNS if c in table.columns]
    h1 = table.loc[table["horizon"] == 1].sort_values("poisson_deviance")
    lines = ["# Backtest results", ""]
    weeks = summary.get("target_weeks")
    if weeks:
        lines += [f"Target weeks {weeks[0]} to {weeks[1]}; lower deviance and higher PAI "
                  "are better.", ""]  # fmt: skip
    lines += ["## Horizon 1 (next week)", "", _md(h1, ["method", *cols]), ""]
    lines += ["## Model minus comparator (paired week bootstrap, 95% CI)", ""]
    lines += [_md(margins, list(margins.columns)), ""]
    accept = summary.get("acceptance", {})
    lines += [f"Model beats every baseline with a CI excluding zero: **{accept.get('all')}**", ""]
    lines += ["## All horizons", "", _md(table.sort_values(["horizon", "poisson_deviance"]),
                                           ["method", "horizon", *cols]), ""]  # fmt: skip
    return "\n".join(lines)


def _md(frame: pd.DataFrame, columns: list[str]) -> str:
    head = "| " + " | ".join(_TABLE_COLUMNS.get(c, c) for c in columns) + " |"
    rule = "|" + "---|" * len(columns)
    body = ["| " + " | ".join(_fmt(v) for v in row) + " |" for row in frame[columns].to_numpy()]
    return "\n".join([head, rule, *body])


def _fmt(value) -> str:
    if isinstance(value, float | np.floating):
        return f"{value:.4f}"
    return str(value)


def stacked_margins(per_week: pd.DataFrame, horizons: list[int], params: BacktestParams) -> list:
    """Return the margins of ``stacked`` over each component, per headline metric and horizon.

    ``difference`` is ``stacked - component``; ``model_better`` is true when the
    interval shows ``stacked`` better.
    """
    rows = []
    present = set(per_week["method"].unique())
    for metric, better in HEADLINE_METRICS.items():
        for horizon in [*horizons, None]:
            for component in (c for c in COMPONENTS if c in present):
                boot = paired_bootstrap(per_week, metric, STACKED, component, n_boot=params.n_boot,
                                        seed=params.seed, greater_is_better=better,
                                        horizon=horizon)  # fmt: skip
                rows.append({
                    "method": STACKED,
                    "metric": metric,
                    "horizon": "all" if horizon is None else int(horizon),
                    "comparator": component,
                    "difference": boot["estimate"],
                    "ci_low": boot["ci_low"],
                    "ci_high": boot["ci_high"],
                    "p_value": boot["p_value"],
                    "model_better": boot["a_better"],
                    "n_weeks": boot["n_weeks"],
                })  # fmt: skip
    return rows
