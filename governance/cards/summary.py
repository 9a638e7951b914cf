"""The card's first screen: a plain-language summary for the board.

In the spirit of the UK Algorithmic Transparency Recording Standard, Tier 1:
what the model does and for whom, and in one sentence each how much better it
is than what analysts use now, whether it is fair by each audited grouping,
what changed since the version in production, and who approved it and when.
Every number is read from the card; nothing is named by its report key.
"""

from __future__ import annotations

from dataclasses import dataclass

from governance.cards.schema import CheckRow, MarginRow, ModelCard
from governance.cards.wording import (
    FAIRNESS_METRIC_WORDS,
    baseline_words,
    group_features,
    grouping_words,
)

__all__ = ["PlainSummary", "plain_summary"]

_PAI = "pai_area_10"
_DEVIANCE = "poisson_deviance"


@dataclass(frozen=True)
class PlainSummary:
    """The summary's sentences, in the order the card shows them."""

    what: str
    for_whom: str
    better: str
    fairness: list[str]
    changes: str
    approval: str
    feature_groups: list[tuple[str, list[str]]]
    served: str = ""


def _what(card: ModelCard) -> str:
    return (
        "It forecasts how many violent incidents (police-recorded violence and A&E assault "
        "attendances) each small area can expect in each of the next few weeks, so that "
        "prevention and support can be planned where harm is most likely. Forecasts are "
        "about areas, never people, and are never the sole basis for enforcement."
    )


def _for_whom(card: ModelCard) -> str:
    named = [u if i == 0 or not u.startswith("The ") else "t" + u[1:]
             for i, u in enumerate(card.intended_use.intended_users)]  # fmt: skip
    users = " and ".join(named) or "the partnership"
    return f"It is for {users}, run by {card.model_details.owner}."


def _best_margin(card: ModelCard) -> MarginRow | None:
    for metric in (_PAI, "pai_area_5", _DEVIANCE):
        rows = [
            m for m in card.evaluation.margins
            if m.metric == metric and m.horizon == "1" and m.difference is not None
            and not m.comparator.startswith("ablation")
        ]  # fmt: skip
        if rows:
            return rows[0]
    return None


def _gain(margin: MarginRow) -> str:
    if margin.metric == _DEVIANCE:
        return (
            f"its forecast error (Poisson deviance) is {margin.difference:+.2f} against "
            f"{baseline_words(margin.comparator)}"
        )
    share = "10%" if margin.metric == _PAI else "5%"
    return (
        f"the {share} of areas it ranks highest hold {margin.difference:+.2f} more times their "
        f"share of violence than those ranked by {baseline_words(margin.comparator)}"
    )


def _better(card: ModelCard) -> str:
    margin = _best_margin(card)
    if margin is None or margin.difference is None:
        return "The backtest recorded no comparison with the analysts' methods."
    head = card.evaluation.headline
    model = head.get(f"h1.model.{margin.metric}")
    base = head.get(f"h1.best_baseline.{margin.metric}")
    levels = f" ({model:.2f} against {base:.2f})" if model is not None and base is not None else ""
    interval = (
        f", 95% interval {margin.ci_low:+.2f} to {margin.ci_high:+.2f}"
        if margin.ci_low is not None and margin.ci_high is not None
        else ""
    )
    verdict = "better than" if margin.model_better else "not clearly better than"
    return (
        f"One week ahead, {_gain(margin)}, the best of the analysts' current methods"
        f"{levels}{interval}: {verdict} what analysts use now."
    )


def _check_parts(name: str) -> list[str]:
    """``fairness.<metric>.<grouping>.<group>`` (or the older ``<metric>:<grouping>:<group>``)."""
    if name.startswith("fairness."):
        return name.split(".", 3)[1:]
    return name.split(":", 2)


def _grouping_sentence(grouping: str, checks: list[CheckRow], band: tuple[float, float]) -> str:
    gated = [c for c in checks if c.gated]
    failed = [c for c in gated if not c.passed]
    noted = [c for c in checks if not c.gated and not c.passed]
    who = grouping_words(grouping)
    if not gated:
        return f"By {who}: no comparison had enough areas to be judged."
    if failed:
        first = _check_parts(failed[0].name)
        what = FAIRNESS_METRIC_WORDS.get(first[0], first[0].replace("_", " "))
        return (
            f"By {who}: {len(failed)} of {len(gated)} judged comparisons fell outside the "
            f"policy band ({band[0]} to {band[1]}), first {what} for {first[-1]}."
        )
    extra = f"; {len(noted)} reported-only comparisons lie outside it" if noted else ""
    return (
        f"By {who}: fair on all {len(gated)} judged comparisons (every group within "
        f"{band[0]} to {band[1]} of the reference group){extra}."
    )


def _fairness(card: ModelCard) -> list[str]:
    by_grouping: dict[str, list[CheckRow]] = {g: [] for g in card.fairness.groupings}
    for check in card.fairness.checks:
        parts = _check_parts(check.name)
        if len(parts) == 3 and parts[1] in by_grouping:
            by_grouping[parts[1]].append(check)
    return [_grouping_sentence(g, rows, card.fairness.band) for g, rows in by_grouping.items()]


def _change_of(card: ModelCard, key: str) -> str | None:
    row = next((m for m in card.changes.metrics if m.metric == key), None)
    if row is None or row.previous is None or row.current is None:
        return None
    return f"{row.previous:.2f} to {row.current:.2f}"


def _changes(card: ModelCard) -> str:
    ch = card.changes
    if ch.compared_with is None:
        return "This is the first version: there is no version in production to compare with."
    parts = []
    pai, dev = _change_of(card, f"h1.model.{_PAI}"), _change_of(card, f"h1.model.{_DEVIANCE}")
    if pai:
        parts.append(f"its ranking measure moved from {pai}")
    if dev:
        parts.append(f"its forecast error from {dev}")
    if ch.features_added is not None:
        parts.append(
            f"{len(ch.features_added)} inputs added and {len(ch.features_removed or [])} removed"
        )
    if ch.policy_changed is not None:
        parts.append(
            "the governance policy changed" if ch.policy_changed else "the policy is the same"
        )
    window = card.training.window_end
    if window:
        parts.append(f"it learnt from weeks up to {window}")
    return (
        f"Against version {ch.compared_with}: " + "; ".join(parts or ["no measured change"]) + "."
    )


def _approval(card: ModelCard) -> str:
    approvals = [d for d in card.approval.decisions if d.decision == "approve"]
    names = [
        f"{d.name or d.reviewer} ({d.role}, {d.at[:10]}"
        + (f", key {d.key_fingerprint})" if d.key_fingerprint else ")")
        for d in approvals
    ]
    signed = " and ".join([", ".join(names[:-1]), names[-1]] if len(names) > 1 else names)
    status = card.approval.status
    if status == "approved":
        return f"Approved on {(card.approval.decided_at or '')[:10]} by {signed}."
    if status == "rejected":
        who = next((d for d in card.approval.decisions if d.decision == "reject"), None)
        by = f" by {who.name or who.reviewer} on {who.at[:10]}" if who else ""
        return f"Rejected{by}; it is never served."
    quorum = card.human_oversight.quorum
    got = f" So far: {signed}." if signed else ""
    return f"Not yet approved: {quorum} board members must each sign an approval.{got}"


def plain_summary(card: ModelCard) -> PlainSummary:
    """Return the plain-language summary of ``card``."""
    return PlainSummary(
        what=_what(card),
        for_whom=_for_whom(card),
        better=_better(card),
        fairness=_fairness(card),
        changes=_changes(card),
        approval=_approval(card),
        feature_groups=group_features(card.features.names),
        served=_served(card),
    )


def _served(card: ModelCard) -> str:
    served = card.evaluation.served
    if served is None:
        return "The model's own forecast is served (no combination was backtested)."
    return served.words
