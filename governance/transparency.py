"""The public transparency record, in the fields of the UK ATRS.

The UK Algorithmic Transparency Recording Standard has a Tier 1
plain-language summary and the Tier 2 sections (owner and responsibility, description and rationale,
deployment context and human review, tool/model/data specification, risks
and mitigations).

It is filled from the same measurements as the model card (the card object)
and from the policy file, and written beside the card as
``transparency.json`` and ``transparency.md``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from governance.cards.schema import ModelCard
from governance.policy import Policy

__all__ = ["STANDARD", "build_record", "render_record_markdown", "write_transparency"]

STANDARD = "UK Algorithmic Transparency Recording Standard v4"
TOOL_NAME = "harmcast violence forecasts"
PHASE = {"published": "Production", "draft": "Pre-deployment"}


def _tier1(card: ModelCard, policy: Policy) -> dict[str, Any]:
    return {
        "name": f"{TOOL_NAME} ({card.model_details.name} v{card.model_details.version})",
        "description": (
            "Forecasts how many violent incidents each small area of the city is likely to "
            "see in each of the next few weeks, from police recorded crime, hospital "
            "emergency-department assault records, ambulance call-outs and council data. "
            "It forecasts for areas, never for people."
        ),
        "website": "Published with this record as the model card (card.html).",
        "contact_email": policy.contact,
        "how_it_is_used": " ".join(card.intended_use.primary_uses),
        "why_it_is_used": (
            "To target prevention and support to the places where violence is most likely, "
            "earlier than counts alone would show, and to measure the forecast against the "
            "analysts' existing methods before anyone relies on it."
        ),
    }


def _specification(card: ModelCard) -> dict[str, Any]:
    ev = card.evaluation
    return {
        "system_architecture": (
            "Records are linked to small areas and ISO weeks, counted into an area-by-week "
            "panel, turned into lagged features and forecast by a registered model version "
            "that a governance board approved; a web service serves only that version."
        ),
        "phase": PHASE[card.status],
        "maintenance": (
            "Each new version is backtested, audited for fairness and explanations, "
            "registered only on a pass and served only after board approval."
        ),
        "model": {
            "name": card.model_details.name,
            "version": card.model_details.version,
            "task": "Count regression: expected violent incidents per area and week",
            "input": card.features.names,
            "output": "Expected count with an interval and the chance of any incident",
            "architecture": card.model_details.model_type,
            "performance": {"headline": ev.headline, "baselines": ev.baselines},
        },
        "development_data": [
            {
                "name": s.source,
                "records_in": s.records_in,
                "linked": s.linked,
                "match_rate": s.match_rate,
                "quarantined": s.quarantined,
            }
            for s in card.data.sources
        ]
        + [{"training_window": [card.training.window_start, card.training.window_end]}],
        "development_data_notes": card.data.suppression_rule,
        "operational_data": {
            "sources": [s.source for s in card.data.sources],
            "sensitive_attributes": (
                "No personal data. Area ethnic-composition shares are used only to audit "
                f"fairness (columns prefixed {card.features.sensitive_prefix!r}) and are "
                "never model inputs."
            ),
            "processing": "Linked to areas, aggregated to weekly counts; counts 1-4 suppressed.",
        },
    }


def build_record(card: ModelCard, policy: Policy) -> dict[str, Any]:
    """Return the transparency record for a card as a JSON-ready dict."""
    fairness = card.fairness
    gated = [c for c in fairness.checks if c.gated]
    return {
        "standard": STANDARD,
        "model": card.model_details.name,
        "version": card.model_details.version,
        "card_status": card.status,
        "tier_1": _tier1(card, policy),
        "tier_2": {
            "owner_and_responsibility": {
                "organisation": policy.owner,
                "senior_responsible_owner": next(
                    (f"{r.name}, {r.role}" for r in policy.board.roster), ""
                ),
                "accountable_board": [f"{r.name} ({r.role})" for r in policy.board.roster],
                "external_supplier": "None: open-source software run by the partnership.",
                "contact": policy.contact,
            },
            "description_and_rationale": {
                "detailed_description": card.intended_use.primary_uses,
                "scope": card.intended_use.unit_of_analysis,
                "out_of_scope": card.intended_use.out_of_scope,
                "benefits_measured": card.evaluation.headline,
                "alternatives_considered": card.evaluation.baselines,
            },
            "deployment_context": {
                "process_integration": card.human_oversight.process,
                "human_review": (
                    f"{card.human_oversight.quorum} board members must approve each version; "
                    "planners review each flagged area before acting."
                ),
                "approval_status": card.approval.status,
                "decisions": [d.model_dump() for d in card.approval.decisions],
                "appeals_and_review": f"Questions and challenges to {policy.contact}.",
            },
            "tool_specification": _specification(card),
            "risks_mitigations_and_impact_assessments": {
                "risks": card.considerations.ethical_considerations
                + card.considerations.limitations,
                "mitigations": card.human_oversight.process,
                "fairness_audit": {
                    "gate_passed": fairness.gate_passed,
                    "band": list(fairness.band),
                    "gated_checks": len(gated),
                    "gated_checks_passed": sum(c.passed for c in gated),
                },
                "impact_assessments": [
                    f"Fairness audit under policy sha256 {card.hashes.policy_sha256}",
                    f"Model card {card.model_details.name} v{card.model_details.version}",
                ],
            },
        },
    }


def render_record_markdown(record: dict[str, Any]) -> str:
    """Render the record as Markdown: one heading per tier and section."""
    title = f"# Algorithmic transparency record: {record['tier_1']['name']}"
    status = f"Standard: {record['standard']}. Card status: {record['card_status']}."
    lines = [title, "", status, ""]

    def emit(value: Any, depth: int) -> None:
        pad = "  " * depth
        if isinstance(value, dict):
            for key, sub in value.items():
                if isinstance(sub, dict | list):
                    lines.append(f"{pad}- **{key.replace('_', ' ')}**:")
                    emit(sub, depth + 1)
                else:
                    lines.append(f"{pad}- **{key.replace('_', ' ')}**: {sub}")
        elif isinstance(value, list):
            for item in value:
                if isinstance(item, dict | list):
                    emit(item, depth)
                else:
                    lines.append(f"{pad}- {item}")
        else:
            lines.append(f"{pad}{value}")

    lines += ["## Tier 1: summary", ""]
    emit(record["tier_1"], 0)
    for section, content in record["tier_2"].items():
        lines += ["", f"## Tier 2: {section.replace('_', ' ')}", ""]
        emit(content, 0)
    return "\n".join(lines) + "\n"


def write_transparency(card: ModelCard, policy: Policy, out_dir: Path) -> list[Path]:
    """Write ``transparency.json`` and ``transparency.md`` into ``out_dir``."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    record = build_record(card, policy)
    paths = [out_dir / "transparency.json", out_dir / "transparency.md"]
    paths[0].write_text(json.dumps(record, indent=2, ensure_ascii=False) + "\n")
    paths[1].write_text(render_record_markdown(record))
    return paths
