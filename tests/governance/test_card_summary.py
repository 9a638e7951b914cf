"""The card's first screen is a plain-language summary for the board."""

import json
import re

import pandas as pd
import pytest
from mlflow_helpers import MODEL_NAME, log_candidate, write_reports

from governance.cards.builder import CardInputs
from governance.cards.render import publish_card
from governance.cards.wording import check_words, group_features, headline_words
from tests.governance.governed import approve_by, audited_report, make_project, register_logged
from training.config import load_params

#: A report key as the backtest writes it (``h1.margin_best.pai_area_10.ci_high``)
#: or a check name as the gate writes it (``fairness.fpr_top_k.district.North``).
DOTTED_KEY = re.compile(r"\b(h1|fairness|shap|champion)\.[a-z_0-9]+(\.[A-Za-z_0-9]+)*")


@pytest.fixture()
def published(tmp_path):
    """A version approved by two members' signed decisions, its card published."""
    project = make_project(tmp_path)
    run_id, model_uri = log_candidate(project.uri, seed=0)
    paths = write_reports(tmp_path, run_id, model_uri, project.chain.head.sha256)
    report = audited_report(project, run_id, model_uri)
    paths["gate"].write_text(json.dumps(report, indent=2))
    register_logged(project, run_id, model_uri, report)
    weeks = pd.date_range("2023-01-02", periods=4, freq="7D")
    (tmp_path / "data" / "04_features").mkdir(parents=True)
    pd.DataFrame({"target_week": weeks, "y": [1.0, 2.0, 0.0, 3.0]}).to_parquet(
        tmp_path / "data" / "04_features" / "features.parquet"
    )
    inputs = CardInputs.from_params(load_params(root=tmp_path))
    kw = {"model_name": MODEL_NAME, "version": 1, "policy": project.chain.head,
          "tracking_uri": project.uri}  # fmt: skip
    publish_card(inputs, **kw)  # the draft the members review
    approve_by(project, "1", members=("r.adeyemi", "m.siddiqui"), rationale="read it")
    res = publish_card(inputs, **kw)
    assert res.published
    return res.directory


def _first_screen(markdown: str) -> str:
    return markdown.split("The full record follows.")[0]


def test_markdown_opens_with_the_board_summary(published):
    md = (published / "card.md").read_text()
    first = _first_screen(md)
    assert first.index("## Summary for the board") < 100
    assert "## Model details" not in first
    assert "What it does." in first and "areas, never people" in first
    # The gain over the best analysts' method, its interval and which method it is.
    assert "the mean of the last 52 weeks" in first or "last week's count" in first
    assert "95% interval" in first
    # One sentence per audited grouping, by name in words.
    for words in ("deprivation quintile", "ethnic composition of the area", "district"):
        assert f"By {words}:" in first
    assert "Approved on" in first and "Rosa Adeyemi" in first and "Maryam Siddiqui" in first
    # Each approval names the key that signed it (its fingerprint).
    assert len(re.findall(r"key [0-9a-f]{16}", first)) == 2
    assert not DOTTED_KEY.search(first)


def test_no_report_key_anywhere_a_person_reads(published):
    for name in ("card.md", "card.html"):
        text = (published / name).read_text()
        assert not DOTTED_KEY.search(text), DOTTED_KEY.search(text)
    html = (published / "card.html").read_text()
    assert html.index("Summary for the board") < html.index("Model details")


def test_words_for_keys_and_features_grouped_by_source():
    assert headline_words("h1.margin_best.pai_area_10.ci_high") == (
        "share of violence found in the top 10% of areas, against their share of the city: "
        "gain over the best analysts' method (interval high end), one week ahead"
    )
    assert check_words("fairness.fpr_top_k_adjusted.district.North") == (
        "false alarms against those the forecast expects, district North"
    )
    groups = dict(group_features(["police_violence_lag1", "nb_ae_assault_mean4", "imd_decile"]))
    assert list(groups) == [
        "Police records",
        "A&E (emergency department) attendances",
        "Area characteristics (census, deprivation, licensed premises)",
    ]


def test_fairness_sentence_names_the_grouping_and_what_failed_in_words(published):
    from governance.cards.schema import CheckRow, ModelCard
    from governance.cards.summary import plain_summary

    card = ModelCard.model_validate_json((published / "card.json").read_text())
    row = {"category": "fairness", "gated": True, "lower": 0.8, "upper": 1.25,
           "ci_low": None, "ci_high": None, "detail": ""}  # fmt: skip
    checks = [
        CheckRow(name="fairness.calibration_ratio.district.North", passed=False, value=1.4, **row),
        CheckRow(name="fairness.calibration_ratio.district.South", passed=True, value=1.0, **row),
        CheckRow(name="fairness.fdr_top_k.imd_quintile.Q1", passed=True, value=1.1, **row),
    ]
    card = card.model_copy(update={"fairness": card.fairness.model_copy(update={"checks": checks})})
    sentences = plain_summary(card).fairness
    assert (
        "By district: 1 of 2 judged comparisons fell outside the policy band (0.8 to 1.25), "
        "first forecast against recorded violence for North."
    ) in sentences
    assert any(s.startswith("By deprivation quintile: fair on all 1") for s in sentences)
    assert not any(DOTTED_KEY.search(s) for s in sentences)


def test_lead_time_features_are_grouped_and_named_in_words():
    names = ["evictions_lag3", "nb_exclusions_lead_ratio", "nr_violent_14d", "nb_nr_days_since",
             "nte_bank_holiday_weekend"]  # fmt: skip
    groups = dict(group_features(names))
    assert "Other" not in groups
    assert groups["Near-repeat (day-dated violent records: police, A&E, ambulance)"] == [
        "violent records (police, A&E, ambulance) in the last 14 days to the origin week's Sunday",
        "days since the last violent record (police, A&E, ambulance), capped "
        "(neighbouring areas, least)",
    ]
    assert len(groups["Council records (school exclusions, evictions)"]) == 2
