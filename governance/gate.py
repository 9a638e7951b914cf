"""The governance gate: fairness + SHAP + champion comparison -> one verdict per check.

The gate passes when every gated check passes; reported-only checks (small
groups, metrics the policy does not gate) never block. The report carries the
policy's SHA-256 so a registered version names the thresholds it was held to.
"""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import mlflow
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

from governance.audit_plots import plot_fairness, plot_shap_summary
from governance.champion import compare_to_champion
from governance.checks import Check
from governance.explain import Progress, shap_audit
from governance.fairness import area_groups, fairness_audit
from governance.gate_inputs import GateInputs, load_gate_inputs
from governance.gate_record import log_gate_report
from governance.policy import Policy
from governance.provenance import TAG_GATE
from governance.recording import RecordingAudit, recording_audit
from governance.report_html import render_gate_html
from governance.sensitive import sensitive_content_check
from training.config import Params, tracking_uri

__all__ = [
    "Check",
    "GateInputs",
    "GateReport",
    "Subject",
    "audit_candidate",
    "load_gate_inputs",
    "read_gate_report",
    "run_gate",
    "write_gate_report",
    "TAG_GATE",
]

_KEYS = ["area_code", "origin_week", "horizon"]


class Subject(BaseModel):
    """Exactly what the gate audited, each named by its SHA-256."""

    model_config = ConfigDict(extra="forbid")

    run_id: str
    model_sha256: str
    policy_sha256: str
    predictions_sha256: str
    features_sha256: str


class GateReport(BaseModel):
    """The gate's verdict on one candidate (``gate_report.json``)."""

    model_config = ConfigDict(extra="ignore")

    run_id: str
    model_uri: str
    model_name: str = ""
    policy_sha256: str
    policy_version: int = 1
    created_at: str
    passed: bool
    subject: Subject | None = None
    checks: list[Check]
    fairness: dict[str, Any] = Field(default_factory=dict)
    shap: dict[str, Any] = Field(default_factory=dict)
    champion: dict[str, Any] = Field(default_factory=dict)
    plots: dict[str, str] = Field(default_factory=dict)

    def failed(self) -> list[str]:
        """Names of the gated checks that failed."""
        return [c.name for c in self.checks if c.gated and not c.passed]


def run_gate(
    inputs: GateInputs,
    policy: Policy,
    *,
    tracking_uri: str | None,
    model_name: str,
    out_dir: Path,
    progress: Progress | None = None,
) -> GateReport:
    """Audit the candidate in ``inputs`` and return the verdict of every check.

    Plots are written under ``out_dir/plots``. With ``tracking_uri`` None the
    champion comparison is skipped (reported, not gated). ``progress(step,
    done, total)`` is called as each part advances (from two threads).
    """
    out_dir = Path(out_dir)
    # The two audits share nothing: fairlearn's bootstrap (Python, one core) runs
    # beside the SHAP audit (TreeSHAP in C++, which releases the GIL).
    with ThreadPoolExecutor(max_workers=1) as pool:
        fairness = pool.submit(
            fairness_audit, inputs.predictions, inputs.areas, policy.fairness, progress=progress
        )
        expl = shap_audit(
            inputs.booster, inputs.feature_names, inputs.features, policy.shap,
            folds=inputs.folds, progress=progress,
        )  # fmt: skip
        fair = fairness.result()
    plots = {
        "fairness": plot_fairness(
            fair.ratios,
            band=policy.fairness.band,
            metrics=list(policy.fairness.gated),
            path=out_dir / "plots" / "fairness.png",
        ),
        "shap_summary": plot_shap_summary(
            expl.values, expl.sample, path=out_dir / "plots" / "shap_summary.png"
        ),
    }
    recording = _recording(inputs, policy, fair.references)
    champion = _champion(inputs, policy, tracking_uri, model_name)
    sensitive = sensitive_content_check(
        inputs.features, inputs.feature_names, inputs.areas, policy.shap
    )
    checks = [*fair.checks, *recording.checks, *expl.checks, sensitive, *champion["checks"]]
    return GateReport(
        run_id=inputs.run_id,
        model_uri=inputs.model_uri,
        model_name=model_name,
        policy_sha256=policy.sha256,
        policy_version=policy.version,
        created_at=datetime.now(UTC).isoformat(timespec="seconds"),
        passed=all(c.passed for c in checks if c.gated),
        subject=Subject(
            run_id=inputs.run_id,
            model_sha256=inputs.model_sha256,
            policy_sha256=policy.sha256,
            predictions_sha256=inputs.predictions_sha256,
            features_sha256=inputs.features_sha256,
        ),
        checks=checks,
        fairness={
            "groupings": list(policy.fairness.groupings),
            "references": fair.references,
            "band": list(policy.fairness.band),
            "gate_on": policy.fairness.gate_on,
            "hotspot_coverage": policy.fairness.hotspot_coverage,
            "ae_scale": fair.ae_scale,
            "groups": _records(fair.groups),
            "ratios": _records(fair.ratios),
            "recording": _records(recording.table),
            "recording_skipped": recording.skipped,
        },
        shap={
            "top_features": _records(expl.importance.head(10)),
            "importance": _records(expl.importance),
            "fold_importance": _records(expl.fold_importance.reset_index()),
            "stability": expl.stability,
            "base_value": expl.base_value,
            "sample_rows": len(expl.sample),
            "proxy_share": next(c.value for c in expl.checks if c.name == "shap.proxy_share"),
        },
        champion={k: v for k, v in champion.items() if k != "checks"},
        plots={k: str(p.relative_to(out_dir)) for k, p in plots.items()},
    )


def _recording(inputs: GateInputs, policy: Policy, references: dict[str, str]) -> RecordingAudit:
    if inputs.panel is None:
        return RecordingAudit(pd.DataFrame(), [], {"all": "no panel given: not measured"})
    # The weeks the fairness audit judged: the backtest's observed target weeks.
    weeks = inputs.predictions.loc[inputs.predictions["y"].notna(), "target_week"].unique()
    return recording_audit(
        inputs.panel, inputs.areas, policy.fairness, policy.recording,
        references=references, weeks=weeks,
    )  # fmt: skip


def _champion(inputs: GateInputs, policy: Policy, uri: str | None, name: str) -> dict:
    if uri is None:
        check = Check(
            name="champion.comparison",
            category="champion",
            passed=True,
            gated=False,
            detail="no tracking URI given: comparison skipped",
        )
        return {"status": "skipped", "production_version": None, "passed": True, "checks": [check]}
    grouping = next(iter(policy.fairness.groupings))
    groups = area_groups(inputs.areas, [grouping]).rename(columns={grouping: "group"})
    extra = [c for c in ("target_week", "y", "y_ae", "method") if c in inputs.features]
    rows = inputs.predictions.merge(inputs.features.drop(columns=extra), on=_KEYS, how="left")
    rows = rows.merge(groups, on="area_code", how="left").fillna({"group": "unknown"})
    result = compare_to_champion(rows, policy.champion, tracking_uri=uri, model_name=name)
    return {
        "status": result.status,
        "production_version": result.production_version,
        "passed": result.passed,
        "grouping": grouping,
        "candidate": result.candidate,
        "champion": result.champion,
        "thresholds": result.thresholds,
        "checks": result.checks,
    }


def _records(frame: pd.DataFrame) -> list[dict]:
    return json.loads(frame.to_json(orient="records", date_format="iso"))


def write_gate_report(report: GateReport, out_dir: Path) -> list[Path]:
    """Write ``gate_report.json``, ``fairness.json``, ``shap.json`` and ``gate_report.html``."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    files = {
        "gate_report.json": report.model_dump_json(indent=2),
        "fairness.json": json.dumps(report.fairness, indent=2),
        "shap.json": json.dumps(report.shap, indent=2),
        "gate_report.html": render_gate_html(report, out_dir),
    }
    written = []
    for name, text in files.items():
        (out_dir / name).write_text(text)
        written.append(out_dir / name)
    return written


def read_gate_report(path: str | Path) -> GateReport:
    """Read a ``gate_report.json`` (or the folder holding it)."""
    path = Path(path)
    if path.is_dir():
        path = path / "gate_report.json"
    return GateReport.model_validate_json(path.read_text())


def audit_candidate(
    params: Params, policy: Policy, *, progress: Progress | None = None
) -> GateReport:
    """Audit the current candidate, write the report and log it to the candidate's run.

    The report and plots go to ``data/07_audit/`` and, when the candidate has an
    MLflow run, to its ``audit/`` artifacts; the report's exact bytes are also
    logged as ``gate/gate_report.json`` with their SHA-256 in the run tag
    ``harmcast.gate_report_sha256`` (what ``harmcast register`` reads), and the
    run is tagged ``harmcast.gate``.
    """
    root = params.paths.root
    out_dir = params.paths.resolve("audit")
    inputs = load_gate_inputs(root, params)
    uri = tracking_uri(params)
    report = run_gate(
        inputs,
        policy,
        tracking_uri=uri,
        model_name=params.tracking.registered_model,
        out_dir=out_dir,
        progress=progress,
    )
    write_gate_report(report, out_dir)
    if report.run_id:
        client = mlflow.MlflowClient(tracking_uri=uri, registry_uri=uri)
        client.log_artifacts(report.run_id, str(out_dir), artifact_path="audit")
        log_gate_report(client, report.run_id, report)
        client.set_tag(report.run_id, TAG_GATE, "passed" if report.passed else "failed")
    return report
