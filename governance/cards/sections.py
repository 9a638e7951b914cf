"""Pure builders of model-card sections from the measured report contents.

Each function takes the parsed JSON of one report (``results.json``,
``gate_report.json``, ``linkage_report.json``...) and returns a section.
Unknown extra fields in the reports are ignored, so the reports may grow.
"""

from __future__ import annotations

import math
from typing import Any

from governance.cards.schema import (
    AblationRow,
    CheckRow,
    DataSection,
    Evaluation,
    FeatureAttribution,
    MarginRow,
    MetricChange,
    MetricRow,
    Plot,
    ServedForecast,
    SourceLinkage,
)
from training.disclosure import suppress_small

__all__ = [
    "number",
    "data_section",
    "evaluation_section",
    "served_section",
    "check_rows",
    "top_features",
    "metric_changes",
    "data_limitations",
    "SUPPRESSION_RULE",
]

SUPPRESSION_RULE = "Counts from 1 to 4 are shown as '<5' so no small group can be singled out."
_TABLE_KEYS = {"method", "horizon", "n"}


def number(value: Any) -> float | None:
    """Return ``value`` as a finite float, or None (missing, NaN, not a number)."""
    try:
        out = float(value)
    except (TypeError, ValueError):
        return None
    return out if math.isfinite(out) else None


def data_section(linkage: dict[str, Any]) -> DataSection:
    """Summarise the linkage report per source, suppressing counts under five."""
    sources = []
    for source, rep in sorted(linkage.items()):
        if not isinstance(rep, dict):
            continue
        quarantined = rep.get("quarantined") or {}
        if not isinstance(quarantined, dict):
            quarantined = {"total": quarantined}
        sources.append(
            SourceLinkage(
                source=source,
                records_in=suppress_small(rep.get("records_in", 0)),
                linked=suppress_small(rep.get("linked", 0)),
                quarantined={k: suppress_small(v) for k, v in sorted(quarantined.items())},
                match_rate=number(rep.get("match_rate")),
                linked_by={
                    k: suppress_small(v) for k, v in sorted(rep.get("linked_by", {}).items())
                },
            )
        )
    return DataSection(sources=sources, suppression_rule=SUPPRESSION_RULE)


def _metric_rows(table: list[dict[str, Any]]) -> list[MetricRow]:
    rows = []
    for record in table:
        for key, value in record.items():
            if key in _TABLE_KEYS or isinstance(value, str | bool):
                continue
            rows.append(
                MetricRow(
                    method=str(record.get("method", "")),
                    horizon=str(record.get("horizon", "all")),
                    metric=key,
                    value=number(value),
                )
            )
    return rows


def _margin_rows(margins: list[dict[str, Any]], method: str = "model") -> list[MarginRow]:
    margins = [m for m in margins if m.get("method", "model") == method]
    return [
        MarginRow(
            metric=str(m.get("metric", "")),
            horizon=str(m.get("horizon", "all")),
            comparator=str(m.get("comparator", "")),
            difference=number(m.get("difference")),
            ci_low=number(m.get("ci_low")),
            ci_high=number(m.get("ci_high")),
            model_better=m.get("model_better") if isinstance(m.get("model_better"), bool) else None,
        )
        for m in margins
    ]


def _ablation_rows(ablations: list[dict[str, Any]]) -> list[AblationRow]:
    return [
        AblationRow(
            group=str(a.get("group", "")),
            words=str(a.get("words") or a.get("group", "")),
            metric=str(a.get("metric", "")),
            horizon=str(a.get("horizon", "")),
            difference=number(a.get("difference")),
            ci_low=number(a.get("ci_low")),
            ci_high=number(a.get("ci_high")),
            group_helps=a.get("group_helps") if isinstance(a.get("group_helps"), bool) else None,
        )
        for a in ablations
        if isinstance(a, dict)
    ]


def served_section(results: dict[str, Any], stack: dict[str, Any] | None) -> ServedForecast | None:
    """Say what is served and why, from ``stack.json`` and the backtest's stacked margins."""
    if stack is None:
        return None
    from training.forecaster import ServedStack
    from training.stacking import weights_words

    served = ServedStack.from_json(stack)
    words = " ".join(
        [weights_words(served, h) for h in sorted(served.weights)][:1] + [served.reason]
    )
    weights = {
        str(h): {c: round(float(v), 4) for c, v in zip(served.components, w, strict=True) if v > 0}
        for h, w in sorted(served.weights.items())
    }
    return ServedForecast(
        method=served.served_method,
        words=words,
        weights=weights,
        margins=_margin_rows(results.get("margins", []), method="stacked"),
    )


def evaluation_section(
    results: dict[str, Any], plots: list[Plot], stack: dict[str, Any] | None = None
) -> Evaluation:
    """Build the evaluation section from the backtest's ``results.json`` (and ``stack.json``)."""
    summary = results.get("summary", {})
    headline = {k: number(v) for k, v in sorted(summary.get("headline", {}).items())}
    return Evaluation(
        baselines=[str(b) for b in summary.get("baselines", [])],
        headline=headline,
        metrics=_metric_rows(results.get("table", [])),
        margins=_margin_rows(results.get("margins", [])),
        oracle_capture={k: v for k, v in headline.items() if ".oracle_capture." in k},
        plots=plots,
        served=served_section(results, stack),
        ablations=_ablation_rows(results.get("ablations") or []),
    )


def check_rows(checks: list[dict[str, Any]], *, category: str | None = None) -> list[CheckRow]:
    """Return the gate checks (optionally of one category) as card rows."""
    rows = []
    for c in checks:
        if category is not None and c.get("category") != category:
            continue
        value = c.get("value")
        rows.append(
            CheckRow(
                name=str(c.get("name", "")),
                category=str(c.get("category", "")),
                passed=bool(c.get("passed")),
                gated=bool(c.get("gated", True)),
                value=value if isinstance(value, str) else number(value),
                lower=number(c.get("lower")),
                upper=number(c.get("upper")),
                ci_low=number(c.get("ci_low")),
                ci_high=number(c.get("ci_high")),
                detail=str(c.get("detail") or ""),
            )
        )
    return rows


def top_features(shap: dict[str, Any], *, limit: int = 15) -> list[FeatureAttribution]:
    """Read mean |SHAP| per feature from the gate's SHAP summary, largest first."""
    found: list[FeatureAttribution] = []
    for key in ("top_features", "importance", "mean_abs_shap", "global_importance"):
        entries = shap.get(key)
        if isinstance(entries, dict):
            entries = [{"feature": k, "mean_abs_shap": v} for k, v in entries.items()]
        if not isinstance(entries, list):
            continue
        for e in entries:
            if not isinstance(e, dict) or "feature" not in e:
                continue
            value = number(e.get("mean_abs_shap", e.get("importance", e.get("value"))))
            if value is not None:
                found.append(FeatureAttribution(feature=str(e["feature"]), mean_abs_shap=value))
        if found:
            break
    return sorted(found, key=lambda f: -f.mean_abs_shap)[:limit]


def metric_changes(current: dict[str, str], previous: dict[str, str]) -> list[MetricChange]:
    """Compare ``harmcast.metric.*`` tag values of two versions."""
    rows = []
    for key in sorted(set(current) | set(previous)):
        now, before = number(current.get(key)), number(previous.get(key))
        change = None if now is None or before is None else now - before
        rows.append(MetricChange(metric=key, previous=before, current=now, change=change))
    return rows


def data_limitations(counts: dict[str, Any]) -> list[str]:
    """State coverage gaps and feedback-loop flags, with their counts, as limitations.

    ``counts`` is ``training.feedback.limitation_counts`` of the panel layer.
    """
    lines = []
    for source, gap in sorted((counts.get("coverage") or {}).items()):
        spans = ", ".join(
            g["from"] if g["from"] == g["to"] else f"{g['from']} to {g['to']}" for g in gap["gaps"]
        )
        lines.append(
            f"Coverage gap: {source} has no records in {gap['missing']} of {gap['periods']} "
            f"{gap['unit']}s of its span ({spans}); those weeks are missing, not zero, and are "
            "neither trained on nor scored."
        )
    fb = counts.get("feedback")
    if fb:
        s = fb.get("settings", {})
        lines.append(
            f"Feedback loop: in {fb['areas_flagged']} of {fb['areas_tested']} areas tested the "
            "police share of police-recorded violence plus A&E assaults rose beyond chance over "
            f"the last {s.get('window_weeks')} weeks against the {s.get('baseline_weeks')} "
            f"before ({fb['flagged_after_hotspot']} of them hotspots just before; false-alarm "
            f"rate {fb['false_alarm_rate']:.0%} per area): their police records may follow "
            "patrols rather than harm."
        )
    return lines
