"""Build a model card from the registry and the report files, never by hand.

``build_card`` reads the version's tags and aliases, the audit log, the gate
report, the backtest results, the linkage report and the model metadata, and
returns a validated ``ModelCard``: ``draft`` until the version is approved,
then ``published``.
"""

from __future__ import annotations

import hashlib
import json
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from mlflow.exceptions import MlflowException

from governance.auditlog import read_log
from governance.auditlog import verify_log as verify_chain
from governance.cards import narrative
from governance.cards.schema import (
    SCHEMA_VERSION,
    ApprovalRecord,
    AuditEvent,
    ChangeSection,
    Considerations,
    Decision,
    ExplanationSection,
    FairnessSection,
    FeatureSection,
    Hashes,
    ModelCard,
    ModelDetails,
    Plot,
    TrainingSection,
)
from governance.cards.sections import (
    check_rows,
    data_limitations,
    data_section,
    evaluation_section,
    metric_changes,
    top_features,
)
from governance.policy import Policy
from governance.registry import (
    ALIAS_PREVIOUS,
    ALIAS_PRODUCTION,
    TAG_CODE,
    TAG_DATA,
    TAG_DECIDED_AT,
    TAG_GATE,
    TAG_METRIC_PREFIX,
    TAG_POLICY,
    client_for,
)
from training.errors import SchemaError
from training.features import SENSITIVE_PREFIX
from training.feedback import limitation_counts

__all__ = ["CardInputs", "CardReview", "build_card", "collect_plots", "card_dir", "MISSING_INPUT"]

MISSING_INPUT = "required input for the model card is missing"


@dataclass(frozen=True)
class CardInputs:
    """The report files a card is built from (paths under the project root)."""

    gate_report: Path
    backtest_results: Path
    linkage_report: Path
    model_meta: Path
    audit_dir: Path
    backtest_plots: Path
    cards_root: Path
    audit_log: Path
    features: Path | None = None

    @classmethod
    def from_params(cls, params: Any, *, audit_log: Path | None = None) -> CardInputs:
        """Locate every input from the project's ``Params`` (``training.config``)."""
        paths = params.paths
        return cls(
            gate_report=paths.resolve("audit") / "gate_report.json",
            backtest_results=paths.resolve("backtest") / "results.json",
            linkage_report=paths.resolve("linked") / "linkage_report.json",
            model_meta=paths.resolve("models") / "model_meta.json",
            audit_dir=paths.resolve("audit"),
            backtest_plots=paths.resolve("backtest") / "plots",
            cards_root=paths.resolve("model_cards"),
            audit_log=audit_log or (paths.root / "governance_log" / "audit.jsonl").resolve(),
            features=paths.resolve("features") / "features.parquet",
        )


def card_dir(cards_root: Path, model_name: str, version: str | int) -> Path:
    """Return ``<cards_root>/<model>/v<N>/``."""
    return Path(cards_root) / model_name / f"v{version}"


def _read_json(path: Path) -> Any:
    if not path.is_file():
        raise SchemaError(path, MISSING_INPUT)
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise SchemaError(path, f"not valid JSON: {exc}", row=exc.lineno) from exc


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def collect_plots(inputs: CardInputs) -> dict[str, tuple[Path, str]]:
    """Map each card plot file (``plots/<name>.png``) to its source and section."""
    found: dict[str, tuple[Path, str]] = {}
    for png in sorted(inputs.audit_dir.rglob("*.png")) if inputs.audit_dir.is_dir() else []:
        section = "explanations" if "shap" in png.stem else "fairness"
        found[f"plots/audit_{png.stem}.png"] = (png, section)
    plots = sorted(inputs.backtest_plots.glob("*.png")) if inputs.backtest_plots.is_dir() else []
    for png in plots:
        found[f"plots/backtest_{png.stem}.png"] = (png, "evaluation")
    return found


def _plots(inputs: CardInputs, section: str) -> list[Plot]:
    return [
        Plot(title=src.stem.replace("_", " "), file=name, sha256=_sha256(src))
        for name, (src, sec) in collect_plots(inputs).items()
        if sec == section
    ]


def _training_window(
    meta: dict, features: Path | None
) -> tuple[str | None, str | None, int | None]:
    """Return the target weeks the final model learnt from (rows with an observed target)."""
    start, end = meta.get("train_start"), meta.get("train_end")
    if (start and end) or features is None or not features.is_file():
        return start, end, meta.get("n_rows")
    import pyarrow.parquet as pq

    frame = pq.read_table(features, columns=["target_week", "y"]).to_pandas()
    seen = frame.loc[frame["y"].notna(), "target_week"]
    if seen.empty:
        return None, None, 0
    return str(seen.min().date()), str(seen.max().date()), int(len(seen))


def _metric_tags(tags: dict[str, str]) -> dict[str, str]:
    return {k.removeprefix(TAG_METRIC_PREFIX): v for k, v in tags.items()
            if k.startswith(TAG_METRIC_PREFIX)}  # fmt: skip


def _previous_features(inputs: CardInputs, client: Any, model: str, mv: Any) -> list[str] | None:
    card = card_dir(inputs.cards_root, model, mv.version) / "card.json"
    if card.is_file():
        return list(json.loads(card.read_text())["features"]["names"])
    try:
        with tempfile.TemporaryDirectory() as tmp:
            meta = client.download_artifacts(mv.run_id, "model_meta.json", tmp)
            return list(json.loads(Path(meta).read_text()).get("feature_names", []))
    except (MlflowException, OSError):
        return None


def _changes(inputs, client, model, version, tags, features) -> ChangeSection:
    other = None
    for alias in (ALIAS_PRODUCTION, ALIAS_PREVIOUS):
        try:
            mv = client.get_model_version_by_alias(model, alias)
        except MlflowException:
            continue
        if str(mv.version) != version:
            other = mv
            break
    if other is None:
        return ChangeSection(compared_with=None, metrics=[], features_added=None,
                             features_removed=None, policy_changed=None,
                             previous_policy_sha256=None)  # fmt: skip
    before = _previous_features(inputs, client, model, other)
    prev_policy = dict(other.tags).get(TAG_POLICY)
    return ChangeSection(
        compared_with=str(other.version),
        metrics=metric_changes(_metric_tags(tags), _metric_tags(dict(other.tags))),
        features_added=None if before is None else sorted(set(features) - set(before)),
        features_removed=None if before is None else sorted(set(before) - set(features)),
        policy_changed=None if prev_policy is None else prev_policy != tags.get(TAG_POLICY),
        previous_policy_sha256=prev_policy,
    )


@dataclass(frozen=True)
class CardReview:
    """What the evidence says of a version: its status, verified decisions and hashes."""

    status: str
    decisions: list[Any]
    model_sha256: str
    gate_report_sha256: str
    policy_sha256: str


def _decision(record: Any, policy: Policy) -> Decision:
    member = policy.board.reviewer(record.member)
    return Decision(
        reviewer=record.member,
        name=member.name if member else "",
        role=member.role if member else "",
        decision=record.decision,
        rationale=record.rationale,
        at=record.issued_at,
        key_fingerprint=record.key_fingerprint,
        key_type=record.key_type,
        demo=record.demo,
    )


def _approval(inputs, tracking_uri, model, version, mv, tags, review, policy) -> ApprovalRecord:
    events = [
        AuditEvent(
            seq=e["seq"],
            timestamp=e["timestamp"],
            actor=e["actor"],
            action=e["action"],
            hash=e["hash"],
        )  # fmt: skip
        for e in read_log(inputs.audit_log)
        if e.get("model") == model and e.get("version") == version
    ]
    verified = verify_chain(inputs.audit_log)
    return ApprovalRecord(
        status=review.status,
        gate=tags.get(TAG_GATE, ""),
        decisions=[_decision(d, policy) for d in review.decisions],
        decided_at=tags.get(TAG_DECIDED_AT) or None,
        aliases=sorted(getattr(mv, "aliases", []) or []),
        audit_events=events,
        audit_log_verified=verified.ok,
    )


def _considerations(inputs: CardInputs, data, evaluation, checks) -> Considerations:
    """Return the narrative's considerations plus coverage gaps and feedback-loop flags."""
    found = narrative.considerations(data, evaluation, check_rows(checks))
    if inputs.features is not None:
        panel_dir = inputs.features.parent.parent / "03_panel"
        found.limitations.extend(data_limitations(limitation_counts(panel_dir)))
    return found


def build_card(
    inputs: CardInputs,
    *,
    model_name: str,
    version: str | int,
    policy: Policy,
    tracking_uri: str,
    review: CardReview,
    licence: str = "Apache-2.0",
) -> ModelCard:
    """Build the card of one registered version from measurements.

    ``review`` is what the evidence says of the version (``publish_card`` reads
    it): the card is ``published`` only when the signed decisions approve it,
    whatever the registry's tags say, and shows each verified decision with
    the member's key fingerprint.

    Raises
    ------
    SchemaError
        When a report file is missing or not JSON (naming the file).
    """
    client = client_for(tracking_uri)
    version = str(version)
    mv = client.get_model_version(model_name, version)
    tags = dict(mv.tags)
    gate = _read_json(inputs.gate_report)
    results = _read_json(inputs.backtest_results)
    meta = _read_json(inputs.model_meta)
    features = list(meta.get("feature_names") or results.get("feature_names") or [])
    checks = gate.get("checks", [])
    model_params = {k: v for k, v in (meta.get("params") or {}).items()
                    if isinstance(v, int | float | str | bool) or v is None}  # fmt: skip
    approval = _approval(inputs, tracking_uri, model_name, version, mv, tags, review, policy)
    stack_file = Path(inputs.model_meta).with_name("stack.json")  # beside the model it chose for
    stack = _read_json(stack_file) if stack_file.is_file() else None
    evaluation = evaluation_section(results, _plots(inputs, "evaluation"), stack)
    data = data_section(_read_json(inputs.linkage_report))
    window = _training_window(meta, inputs.features)
    return ModelCard(
        schema_version=SCHEMA_VERSION,
        status="published" if approval.status == "approved" else "draft",
        model_details=ModelDetails(
            name=model_name,
            version=version,
            registered_at=datetime.fromtimestamp(mv.creation_timestamp / 1000, UTC).isoformat(),
            card_generated_at=datetime.now(UTC).isoformat(timespec="seconds"),
            run_id=mv.run_id or "",
            model_uri=str(mv.source),
            model_type=narrative.MODEL_TYPE,
            owner=policy.owner,
            contact=policy.contact,
            licence=licence,
        ),
        intended_use=narrative.intended_use(),
        data=data,
        training=TrainingSection(
            window_start=window[0],
            window_end=window[1],
            n_training_rows=window[2],
            params=model_params,
        ),
        features=FeatureSection(
            names=features,
            n_features=len(features),
            sensitive_prefix=SENSITIVE_PREFIX,
            sensitive_excluded=not any(f.startswith(SENSITIVE_PREFIX) for f in features),
        ),
        evaluation=evaluation,
        fairness=FairnessSection(
            gate_passed=bool(gate.get("passed")),
            band=policy.fairness.band,
            groupings=sorted(policy.fairness.groupings),
            checks=check_rows(checks, category="fairness"),
            plots=_plots(inputs, "fairness"),
        ),
        explanations=ExplanationSection(
            top_features=top_features(gate.get("shap") or {}),
            checks=check_rows(checks, category="shap"),
            plots=_plots(inputs, "explanations"),
        ),
        considerations=_considerations(inputs, data, evaluation, checks),
        human_oversight=narrative.human_oversight(policy),
        approval=approval,
        changes=_changes(inputs, client, model_name, version, tags, features),
        hashes=Hashes(
            model_sha256=review.model_sha256,
            data_sha256=tags.get(TAG_DATA, ""),
            policy_sha256=review.policy_sha256,
            gate_report_sha256=review.gate_report_sha256,
            backtest_results_sha256=_sha256(inputs.backtest_results),
            code_version=tags.get(TAG_CODE, ""),
        ),
    )
