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

The cycle is all or nothing: it computes everything first, then writes the
panel, snapshot, report and log as temporaries and renames them into place
(``training.atomic``), the log last. Whatever fails before the renames (a
model that will not load, a full disk) leaves every file as it was, and the
same week can be run again. Only the review flag and its registry tag are
written before the renames; a rerun writes them again alike.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from governance.policy import Policy
from monitoring.drift import source_drift
from monitoring.monitoring import (
    LOG_FILE,
    clean_json,
    judge_window,
    log_line,
    read_log,
    review_reasons,
)
from monitoring.monitoring import score_forecast as _score
from monitoring.monitoring_report import REPORT_FILE, render_report
from monitoring.weekly import MSG_NOT_A_FOLDER, WeekIngest, append_week, link_week
from training.atomic import commit_files, discard_files, stage_files
from training.config import Params, tracking_uri
from training.errors import HarmcastError, SchemaError
from training.feedback import FeedbackSettings, feedback_summary, flagged_rows, recording_shift
from training.panel import read_panel_layer

if TYPE_CHECKING:
    from serving.approval import ApprovedModel
    from serving.snapshot import Snapshot
    from training.forecaster import Forecaster

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
    "build_refresh",
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

    The checks are the service's (``serving.approval.resolve_approved``, that is
    ``governance.servable.check_servable``): signed approvals by a quorum, its
    gate report, and its published card.

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
    approved = resolve_approved(
        uri, params.tracking.registered_model, cards_root=paths.resolve("model_cards"),
        root=paths.root,
    )  # fmt: skip
    forecaster = load_forecaster(approved, tracking_uri=uri, models_dir=paths.resolve("models"))
    return approved, forecaster


def refresh_daily_events(params: Params, records: pd.DataFrame | None):
    """Return the near-repeat input: the linked layer's day-grain records and the new week's."""
    from training.near_repeat import daily_events, read_daily_events, read_linked_records
    from training.panel import COVERAGE_FILE

    linked = params.paths.resolve("linked")
    if records is None:
        return read_daily_events(linked, params.paths.resolve("panel") / COVERAGE_FILE)
    history = read_linked_records(linked)
    frames = [f for f in (history, records) if f is not None and not f.empty]
    if not frames:
        return None
    columns = ["source", "area_code", "date", "grain", "is_violence"]
    return daily_events(pd.concat([f[columns] for f in frames], ignore_index=True))


def build_refresh(
    params: Params, policy: Policy, panel: pd.DataFrame, areas: pd.DataFrame,
    adjacency: pd.DataFrame, records: pd.DataFrame | None = None,
) -> tuple[SnapshotRefresh, Snapshot | None, dict[Path, bytes]]:  # fmt: skip
    """Build, without writing it, the serving snapshot of the grown panel.

    Only the registry's ``production`` version (approved, gate passed, card
    verified) may produce what the service reads; a model merely trained into
    ``data/05_models`` never does. Without such a version the snapshot is None
    and the refresh says why. The third item is the briefing's inputs
    (``serving.briefing.inputs``), by path, to be written with the snapshot.
    ``records`` are the new week's linked records: with the linked layer's,
    they give the near-repeat features, as ``harmcast features`` does.
    """
    from mlflow.exceptions import MlflowException

    from serving.briefing.inputs import briefing_origins, build_briefing_files
    from serving.snapshot import build_snapshot
    from training.features import build_features
    from training.stacking import component_forecasts

    try:
        approved, forecaster = production_forecaster(params)
        daily = refresh_daily_events(params, records)
        features = build_features(panel, areas, adjacency, params.features, daily)
        # the baselines the served forecast weighs (stack.json), at the latest origin
        components = component_forecasts(forecaster.stack, features, panel, adjacency, params,
                                         origins=briefing_origins(features))  # fmt: skip
        snapshot = build_snapshot(
            features,
            forecaster,
            areas,
            policy_coverage=policy.serving.hotspot_coverage,
            model_name=approved.name,
            model_version=approved.version,
            components=components,
        )
        briefing = build_briefing_files(
            snapshot, features, forecaster, areas, params.paths.resolve("snapshot"),
            boundaries=params.paths.resolve("raw") / "reference" / "boundaries.geojson",
            components=components,
        )  # fmt: skip
    except (HarmcastError, MlflowException) as exc:
        # not bad input: the week is still appended, scored and logged, with the reason
        return SnapshotRefresh(False, reason=str(exc)), None, {}
    refresh = SnapshotRefresh(True, origin_week=snapshot.meta.origin_week, model_name=approved.name,
                              model_version=str(approved.version))  # fmt: skip
    return refresh, snapshot, briefing


def refresh_snapshot(
    params: Params, policy: Policy, panel: pd.DataFrame, areas: pd.DataFrame,
    adjacency: pd.DataFrame,
) -> SnapshotRefresh:  # fmt: skip
    """Rebuild the serving snapshot from the grown panel with the production version.

    See :func:`build_refresh`; without a servable production version the
    snapshot is left exactly as it was and the result says why.
    """
    from serving.snapshot import snapshot_files
    from training.atomic import write_files

    refresh, snapshot, briefing = build_refresh(params, policy, panel, areas, adjacency)
    if snapshot is not None:
        write_files({**snapshot_files(snapshot, params.paths.resolve("snapshot"))[1], **briefing})
    return refresh


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


def _judge_week(
    params: Params, policy: Policy, ingest: WeekIngest, grown: pd.DataFrame,
    areas: pd.DataFrame, history: list[dict], week_dir: Path,
) -> tuple[dict, list[str]]:  # fmt: skip
    """Return the week's log entry (score, window, drift, breaches) and the review reasons."""
    paths, mon = params.paths, policy.monitoring
    snapshot_file = paths.resolve("snapshot") / "snapshot.parquet"
    score = None
    if snapshot_file.is_file():
        published = pd.read_parquet(snapshot_file)
        score = _score(published, grown, areas, week=ingest.week,
                       groupings=list(policy.fairness.groupings))  # fmt: skip
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
    feedback = _feedback(grown, ingest.week)
    entry = {
        "week": f"{ingest.week:%Y-%m-%d}", "delivery": str(week_dir),
        "records": int(len(ingest.records)), "quarantined": int(len(ingest.quarantine)),
        "outside_week": ingest.outside_week, "month_grain": ingest.month_grain, "score": score,
        "window": window, "drift": drift, "breaches": sorted(breaches), "feedback": feedback,
        "gaps": [d["source"] for d in drift if d.get("gap")],
        "policy_sha256": policy.sha256,
    }  # fmt: skip
    return entry, review_reasons([*history, entry], mon.breach_weeks)


def _feedback(panel: pd.DataFrame, week: pd.Timestamp) -> dict | None:
    """Return the feedback-loop monitor on the grown panel (``training.feedback``), or None."""
    needed = {"police_violence", "ae_assault", "violence"}
    if not needed <= set(panel.columns) or panel["ae_assault"].isna().all():
        return None
    settings = FeedbackSettings()
    checks = recording_shift(panel, end_week=week, settings=settings)
    return {**feedback_summary(checks, settings), "rows": flagged_rows(checks)}


def _week_files(
    params: Params, policy: Policy, grown: pd.DataFrame, snapshot: Snapshot | None,
    history: list[dict], entry: dict, briefing: dict[Path, bytes],
) -> dict[Path, bytes]:  # fmt: skip
    """Return the bytes the cycle writes, by path, in commit order (the log last)."""
    from serving.snapshot import snapshot_files

    files: dict[Path, bytes] = {}
    if snapshot is not None:
        files.update(snapshot_files(snapshot, params.paths.resolve("snapshot"))[1])
        files.update(briefing)
    buffer = io.BytesIO()
    grown.to_parquet(buffer, index=False)
    files[params.paths.resolve("panel") / "panel.parquet"] = buffer.getvalue()
    out_dir = params.paths.root / MONITORING_DIR
    log_path = out_dir / LOG_FILE
    html = render_report([*history, clean_json(entry)], policy, log_path=log_path)
    files[out_dir / REPORT_FILE] = html.encode("utf-8")
    logged = log_path.read_bytes() if log_path.is_file() else b""
    files[log_path] = logged + log_line(entry).encode("utf-8")
    return files


def run_weekly(
    params: Params, policy: Policy, week_dir: Path, *, week: pd.Timestamp | None = None
) -> WeeklyResult:
    """Run the weekly cycle on one delivery folder (see the module docstring).

    Everything is computed before anything is written; the panel, snapshot,
    report and log are then staged beside their targets and renamed into
    place together. A failure before the renames leaves every file as it
    was, so the same week can simply be run again.

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
    delivered = {src: int(r.get("records_in", 0)) for src, r in ingest.report.items()}
    grown = append_week(panel, ingest.records, areas, week=ingest.week, delivered=delivered)
    out_dir = paths.root / MONITORING_DIR
    history = read_log(out_dir / LOG_FILE)
    entry, reasons = _judge_week(params, policy, ingest, grown, areas, history, week_dir)
    refresh, snapshot, briefing = build_refresh(
        params, policy, grown, areas, adjacency, ingest.records
    )
    entry.update(refresh.log_fields())
    entry.update(review_required=bool(reasons), review_reasons=reasons,
                 seconds=round(time.perf_counter() - started, 3))  # fmt: skip
    staged = stage_files(_week_files(params, policy, grown, snapshot, history, entry, briefing))
    try:
        # the flag and the registry tag are rewritten alike when the week is run again
        review_path = flag_for_review(params, reasons, week=entry["week"]) if reasons else None
        commit_files(staged)
    finally:
        discard_files(staged)  # what was not renamed
    return WeeklyResult(entry=entry, log_path=out_dir / LOG_FILE,
                        report_path=out_dir / REPORT_FILE, review_path=review_path,
                        snapshot=refresh)  # fmt: skip
