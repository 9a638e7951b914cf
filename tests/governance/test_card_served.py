"""The card says in words what is served and why, with the combination's margins."""

import json

import pandas as pd
import pytest
from mlflow_helpers import MODEL_NAME, log_candidate, write_reports

from governance.cards.builder import CardInputs
from governance.cards.render import publish_card
from tests.governance.governed import audited_report, make_project, register_logged
from training.config import load_params
from training.forecaster import STACK_FILE, ServedStack

STACK = ServedStack(
    "stacked",
    ("model", "poisson_glm", "hawkes", "prospective_hotspot"),
    {1: (0.62, 0.38, 0.0, 0.0), 2: (0.5, 0.5, 0.0, 0.0)},
    {1: 0.2, 2: 0.25},
    reason="The combination is served: in the backtest it was at least as good as each.",
)


def _stacked_margin(metric, comparator, diff, low, high):
    return {"method": "stacked", "metric": metric, "horizon": 1, "comparator": comparator,
            "difference": diff, "ci_low": low, "ci_high": high, "p_value": 0.2,
            "model_better": False, "n_weeks": 26}  # fmt: skip


@pytest.fixture()
def card_dir(tmp_path):
    project = make_project(tmp_path)
    run_id, model_uri = log_candidate(project.uri, seed=0)
    paths = write_reports(tmp_path, run_id, model_uri, project.chain.head.sha256)
    report = audited_report(project, run_id, model_uri)
    paths["gate"].write_text(json.dumps(report, indent=2))
    results = json.loads(paths["results"].read_text())
    results["margins"] += [
        _stacked_margin("poisson_deviance", "model", -0.004, -0.009, 0.001),
        _stacked_margin("pai_area_10", "poisson_glm", 0.05, -0.1, 0.2),
    ]
    paths["results"].write_text(json.dumps(results))
    paths["meta"].with_name(STACK_FILE).write_text(json.dumps(STACK.to_json()))
    register_logged(project, run_id, model_uri, report)
    (tmp_path / "data" / "04_features").mkdir(parents=True)
    weeks = pd.date_range("2023-01-02", periods=4, freq="7D")
    pd.DataFrame({"target_week": weeks, "y": [1.0, 2.0, 0.0, 3.0]}).to_parquet(
        tmp_path / "data" / "04_features" / "features.parquet"
    )
    inputs = CardInputs.from_params(load_params(root=tmp_path))
    res = publish_card(inputs, model_name=MODEL_NAME, version=1, policy=project.chain.head,
                       tracking_uri=project.uri)  # fmt: skip
    return res.directory


def test_the_card_says_what_is_served_and_why(card_dir):
    card = json.loads((card_dir / "card.json").read_text())
    served = card["evaluation"]["served"]
    assert served["method"] == "stacked"
    assert served["weights"]["1"] == {"model": 0.62, "poisson_glm": 0.38}
    assert [m["comparator"] for m in served["margins"]] == ["model", "poisson_glm"]
    # the model's own margins are not mixed with the combination's
    assert all(m["comparator"] != "poisson_glm" for m in card["evaluation"]["margins"])
    md = (card_dir / "card.md").read_text()
    first = md.split("The full record follows.")[0]
    assert (
        "**What is served?** The served 1-week forecast combines the model (weight 0.62) "
        "and the Poisson GLM (0.38)." in first
    )
    assert "### What is served, and why" in md
    html = (card_dir / "card.html").read_text()
    assert "What is served?" in html and "combination minus" in html
