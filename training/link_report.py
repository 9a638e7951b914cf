"""The linkage report: per source, records in, linked, quarantined by reason."""

from __future__ import annotations

import pandas as pd

from training.disclosure import suppress_small

__all__ = ["build_report", "report_markdown"]


def build_report(
    linked: pd.DataFrame, quarantine: pd.DataFrame, *, sources: list[str]
) -> dict[str, dict]:
    """Count linkage outcomes per source.

    Parameters
    ----------
    linked : one row per linked item, with ``source`` and ``link_method``;
        or, with a column ``n``, one row per ``(source, link_method)`` and its count.
    quarantine : the quarantine frame.
    sources : the sources read, in report order.

    Returns
    -------
    dict
        ``{source: {records_in, linked, quarantined: {reason: n}, match_rate,
        linked_by: {method: n}}}``; ``records_in == linked + sum(quarantined)``.
    """
    report: dict[str, dict] = {}
    for source in sources:
        mine = linked.loc[linked["source"] == source]
        methods = (
            mine.groupby("link_method")["n"].sum()
            if "n" in linked
            else mine["link_method"].value_counts()
        )
        reasons = quarantine.loc[quarantine["source"] == source, "reason"].value_counts()
        n_linked, n_quarantined = int(methods.sum()), int(reasons.sum())
        records_in = n_linked + n_quarantined
        report[source] = {
            "records_in": records_in,
            "linked": n_linked,
            "quarantined": {str(k): int(v) for k, v in sorted(reasons.items())},
            "match_rate": round(n_linked / records_in, 4) if records_in else 0.0,
            "linked_by": {str(k): int(v) for k, v in sorted(methods.items())},
        }
    return report


def report_markdown(report: dict[str, dict], *, reference: str) -> str:
    """Render the report as markdown, counts of 1-4 suppressed as ``<5``."""
    lines = [
        "# Linkage report",
        "",
        f"Area reference: {reference}.",
        "",
        "Counts from 1 to 4 are shown as <5.",
        "",
        "| source | records in | linked | match rate | linked by | quarantined |",
        "|---|---:|---:|---:|---|---|",
    ]
    for source, entry in report.items():
        by = ", ".join(f"{k} {suppress_small(v)}" for k, v in entry["linked_by"].items())
        out = ", ".join(f"{k} {suppress_small(v)}" for k, v in entry["quarantined"].items())
        lines.append(
            f"| {source} | {suppress_small(entry['records_in'])} | "
            f"{suppress_small(entry['linked'])} | {entry['match_rate']:.1%} | "
            f"{by or '-'} | {out or '-'} |"
        )
    return "\n".join(lines) + "\n"
