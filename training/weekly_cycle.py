"""The weekly cycle: append the new week, score last week's forecast, watch for drift.

``run_weekly`` does, in order: link the delivery against the existing area
reference; append its week to the panel (refusing a repeated week or a gap);
score the published horizon-1 forecast for that week; check each source's
input for drift; judge the pooled window against ``policy.monitoring``;
refresh the serving snapshot from the grown panel with the registry's
``production`` version (never with an unapproved model: without a servable
production version the snapshot is left alone and the log says why); append
one line to the monitoring log and rewrite the HTML report. A breach is a finding, not an
error: when one check breaches ``monitoring.breach_weeks`` weeks in a row the
model is flagged for review (a flag file, and a tag on the production version
when an MLflow registry exists). Only bad input raises.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from governance.policy import Policy
from training.config import Params, tracking_uri
from training.drift import source_drift
from training.errors import HarmcastError, SchemaError
from training.monitoring import (
    LOG_FILE,
    append_log,
    clean_json,
    judge_window,
    read_log,
    review_reasons,
)
from training.monitoring import score_forecast as _score
from training.monitoring_report import write_report
from training.panel import read_panel_layer
from training.weekly import MSG_NOT_A_FOLDER, append_week, link_week

if TYPE_CHECKING:
    from serving.approval import ApprovedModel
    from training.model import Forecaster

__all__ = [
    "MONITORING_DIR",
    "REVIEW_FILE",
    "TAG_REVIEW",
    "TAG_REVIEW_REASON",
    "MSG_NO_PANEL",
    "SnapshotRefresh",
    "WeeklyResult",
    "run_weekly",
    "production_forecaster",
    "refresh_snapshot",
    "flag_for_review",
]

#: The monitoring layer, relative to ``paths.root``.
MONITORING_DIR = Path("data/10_monitoring")
REVIEW_FILE = "review_required.json"
TAG_REVIEW = "harmcast.review_required"
TAG_REVIEW_REASON = "harmcast.review_reason"
MSG_NO_PANEL = "not found: build the panel first (`harmcast panel`)"


@dataclass(frozen=True)
class SnapshotRefresh:
    """Whether the cycle refreshed the serving snapshot: with which version, or why not."""

    refreshed: bool
    origin_week: str | None = None
    model_name: str | None = None
    model_version: str | None = None
    reason: str | None = None

    def log_fields(self) -> dict:
        """Return the monitoring log's ``snapshot_*`` fields."""
        return {"snapshot_refreshed": self.refreshed, "snapshot_origin": self.origin_week,
                "snapshot_model": self.model_name, "snapshot_model_version": self.model_version,
                "snapshot_reason": self.reason}  # fmt: skip


@dataclass(frozen=True)
class WeeklyResult:
    """What one weekly cycle did: the log entry, the snapshot refresh and the files written."""

    entry: dict
    log_path: Path
    report_path: Path
    review_path: Path | None
    snapshot: SnapshotRefresh


def production_forecaster(params: Params) -> tuple[ApprovedModel, Forecaster]:
    """Return ``(ApprovedModel, Forecaster)`` of the registry's ``production`` version.

    The checks are the service's (``serving.approval.resolve_approved``):
    approved, gate passed, and its published card verifies.

    Raises
    ------
    NotApproved
        No registry or no ``production`` version, or one that may not be served.
    SchemaError
        When the version's dispersion (``model_meta.json``) is not found.
    """
    from serving.approval import resolve_approved
    from serving.bundle import load_forecaster

    uri, paths = tracking_uri(params), params.paths
    approved = resolve_approved(uri, params.tracking.registered_model,
                                cards_root=paths.resolve("model_cards"))  # fmt: skip
    forecaster = load_forecaster(approved, tracking_uri=uri, models_dir=paths.resolve("models"))
    return approved, forecaster


def refresh_snapshot(
    params: Params, policy: Policy, panel: pd.DataFrame, areas: pd.DataFrame,
    adjacency: pd.DataFrame,
) -> SnapshotRefresh:  # fmt: skip
    """Rebuild the serving snapshot from the grown panel with the production version.

    Only the registry's ``production`` version (approved, gate passed, card
    verified) may produce what the service reads; a model merely trained into
    ``data/05_models`` never does. Without such a version the snapshot is left
    exactly as it was and the result says why.
    """
    from mlflow.exceptions import MlflowException

    from serving.snapshot import build_snapshot, write_snapshot
    from training.features import build_features

    try:
        approved, forecaster = production_forecaster(params)
        features = build_features(panel, areas, adjacency, params.features)
        snapshot = build_snapshot(
            features,
            forecaster,
            areas,
            policy_coverage=policy.serving.hotspot_coverage,
            model_name=approved.name,
            model_version=approved.version,
        )
    except (HarmcastError, MlflowException) as exc:
        # not bad input: the week is still appended, scored and logged, with the reason
        return SnapshotRefresh(False, reason=str(exc))
    written = write_snapshot(snapshot, params.paths.resolve("snapshot"))
    return SnapshotRefresh(True, origin_week=written.meta.origin_week, model_name=approved.name,
                           model_version=str(approved.version))  # fmt: skip


def flag_for_review(params: Params, reasons: list[str], *, week: str) -> Path:
    """Write the review flag and tag the production version when a registry exists."""
    out_dir = params.paths.root / MONITORING_DIR
    out_dir.mkdir(parents=True, exist_ok=True)
    reason = f"week {week}: " + "; ".join(reasons)
    flag = {"week": week, "reasons": reasons, "reason": reason, "model_version": None,
            "flagged_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds")}  # fmt: skip
    db = (params.paths.root / params.tracking.store / "mlflow.db").resolve()
    if db.is_file():
        from mlflow import MlflowClient
        from mlflow.exceptions import MlflowException

        client = MlflowClient(tracking_uri=tracking_uri(params))
        name = params.tracking.registered_model
        try:
            version = client.get_model_version_by_alias(name, "production")
        except MlflowException:
            version = None  # no registered model or no production version: the file suffices
        if version is not None:
            client.set_model_version_tag(name, version.version, TAG_REVIEW, "true")
            client.set_model_version_tag(name, version.version, TAG_REVIEW_REASON, reason[:4900])
            flag["model_version"] = str(version.version)
    path = out_dir / REVIEW_FILE
    path.write_text(json.dumps(flag, indent=2) + "\n")
    return path


def _baseline_rates(history: list[dict], linked_dir: Path, trailing: int) -> dict[str, float]:
    rates: dict[str, list[float]] = {}
    for entry in history[-trailing:]:
        for d in entry.get("drift", []):
            if d.get("match_rate") is not None:
                rates.setdefault(d["source"], []).append(d["match_rate"])
    report_path = linked_dir / "linkage_report.json"
    if report_path.is_file():
        for source, row in json.loads(report_path.read_text()).items():
            rates.setdefault(source, [row.get("match_rate", 0.0)])
    return {s: sum(v) / len(v) for s, v in rates.items() if v}


def _write_panel(panel: pd.DataFrame, panel_dir: Path) -> None:
    # write then rename: a failed write never leaves half a panel behind
    tmp = panel_dir / "panel.parquet.tmp"
    panel.to_parquet(tmp, index=False)
    os.replace(tmp, panel_dir / "panel.parquet")


def run_weekly(
    params: Params, policy: Policy, week_dir: Path, *, week: pd.Timestamp | None = None
) -> WeeklyResult:
    """Run the weekly cycle on one delivery folder (see the module docstring).

    Raises
    ------
    SchemaError, LinkageError
        On bad input: a malformed file, an unknown area, a week already in
        the panel or a gap. Nothing is written then.
    """
    started = time.perf_counter()
    paths = params.paths
    panel_dir = paths.resolve("panel")
    if not Path(week_dir).is_dir():
        raise SchemaError(week_dir, MSG_NOT_A_FOLDER)
    if not (panel_dir / "panel.parquet").is_file():
        raise SchemaError(panel_dir / "panel.parquet", MSG_NO_PANEL)
    panel, areas, adjacency = read_panel_layer(panel_dir)
    ingest = link_week(week_dir, params.sources, params.link, week=week,
                       reference_dir=paths.resolve("raw") / "reference")  # fmt: skip
    grown = append_week(panel, ingest.records, areas, week=ingest.week)
    out_dir = paths.root / MONITORING_DIR
    log_path = out_dir / LOG_FILE
    history = read_log(log_path)
    snapshot_file = paths.resolve("snapshot") / "snapshot.parquet"
    groupings = list(policy.fairness.groupings)
    score = None
    if snapshot_file.is_file():
        published = pd.read_parquet(snapshot_file)
        score = _score(published, grown, areas, week=ingest.week, groupings=groupings)
    mon = policy.monitoring
    scored = [e["score"] for e in history if e.get("score")] + ([score] if score else [])
    window, breaches = judge_window(scored[-mon.window_weeks :], policy)
    rates = {s: r.get("match_rate") for s, r in ingest.report.items()}
    baseline = _baseline_rates(history, paths.resolve("linked"), mon.drift.trailing_weeks)
    counts = {s: int(r.get("records_in", 0)) for s, r in ingest.report.items()}
    drifted: dict[str, set[pd.Timestamp]] = {}
    for past in history:
        for d in past.get("drift", []):
            if "count" in d.get("breaches", []):
                drifted.setdefault(d["source"], set()).add(pd.Timestamp(past["week"]))
    drift = source_drift(grown, ingest.week, match_rates=rates, records_in=counts,
                         baseline_rates=baseline, drifted=drifted,
                         policy=mon.drift)  # fmt: skip
    breaches += [f"drift.{d['source']}.{b}" for d in drift for b in d["breaches"]]
    week_label = f"{ingest.week:%Y-%m-%d}"
    entry = {
        "week": week_label, "delivery": str(week_dir), "records": int(len(ingest.records)),
        "quarantined": int(len(ingest.quarantine)), "outside_week": ingest.outside_week,
        "month_grain": ingest.month_grain, "score": score, "window": window,
        "drift": drift, "breaches": sorted(breaches), "policy_sha256": policy.sha256,
    }  # fmt: skip
    reasons = review_reasons([*history, entry], mon.breach_weeks)
    _write_panel(grown, panel_dir)
    refresh = refresh_snapshot(params, policy, grown, areas, adjacency)
    entry.update(refresh.log_fields())
    review_path = flag_for_review(params, reasons, week=week_label) if reasons else None
    entry.update(review_required=bool(reasons), review_reasons=reasons,
                 seconds=round(time.perf_counter() - started, 3))  # fmt: skip
    append_log(log_path, entry)
    report = write_report([*history, clean_json(entry)], policy,
                          out_dir, log_path=log_path)  # fmt: skip
    return WeeklyResult(entry=entry, log_path=log_path, report_path=report,
                        review_path=review_path, snapshot=refresh)  # fmt: skip
