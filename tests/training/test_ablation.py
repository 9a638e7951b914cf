"""The ablation table: one row per ablated group and headline metric, with intervals."""

import numpy as np
import pandas as pd

from training.backtest.ablation import ABLATION_COLUMNS, ablation_markdown, ablation_table
from training.backtest.scoring import baselines_of
from training.config import BacktestParams

FEATURES = ["violence_lag1", "evictions_lag3", "evictions_lead_change", "nr_violent_7d",
            "nb_nr_days_since", "nte_summer"]  # fmt: skip


def _per_week():
    rng = np.random.default_rng(0)
    weeks = pd.date_range("2024-01-01", periods=20, freq="7D")
    rows = []
    # the model beats the model without council indicators every week; near-repeat is noise
    shifts = {"model": 0.0, "ablation_no_council_lead": 0.05, "ablation_no_near_repeat": 0.0}
    for method, shift in shifts.items():
        noise = rng.normal(0, 0.01, len(weeks)) if method != "model" else 0.0
        deviance = 1.0 + shift + noise
        rows.append(pd.DataFrame({
            "method": method, "horizon": 1, "target_week": weeks,
            "poisson_deviance": deviance, "pai_area_5": 3.0 - shift * 10 + noise,
            "pai_area_10": 2.5 - shift * 10 - noise,
        }))  # fmt: skip
    return pd.concat(rows, ignore_index=True)


def test_one_row_per_group_and_metric_with_intervals():
    per_week = _per_week()
    table = ablation_table(per_week, FEATURES, BacktestParams(n_boot=200))
    assert list(table.columns) == ABLATION_COLUMNS
    assert table.groupby("group").size().to_dict() == {"council_lead": 3, "near_repeat": 3}
    assert (table["ci_low"] <= table["difference"]).all()
    assert (table["difference"] <= table["ci_high"]).all()
    council = table.loc[table["group"] == "council_lead"].set_index("metric")
    assert council.loc["poisson_deviance", "difference"] < 0
    assert council["group_helps"].all() and (council["n_columns"] == 2).all()
    near = table.loc[table["group"] == "near_repeat"].set_index("metric")
    assert not near["group_helps"].any() and (near["n_columns"] == 2).all()
    markdown = ablation_markdown(table)
    assert markdown.count("(`council_lead`)") == 1 and markdown.count("(`near_repeat`)") == 1
    assert "council indicators (evictions, exclusions) 3 weeks back" in markdown
    # the ablations are never taken for analysts' baselines
    assert baselines_of(per_week.assign(method=per_week["method"])) == []
