"""The linkage report: per source, records in, linked, quarantined by reason.

Also, per source, how many linked records each reading rule rescued (records
that the rule alone kept out of quarantine: day-first dates, the other
timestamp, location prefixes, swapped coordinates) and the source's coverage:
its span and the gaps inside it (``training.coverage``).
"""

from __future__ import annotations

import pandas as pd

from training.disclosure import suppress_small

__all__ = ["build_report", "report_markdown"]


def _rescue_counts(rescued: pd.DataFrame | None, source: str) -> dict[str, int]:
    if rescued is None or not len(rescued):
        return {}
    mine = rescued.loc[rescued["source"] == source]
    weights = mine["n"] if "n" in mine else pd.Series(1, index=mine.index)
    rules = pd.DataFrame({"rule": mine["rescue"].str.split(";"), "n": weights}).explode("rule")
    counts = rules.groupby("rule")["n"].sum()
    return {str(k): int(v) for k, v in sorted(counts.items())}


def build_report(
    linked: pd.DataFrame,
    quarantine: pd.DataFrame,
    *,
    sources: list[str],
    rescued: pd.DataFrame | None = None,
    coverage: dict[str, dict] | None = None,
) -> dict[str, dict]:
    """Count linkage outcomes per source.

    Parameters
    ----------
    linked : one row per linked item, with ``source`` and ``link_method``;
        or, with a column ``n``, one row per ``(source, link_method)`` and its count.
    quarantine : the quarantine frame.
    sources : the sources read, in report order.
    rescued : ``source`` and ``rescue`` (``;``-separated rule names) of each
        linked record, or with ``n``, of each group of ``n`` records; counted
        into ``rescued_by``.
    coverage : ``training.coverage.source_coverage`` of the linked records.

    Returns
    -------
    dict
        ``{source: {records_in, linked, quarantined: {reason: n}, match_rate,
        linked_by: {method: n}, rescued_by: {rule: n}, coverage: {...}}}``;
        ``records_in == linked + sum(quarantined)``. A record rescued by two
        rules counts under both.
    """
    report: dict[str, dict] = {}
    if rescued is not None and len(rescued):
        rescued = rescued.loc[rescued["rescue"] != ""]  # one pass; most records need no rule
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
            "rescued_by": _rescue_counts(rescued, source),
        }
        if coverage is not None and source in coverage:
            report[source]["coverage"] = coverage[source]
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
        "| source | records in | linked | match rate | linked by | rescued by | quarantined |",
        "|---|---:|---:|---:|---|---|---|",
    ]
    for source, entry in report.items():
        by = ", ".join(f"{k} {suppress_small(v)}" for k, v in entry["linked_by"].items())
        out = ", ".join(f"{k} {suppress_small(v)}" for k, v in entry["quarantined"].items())
        saved = ", ".join(
            f"{k} {suppress_small(v)}" for k, v in entry.get("rescued_by", {}).items()
        )
        lines.append(
            f"| {source} | {suppress_small(entry['records_in'])} | "
            f"{suppress_small(entry['linked'])} | {entry['match_rate']:.1%} | "
            f"{by or '-'} | {saved or '-'} | {out or '-'} |"
        )
    lines += _coverage_lines(report)
    return "\n".join(lines) + "\n"


def _coverage_lines(report: dict[str, dict]) -> list[str]:
    covered = {s: e["coverage"] for s, e in report.items() if "coverage" in e}
    if not covered:
        return []
    lines = ["", "## Coverage", "", "| source | unit | span | covered | gaps |",
             "|---|---|---|---:|---|"]  # fmt: skip
    for source, entry in covered.items():
        gaps = "; ".join(
            g["from"] if g["from"] == g["to"] else f"{g['from']} to {g['to']}"
            for g in entry["gaps"]
        )
        lines.append(
            f"| {source} | {entry['unit']} | {entry['first']} to {entry['last']} | "
            f"{len(entry['covered'])} of {entry['periods']} | {gaps or 'none'} |"
        )
    return lines
