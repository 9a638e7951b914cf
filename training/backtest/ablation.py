"""The ablation table: what each ablated feature group adds to the model.

For each ``ablation_no_<group>`` method of the backtest, the margin ``model -
model without the group`` on Poisson deviance, PAI 5% and PAI 10%, at the
first ablation horizon (1: next week), with a paired bootstrap interval over
target weeks (``training.metrics.scores.paired_bootstrap``), as the police-only
ablation's margins are computed. A negative deviance margin and a positive
PAI margin mean the group helps; ``group_helps`` is true when the interval
excludes zero on that side.

The ablations are fitted with ``BacktestParams.ablation_rounds`` boosting
rounds (150, as ``ModelParams.num_boost_round``); set the two apart and a
margin mixes what the group adds with what the extra rounds add.
"""

from __future__ import annotations

import pandas as pd

from training.backtest.folds import ablated_group
from training.backtest.scoring import HEADLINE_METRICS
from training.config import BacktestParams
from training.feature_groups import group_columns, group_words
from training.metrics.scores import paired_bootstrap

__all__ = ["ABLATION_COLUMNS", "ablation_table", "ablation_markdown"]

ABLATION_COLUMNS = ["group", "words", "n_columns", "metric", "horizon", "difference",
                    "ci_low", "ci_high", "p_value", "group_helps", "n_weeks"]  # fmt: skip
_SHORT = {"poisson_deviance": "deviance", "pai_area_5": "PAI 5%", "pai_area_10": "PAI 10%"}


def ablation_table(
    per_week: pd.DataFrame, feature_names: list[str], params: BacktestParams
) -> pd.DataFrame:
    """One row per ablated group and headline metric (``ABLATION_COLUMNS``).

    Parameters
    ----------
    per_week : weekly metrics of every method (``training.metrics.per_week_metrics``).
    feature_names : the model's feature columns (to count and name each group's).
    params : ``n_boot``, ``seed`` and ``ablation_horizons``.
    """
    methods = [m for m in per_week["method"].unique() if ablated_group(m) is not None]
    methods = sorted(methods, key=lambda m: params.ablation_groups.index(ablated_group(m))
                     if ablated_group(m) in params.ablation_groups else 99)  # fmt: skip
    rows = []
    for method in methods:
        group = ablated_group(method)
        mine = per_week.loc[per_week["method"] == method, "horizon"]
        horizon = int(mine.min())
        columns = group_columns(feature_names, group)
        for metric, better in HEADLINE_METRICS.items():
            boot = paired_bootstrap(per_week, metric, "model", method, n_boot=params.n_boot,
                                    seed=params.seed, greater_is_better=better,
                                    horizon=horizon)  # fmt: skip
            rows.append({
                "group": group, "words": group_words(group, columns), "n_columns": len(columns),
                "metric": metric, "horizon": horizon, "difference": boot["estimate"],
                "ci_low": boot["ci_low"], "ci_high": boot["ci_high"],
                "p_value": boot["p_value"], "group_helps": boot["a_better"],
                "n_weeks": boot["n_weeks"],
            })  # fmt: skip
    return pd.DataFrame(rows, columns=ABLATION_COLUMNS)


def ablation_markdown(table: pd.DataFrame) -> str:
    """Return the ablation table as a Markdown section (one row per group)."""
    lines = ["## What each feature group adds (model minus model without it, 95% CI)", ""]
    if table.empty:
        return "\n".join([*lines, "No feature group was ablated.", ""])
    metrics = list(_SHORT)
    lines += ["| feature group | columns | horizon | " + " | ".join(_SHORT[m] for m in metrics)
              + " | helps on |", "|---|---|---|" + "---|" * len(metrics) + "---|"]  # fmt: skip
    for group, rows in table.groupby("group", sort=False):
        by = rows.set_index("metric")
        cells = [_cell(by.loc[m]) if m in by.index else "" for m in metrics]
        helps = [_SHORT[m] for m in metrics if m in by.index and bool(by.loc[m, "group_helps"])]
        first = rows.iloc[0]
        lines.append(f"| {first['words']} (`{group}`) | {first['n_columns']} | "
                     f"{first['horizon']} | " + " | ".join(cells)
                     + f" | {', '.join(helps) or 'none'} |")  # fmt: skip
    lines += ["", "Deviance: negative means the group lowers the error; PAI: positive means "
              "the group finds more violence in the top areas.", ""]  # fmt: skip
    return "\n".join(lines)


def _cell(row: pd.Series) -> str:
    return f"{row['difference']:+.4f} [{row['ci_low']:+.4f}, {row['ci_high']:+.4f}]"
