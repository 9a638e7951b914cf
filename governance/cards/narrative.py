"""The fixed statements of a model card, completed with measured numbers.

The intended use, the out-of-scope uses and the oversight process are the
project's commitments, so they are constants here rather than typed per card;
the limitations quote the measurements (linkage, ablation, fairness checks)
they rest on.
"""

from __future__ import annotations

from governance.cards.schema import (
    CheckRow,
    Considerations,
    DataSection,
    Evaluation,
    HumanOversight,
    IntendedUse,
    Reviewer,
)
from governance.cards.wording import metric_words
from governance.policy import Policy

__all__ = [
    "MODEL_TYPE",
    "RECORDING_PREFIX",
    "intended_use",
    "considerations",
    "human_oversight",
    "recording_statement",
]

MODEL_TYPE = "LightGBM gradient-boosted trees, Poisson objective, weekly area forecasts"

OUT_OF_SCOPE = [
    "Any forecast, score or decision about an individual person: the model has no "
    "person-level inputs and must not be joined to any.",
    "The sole basis for enforcement, arrest, or stop and search, or for deploying "
    "enforcement to an area without human review of the context.",
    "Judging the performance of teams or agencies, or allocating funding by score alone.",
    "Areas or periods outside the data it was trained and backtested on.",
]


def intended_use() -> IntendedUse:
    """Return the intended and out-of-scope uses (areas, never people)."""
    return IntendedUse(
        unit_of_analysis="small area x ISO week",
        primary_uses=[
            "Prioritising prevention and support (youth outreach, street lighting, "
            "licensed-premises partnership work, health-led interventions) across areas.",
            "Giving partnership analysts a forecast to compare with their own judgement.",
        ],
        intended_users=[
            "Violence Reduction Partnership analysts and planners",
            "The governance board reviewing the model",
        ],
        out_of_scope=list(OUT_OF_SCOPE),
    )


RECORDING_PREFIX = "fairness.recording_ratio."
NO_RECORDING_GAP = (
    "Police recording: no audit group's police-recorded violence per A&E assault "
    "attendance differs significantly from its reference group's (expected counts "
    "standardised by deprivation decile, so recording that differs with deprivation "
    "itself is not measured)."
)


def recording_statement(checks: list[CheckRow]) -> str:
    """Say in words which groups' forecasts rest on under- or over-recorded data.

    A group is named when the interval of its police-records-per-A&E ratio to
    its reference group excludes 1 (gated or reported only).
    """
    named = []
    for c in checks:
        if not c.name.startswith(RECORDING_PREFIX) or None in (c.value, c.ci_low, c.ci_high):
            continue
        if c.ci_low <= 1.0 <= c.ci_high:
            continue
        grouping, _, group = c.name.removeprefix(RECORDING_PREFIX).partition(".")
        reference = c.detail.split(" vs ", 1)[1].split(" (", 1)[0] if " vs " in c.detail else "?"
        word = "over-recorded" if c.value > 1 else "under-recorded"
        named.append(
            f"{group} ({grouping}) rests on {word} data: police record {c.value:.2f} times "
            f"the violence per A&E attendance that they record in {reference} "
            f"(95% interval {c.ci_low:.2f} to {c.ci_high:.2f})"
        )
    if not named:
        return NO_RECORDING_GAP
    return "Police recording: the forecast for " + "; for ".join(named) + "."


def _rate(value: float | None) -> str:
    return "not recorded" if value is None else f"{value:.1%}"


def _words(metric: str) -> str:
    return metric_words(metric).split(" (")[0]


def _ablation(evaluation: Evaluation) -> str | None:
    keys = sorted(k for k in evaluation.headline if k.startswith("h1.margin_police_only."))
    metrics = sorted({k.split(".")[2] for k in keys})
    for metric in metrics:
        base = f"h1.margin_police_only.{metric}"
        diff = evaluation.headline.get(f"{base}.difference")
        low, high = (evaluation.headline.get(f"{base}.{e}") for e in ("ci_low", "ci_high"))
        if diff is not None:
            return (
                f"Adding the non-police sources changed the {_words(metric)} one week ahead by "
                f"{diff:+.4g} (95% interval {low:.4g} to {high:.4g}) against a police-only model."
                if low is not None and high is not None
                else f"Adding the non-police sources changed the {_words(metric)} by {diff:+.4g}."
            )
    return None


def considerations(
    data: DataSection, evaluation: Evaluation, checks: list[CheckRow]
) -> Considerations:
    """State the limitations and ethical risks, quoting the measurements."""
    rates = "; ".join(f"{s.source} {_rate(s.match_rate)}" for s in data.sources)
    limitations = [
        f"Share of records linked to an area, by source: {rates or 'no linkage report'}. "
        "Unlinked records are quarantined and do not reach the forecasts.",
        "Violence that is reported to neither the police nor an emergency department is "
        "invisible to the model; under-reporting varies between communities, so low "
        "forecasts are not evidence of low harm.",
        "Forecasts are expected counts with intervals; small areas have wide intervals "
        "and single weeks are noisy.",
    ]
    limitations.append(recording_statement(checks))
    ablation = _ablation(evaluation)
    if ablation:
        limitations.append(ablation)
    if evaluation.oracle_capture:
        limitations.append(
            "Oracle comparisons use a synthetic city whose true expected counts are known; "
            "they show what the method can recover, not its accuracy on real records."
        )
    flagged = [c.name for c in checks if not c.passed and not c.gated]
    gated = [c for c in checks if c.gated]
    ethical = [
        "Feedback loop: recorded crime follows where police patrol, so areas patrolled "
        "more produce more records and higher forecasts, which can attract more patrols. "
        "The target adds emergency-department assault attendances to reduce this, and "
        "forecasts must not be used to direct enforcement alone.",
        f"Fairness: {sum(c.passed for c in gated)} of {len(gated)} judged comparisons between "
        "groups of areas lie inside the policy band"
        + (
            f"; {len(flagged)} reported-only comparisons lie outside it (see the fairness table)."
            if flagged
            else "."
        ),
        "Area-level forecasts can stigmatise neighbourhoods; publish them as areas for "
        "support, not as lists of dangerous places.",
    ]
    return Considerations(limitations=limitations, ethical_considerations=ethical)


def human_oversight(policy: Policy) -> HumanOversight:
    """Describe the board, its quorum and the checks a human makes before use."""
    return HumanOversight(
        board=[Reviewer(id=r.id, name=r.name, role=r.role) for r in policy.board.roster],
        quorum=policy.board.quorum,
        process=[
            "A version is registered only when every gated fairness, explanation and "
            "champion check passes.",
            f"It is served only after {policy.board.quorum} distinct board members approve "
            "it with a written rationale; one rejection is final.",
            "Every registration, decision, rollback and publication is recorded in a "
            "hash-chained audit log.",
            "Planners review each flagged area with local knowledge before acting; the "
            "board can roll production back to the previous version at any time.",
        ],
    )
