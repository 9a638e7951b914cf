"""What the desk shows of a version: its card summary, gate report and changes.

Read-only views over the registry, the version's logged gate report and its
card on disk, named in words (``governance.cards.wording``) for the board.
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlflow.exceptions import MlflowException
from pydantic import ValidationError

from governance.cards.builder import card_dir
from governance.cards.schema import ModelCard
from governance.cards.summary import PlainSummary, plain_summary
from governance.cards.wording import check_words, grouping_words, headline_words
from governance.desk.settings import DeskSettings
from governance.registry import TAG_DATA, TAG_METRIC_PREFIX, TAG_POLICY, client_for
from governance.review import VersionStatus, list_versions, production_version, show_version

__all__ = [
    "GATE_ARTEFACTS",
    "GateSummary",
    "Change",
    "VersionPage",
    "versions_overview",
    "version_page",
    "read_gate_report",
    "read_card",
]

#: Where a version's gate report is logged on its run (newest naming first).
GATE_ARTEFACTS = ("gate/gate_report.json", "audit/gate_report.json")


@dataclass(frozen=True)
class GateSummary:
    """The gate report in words: overall verdict, per-category counts, what failed."""

    found: bool
    passed: bool
    categories: list[tuple[str, int, int]]
    failed: list[str]
    reported_outside: int
    rows: list[dict[str, Any]]
    fairness_by_grouping: dict[str, tuple[int, int]]


@dataclass(frozen=True)
class Change:
    """One line of what changed against production."""

    what: str
    production: str
    this_version: str


@dataclass
class VersionPage:
    """Everything the version page shows."""

    status: VersionStatus
    production: str | None
    summary: PlainSummary | None
    card_path: Path | None
    gate: GateSummary
    changes: list[Change] = field(default_factory=list)


def read_gate_report(settings: DeskSettings, run_id: str) -> dict[str, Any] | None:
    """Return the gate report logged on ``run_id``, or None when it is not there."""
    client = client_for(settings.tracking_uri)
    with tempfile.TemporaryDirectory() as tmp:
        for artefact in GATE_ARTEFACTS:
            try:
                return json.loads(
                    Path(client.download_artifacts(run_id, artefact, tmp)).read_text()
                )
            except (MlflowException, OSError, json.JSONDecodeError):
                continue
    return None


def read_card(settings: DeskSettings, version: str) -> tuple[ModelCard | None, Path | None]:
    """Return the version's card (draft or published) and its path, when written."""
    path = card_dir(settings.cards_root, settings.model_name, version) / "card.json"
    if not path.is_file():
        return None, None
    try:
        return ModelCard.model_validate_json(path.read_text()), path
    except ValidationError:
        return None, path


def _grouping_of(name: str) -> str | None:
    parts = name.split(".", 3) if name.startswith("fairness.") else ["", *name.split(":", 2)]
    return parts[2] if len(parts) == 4 else None


def _gate_summary(report: dict[str, Any] | None) -> GateSummary:
    if report is None:
        return GateSummary(False, False, [], [], 0, [], {})
    checks = report.get("checks", [])
    categories: dict[str, list[int]] = {}
    by_grouping: dict[str, list[int]] = {}
    for c in checks:
        if not c.get("gated", True):
            continue
        counts = categories.setdefault(c.get("category") or "other", [0, 0])
        counts[0] += bool(c.get("passed"))
        counts[1] += 1
        grouping = _grouping_of(str(c.get("name", "")))
        if c.get("category") == "fairness" and grouping:
            g = by_grouping.setdefault(grouping, [0, 0])
            g[0] += bool(c.get("passed"))
            g[1] += 1
    rows = [
        {"what": check_words(str(c.get("name", ""))), "category": c.get("category", ""),
         "passed": bool(c.get("passed")), "gated": bool(c.get("gated", True)),
         "value": c.get("value"), "lower": c.get("lower"), "upper": c.get("upper"),
         "detail": c.get("detail", "")}
        for c in checks
    ]  # fmt: skip
    return GateSummary(
        found=True,
        passed=bool(report.get("passed")),
        categories=[(k, v[0], v[1]) for k, v in sorted(categories.items())],
        failed=[r["what"] for r in rows if r["gated"] and not r["passed"]],
        reported_outside=sum(1 for r in rows if not r["gated"] and not r["passed"]),
        rows=rows,
        fairness_by_grouping={k: (v[0], v[1]) for k, v in sorted(by_grouping.items())},
    )


def _num(value: Any) -> str:
    try:
        return f"{float(value):.3g}"
    except (TypeError, ValueError):
        return "not recorded"


def _fairness(gate: GateSummary, grouping: str) -> str:
    ok, n = gate.fairness_by_grouping.get(grouping, (0, 0))
    return f"{ok} of {n} comparisons within the band" if n else "not judged"


def _changes(settings, status, prod, gate, prod_gate) -> list[Change]:
    mine, theirs = status.tags, prod.tags
    rows = []
    keys = sorted({k for k in (*mine, *theirs) if k.startswith(TAG_METRIC_PREFIX)})
    for key in keys:
        name = key.removeprefix(TAG_METRIC_PREFIX)
        if name.startswith("h1.model.") or name.startswith("h1.margin_best."):
            rows.append(Change(headline_words(name), _num(theirs.get(key)), _num(mine.get(key))))
    for grouping in sorted(set(gate.fairness_by_grouping) | set(prod_gate.fairness_by_grouping)):
        rows.append(Change(f"fairness by {grouping_words(grouping)}",
                           _fairness(prod_gate, grouping), _fairness(gate, grouping)))  # fmt: skip
    card, _ = read_card(settings, status.version)
    prod_card, _ = read_card(settings, prod.version)
    if card is not None and prod_card is not None:
        added = sorted(set(card.features.names) - set(prod_card.features.names))
        removed = sorted(set(prod_card.features.names) - set(card.features.names))
        rows.append(Change("inputs (features)", f"{prod_card.features.n_features}",
                           f"{card.features.n_features} ({len(added)} added, "
                           f"{len(removed)} removed)"))  # fmt: skip
        window = "{0.window_start} to {0.window_end}"
        rows.append(Change("data window (weeks learnt from)", window.format(prod_card.training),
                           window.format(card.training)))  # fmt: skip
    same_data = mine.get(TAG_DATA) == theirs.get(TAG_DATA)
    rows.append(Change("data", "", "the same records" if same_data else "different records"))
    same_policy = mine.get(TAG_POLICY) == theirs.get(TAG_POLICY)
    rows.append(Change("governance policy", "", "the same" if same_policy else "changed"))
    return rows


def versions_overview(settings: DeskSettings) -> tuple[list[VersionStatus], list[VersionStatus]]:
    """Return ``(pending, past)`` versions, newest first."""
    rows = list_versions(model_name=settings.model_name, tracking_uri=settings.tracking_uri)
    pending = [r for r in rows if r.status == "pending" and r.gate == "passed"]
    return pending, [r for r in rows if r not in pending]


def version_page(settings: DeskSettings, version: str) -> VersionPage:
    """Gather the version page: status, card summary, gate report, changes vs production."""
    status = show_version(model_name=settings.model_name, version=version,
                          tracking_uri=settings.tracking_uri)  # fmt: skip
    prod_version = production_version(model_name=settings.model_name,
                                      tracking_uri=settings.tracking_uri)  # fmt: skip
    prod = None
    if prod_version is not None:
        prod = show_version(model_name=settings.model_name, version=prod_version,
                            tracking_uri=settings.tracking_uri)  # fmt: skip
    gate = _gate_summary(read_gate_report(settings, status.run_id))
    card, card_path = read_card(settings, status.version)
    page = VersionPage(
        status=status,
        production=prod.version if prod else None,
        summary=plain_summary(card) if card is not None else None,
        card_path=card_path,
        gate=gate,
    )
    if prod is not None and prod.version != status.version:
        prod_gate = _gate_summary(read_gate_report(settings, prod.run_id))
        page.changes = _changes(settings, status, prod, gate, prod_gate)
    return page
