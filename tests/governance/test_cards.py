import hashlib
import json
import re

import pandas as pd
import pytest
from mlflow import MlflowClient
from mlflow_helpers import MODEL_NAME, log_candidate, write_reports
from pydantic import ValidationError

from governance.auditlog import read_log
from governance.cards.builder import CardInputs
from governance.cards.render import (
    ALREADY_PUBLISHED,
    JSON_SCHEMA_PATH,
    CardPublished,
    publish_card,
)
from governance.cards.schema import ModelCard
from tests.governance.governed import approve_by, audited_report, make_project, register_logged
from training.config import load_params


def _register(project, seed, metrics):
    run_id, model_uri = log_candidate(project.uri, seed=seed)
    paths = write_reports(project.root, run_id, model_uri, project.chain.head.sha256)
    report = audited_report(project, run_id, model_uri)
    # The copy on disk is the one the audit logged to the run, byte for byte.
    paths["gate"].write_text(json.dumps(report, indent=2))
    register_logged(project, run_id, model_uri, report, metrics)
    return paths


@pytest.fixture()
def project(tmp_path):
    gp = make_project(tmp_path)
    paths = _register(gp, 0, {"h1.model.poisson_deviance": 0.92})
    weeks = pd.date_range("2023-01-02", periods=6, freq="7D")
    features = pd.DataFrame({"target_week": weeks, "y": [1.0, 2.0, 0.0, 3.0, None, None]})
    (tmp_path / "data" / "04_features").mkdir(parents=True)
    features.to_parquet(tmp_path / "data" / "04_features" / "features.parquet")
    inputs = CardInputs.from_params(load_params(root=tmp_path))
    return {"uri": gp.uri, "policy": gp.chain.head, "paths": paths, "inputs": inputs,
            "root": tmp_path, "gp": gp}  # fmt: skip


def _publish(p, version=1):
    return publish_card(
        p["inputs"],
        model_name=MODEL_NAME,
        version=version,
        policy=p["policy"],
        tracking_uri=p["uri"],
    )


def _approve_both(p, version):
    _publish(p, version)  # the draft the members review
    approve_by(p["gp"], str(version), members=("r.adeyemi", "m.siddiqui"), rationale="read it")


def test_draft_card_matches_the_measured_reports(project):
    res = _publish(project)
    card = json.loads((res.directory / "card.json").read_text())
    assert res.directory == project["root"] / "model_cards" / MODEL_NAME / "v1"
    assert card["status"] == "draft" and not res.published
    results = json.loads(project["paths"]["results"].read_text())
    assert card["evaluation"]["headline"] == results["summary"]["headline"]
    for got, want in zip(card["evaluation"]["margins"], results["margins"], strict=True):
        assert (got["difference"], got["ci_low"], got["ci_high"]) == (
            want["difference"],
            want["ci_low"],
            want["ci_high"],
        )
    model_h1 = next(r for r in results["table"] if r["method"] == "model" and r["horizon"] == 1)
    row = next(
        m
        for m in card["evaluation"]["metrics"]
        if (m["method"], m["horizon"], m["metric"]) == ("model", "1", "poisson_deviance")
    )
    assert row["value"] == model_h1["poisson_deviance"]
    gate = json.loads(project["paths"]["gate"].read_text())
    fair = {c["name"]: c for c in gate["checks"] if c["category"] == "fairness"}
    for c in card["fairness"]["checks"]:
        assert (c["value"], c["ci_low"], c["ci_high"], c["passed"]) == (
            fair[c["name"]]["value"],
            fair[c["name"]]["ci_low"],
            fair[c["name"]]["ci_high"],
            fair[c["name"]]["passed"],
        )
    assert [f["feature"] for f in card["explanations"]["top_features"]] == [
        f["feature"] for f in gate["shap"]["top_features"]
    ]
    linkage = json.loads(project["paths"]["linkage"].read_text())
    police = next(s for s in card["data"]["sources"] if s["source"] == "police")
    assert police["records_in"] == linkage["police"]["records_in"]
    assert police["quarantined"] == {"bad_date": "<5", "no_location": 127}
    istv = next(s for s in card["data"]["sources"] if s["source"] == "istv")
    assert istv["linked_by"]["nearest"] == "<5" and istv["match_rate"] == 0.9729
    assert (card["training"]["window_start"], card["training"]["window_end"]) == (
        "2023-01-02",
        "2023-01-23",
    )
    assert card["training"]["n_training_rows"] == 4
    assert card["hashes"]["policy_sha256"] == project["policy"].sha256
    assert (
        card["hashes"]["gate_report_sha256"]
        == hashlib.sha256(project["paths"]["gate"].read_bytes()).hexdigest()
    )
    assert card["features"]["sensitive_excluded"] is True
    assert any("stop and search" in u for u in card["intended_use"]["out_of_scope"])
    assert (
        "harmcast.card_sha256"
        not in MlflowClient(project["uri"], project["uri"]).get_model_version(MODEL_NAME, "1").tags
    )


def test_card_renders_what_each_feature_group_adds(project):
    res = _publish(project)
    card = json.loads((res.directory / "card.json").read_text())
    results = json.loads(project["paths"]["results"].read_text())
    got = [(a["group"], a["metric"], a["difference"], a["ci_low"], a["ci_high"])
           for a in card["evaluation"]["ablations"]]  # fmt: skip
    want = [(a["group"], a["metric"], a["difference"], a["ci_low"], a["ci_high"])
            for a in results["ablations"]]  # fmt: skip
    assert got == want and len(got) == 3
    line = (
        "council indicators (evictions, exclusions) 3-8 weeks back and their jump against the "
        "area's usual level: deviance -0.0040 [-0.0070, -0.0010]; PAI 5% +0.0200 [-0.0100, "
        "+0.0500]; PAI 10% +0.0300 [+0.0100, +0.0600] (horizon 1; helps on deviance, PAI 10%)"
    )
    md = (res.directory / "card.md").read_text()
    assert "### What each feature group adds" in md and f"- {line}" in md
    assert f"<li>{line}</li>" in (res.directory / "card.html").read_text()


def test_html_is_self_contained(project):
    html = (_publish(project).directory / "card.html").read_text()
    assert not re.search(r"""(src|href)\s*=\s*["']?\s*(https?:)?//""", html, re.I)
    assert "<script" not in html.lower() and "<link" not in html.lower()
    assert html.count('src="data:image/png;base64,') == 3
    assert "<style>" in html


def test_published_card_hash_equals_tag_and_is_never_overwritten(project):
    _approve_both(project, 1)
    res = _publish(project)
    assert res.published and res.card.status == "published"
    card_bytes = (res.directory / "card.json").read_bytes()
    tag = (
        MlflowClient(project["uri"], project["uri"])
        .get_model_version(MODEL_NAME, "1")
        .tags["harmcast.card_sha256"]
    )
    assert tag == hashlib.sha256(card_bytes).hexdigest() == res.sha256
    card = json.loads(card_bytes)
    assert card["approval"]["status"] == "approved"
    decisions = card["approval"]["decisions"]
    assert [d["reviewer"] for d in decisions] == ["r.adeyemi", "m.siddiqui"]
    keys = {r.id: r.keys[0].fingerprint for r in project["policy"].board.roster}
    assert [d["key_fingerprint"] for d in decisions] == [keys["r.adeyemi"], keys["m.siddiqui"]]
    assert all(d["key_type"] == "ed25519" and d["at"] for d in decisions)
    assert card["approval"]["audit_log_verified"] is True
    assert "production" in card["approval"]["aliases"]
    assert read_log(project["inputs"].audit_log)[-1]["action"] == "publish"
    with pytest.raises(CardPublished) as info:
        _publish(project)
    assert str(info.value) == ALREADY_PUBLISHED.format(path=res.directory / "card.json")
    assert (res.directory / "card.json").read_bytes() == card_bytes


def test_changes_against_production(project):
    _approve_both(project, 1)
    _publish(project)
    _register(project["gp"], 1, {"h1.model.poisson_deviance": 0.88})
    card = _publish(project, version=2).card
    assert card.changes.compared_with == "1"
    change = next(m for m in card.changes.metrics if m.metric == "h1.model.poisson_deviance")
    assert (change.previous, change.current) == (0.92, 0.88)
    assert change.change == pytest.approx(-0.04)
    assert card.changes.policy_changed is False
    assert card.changes.features_added == [] and card.changes.features_removed == []


def test_every_section_is_required_and_schema_export_is_current(project):
    card = json.loads((_publish(project).directory / "card.json").read_text())
    for section in ("fairness", "approval", "changes", "hashes"):
        broken = {k: v for k, v in card.items() if k != section}
        with pytest.raises(ValidationError, match=section):
            ModelCard.model_validate(broken)
    assert ModelCard.model_validate(card).model_details.version == "1"
    assert json.loads(JSON_SCHEMA_PATH.read_text()) == ModelCard.model_json_schema()


def test_card_of_a_forged_version_is_refused(project):
    """Attack: a version made with the MLflow client, tags copied from an approved version."""
    from training.errors import NotApproved

    _approve_both(project, 1)
    _publish(project)
    client = MlflowClient(project["uri"], project["uri"])
    _, model_uri = log_candidate(project["uri"], seed=5)
    forged = str(client.create_model_version(MODEL_NAME, model_uri).version)
    for key, value in client.get_model_version(MODEL_NAME, "1").tags.items():
        client.set_model_version_tag(MODEL_NAME, forged, key, value)
    with pytest.raises(NotApproved, match="holds no gate report"):
        _publish(project, version=forged)
    assert not (project["root"] / "model_cards" / MODEL_NAME / f"v{forged}").exists()


def test_draft_is_kept_once_a_member_signed_it(project):
    first = _publish(project)
    approve_by(project["gp"], "1", members=("r.adeyemi",))
    again = _publish(project)
    assert not again.published and again.sha256 == first.sha256
