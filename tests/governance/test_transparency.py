import json

from mlflow_helpers import MODEL_NAME, log_candidate, policy, tracking_uri, write_reports

from governance.cards.builder import CardInputs, CardReview, build_card
from governance.registry import register_candidate
from governance.transparency import STANDARD, build_record, write_transparency
from training.config import load_params


def test_record_fields_come_from_card_and_policy(tmp_path):
    uri, pol = tracking_uri(tmp_path), policy()
    run_id, model_uri = log_candidate(uri)
    paths = write_reports(tmp_path, run_id, model_uri, pol.sha256)
    register_candidate(
        run_id=run_id,
        model_uri=model_uri,
        gate_report=paths["gate"],
        model_name=MODEL_NAME,
        policy=pol,
        data_sha256="d" * 64,
        code_version="abc",
        backtest_metrics={},
        tracking_uri=uri,
        audit_log=tmp_path / "audit.jsonl",
    )
    inputs = CardInputs.from_params(load_params(root=tmp_path), audit_log=tmp_path / "audit.jsonl")
    review = CardReview(status="pending", decisions=[], model_sha256="m" * 64,
                        gate_report_sha256="g" * 64, policy_sha256=pol.sha256)  # fmt: skip
    card = build_card(inputs, model_name=MODEL_NAME, version=1, policy=pol, tracking_uri=uri,
                      review=review)  # fmt: skip
    record = build_record(card, pol)
    assert record["standard"] == STANDARD
    tier1, tier2 = record["tier_1"], record["tier_2"]
    assert {
        "name",
        "description",
        "website",
        "contact_email",
        "how_it_is_used",
        "why_it_is_used",
    } <= set(tier1)
    assert tier1["contact_email"] == pol.contact
    assert set(tier2) == {
        "owner_and_responsibility",
        "description_and_rationale",
        "deployment_context",
        "tool_specification",
        "risks_mitigations_and_impact_assessments",
    }
    assert tier2["owner_and_responsibility"]["organisation"] == pol.owner
    assert len(tier2["owner_and_responsibility"]["accountable_board"]) == len(pol.board.roster)
    spec = tier2["tool_specification"]
    assert spec["phase"] == "Pre-deployment"
    assert spec["model"]["input"] == card.features.names
    headline = json.loads(paths["results"].read_text())["summary"]["headline"]
    assert spec["model"]["performance"]["headline"] == headline
    police = next(d for d in spec["development_data"] if d.get("name") == "police")
    assert police["quarantined"]["bad_date"] == "<5"
    fair = tier2["risks_mitigations_and_impact_assessments"]["fairness_audit"]
    gated = [
        c
        for c in json.loads(paths["gate"].read_text())["checks"]
        if c["category"] == "fairness" and c["gated"]
    ]
    assert (fair["gated_checks"], fair["gated_checks_passed"]) == (
        len(gated),
        sum(c["passed"] for c in gated),
    )
    assert tier2["deployment_context"]["approval_status"] == "pending"
    written = write_transparency(card, pol, tmp_path / "out")
    assert json.loads(written[0].read_text()) == json.loads(json.dumps(record))
    md = written[1].read_text()
    assert "## Tier 1: summary" in md and "## Tier 2: tool specification" in md
    assert pol.contact in md
