"""The model card as one typed tree (``card.json``), versioned by ``schema_version``.

Every section is required: a card with a missing section does not validate.
Values come from measurements (the registry, the audit and backtest reports,
the linkage report and the policy); nothing is typed in by hand. Counts under
five are published as ``"<5"`` (small-number suppression).
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "SCHEMA_VERSION",
    "Count",
    "Plot",
    "ModelDetails",
    "IntendedUse",
    "SourceLinkage",
    "DataSection",
    "TrainingSection",
    "FeatureSection",
    "MetricRow",
    "MarginRow",
    "ServedForecast",
    "AblationRow",
    "Evaluation",
    "CheckRow",
    "FairnessSection",
    "FeatureAttribution",
    "ExplanationSection",
    "Considerations",
    "Reviewer",
    "HumanOversight",
    "Decision",
    "AuditEvent",
    "ApprovalRecord",
    "MetricChange",
    "ChangeSection",
    "Hashes",
    "ModelCard",
]

SCHEMA_VERSION = "1.0"

Count = int | Literal["<5"]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Plot(_Section):
    """A figure shipped with the card (``plots/<file>`` beside ``card.json``)."""

    title: str
    file: str
    sha256: str


class ModelDetails(_Section):
    """What the model is, who owns it and under which licence."""

    name: str
    version: str
    registered_at: str
    card_generated_at: str
    run_id: str
    model_uri: str
    model_type: str
    owner: str
    contact: str
    licence: str


class IntendedUse(_Section):
    """Who may use the forecasts for what, and what they must never be used for."""

    unit_of_analysis: str
    primary_uses: list[str]
    intended_users: list[str]
    out_of_scope: list[str]


class SourceLinkage(_Section):
    """How one agency's records were linked to areas (``linkage_report.json``)."""

    source: str
    records_in: Count
    linked: Count
    quarantined: dict[str, Count]
    match_rate: float | None
    linked_by: dict[str, Count]


class DataSection(_Section):
    """The linked sources and how completely they were linked."""

    sources: list[SourceLinkage]
    suppression_rule: str


class TrainingSection(_Section):
    """The weeks the model learnt from and its settings."""

    window_start: str | None
    window_end: str | None
    n_training_rows: int | None
    params: dict[str, float | int | str | bool | None]


class FeatureSection(_Section):
    """The model's inputs; audit-only columns are never among them."""

    names: list[str]
    n_features: int
    sensitive_prefix: str
    sensitive_excluded: bool


class MetricRow(_Section):
    """One method's score on one metric at one horizon."""

    method: str
    horizon: str
    metric: str
    value: float | None


class MarginRow(_Section):
    """The model minus a comparator, with its paired-bootstrap interval."""

    metric: str
    horizon: str
    comparator: str
    difference: float | None
    ci_low: float | None
    ci_high: float | None
    model_better: bool | None


class ServedForecast(_Section):
    """What the service serves (``stack.json``): the model, a baseline, or their combination.

    ``margins`` are the served forecast's candidate, the combination, minus each
    component (``model_better``: the combination was better).
    """

    method: str
    words: str
    weights: dict[str, dict[str, float]]
    margins: list[MarginRow]


class AblationRow(_Section):
    """What one feature group adds: the model minus the model without it, with its interval."""

    group: str
    words: str
    metric: str
    horizon: str
    difference: float | None
    ci_low: float | None
    ci_high: float | None
    group_helps: bool | None


class Evaluation(_Section):
    """Rolling-origin backtest against baselines (and the oracle on synthetic data).

    ``served`` is None for a model trained without a stacking backtest: the
    booster itself is served.
    ``ablations`` is empty on cards of backtests that ablated no feature group.
    """

    baselines: list[str]
    headline: dict[str, float | None]
    metrics: list[MetricRow]
    margins: list[MarginRow]
    oracle_capture: dict[str, float | None]
    plots: list[Plot]
    served: ServedForecast | None = None
    ablations: list[AblationRow] = Field(default_factory=list)


class CheckRow(_Section):
    """One governance check as the gate measured it."""

    name: str
    category: str
    passed: bool
    gated: bool
    value: float | str | None
    lower: float | None
    upper: float | None
    ci_low: float | None
    ci_high: float | None
    detail: str


class FairnessSection(_Section):
    """The fairness audit (group ratios against the policy band)."""

    gate_passed: bool
    band: tuple[float, float]
    groupings: list[str]
    checks: list[CheckRow]
    plots: list[Plot]


class FeatureAttribution(_Section):
    """Mean absolute SHAP value of one feature."""

    feature: str
    mean_abs_shap: float


class ExplanationSection(_Section):
    """SHAP explanations and the checks on them."""

    top_features: list[FeatureAttribution]
    checks: list[CheckRow]
    plots: list[Plot]


class Considerations(_Section):
    """Limitations and ethical considerations, with the measurements behind them."""

    limitations: list[str]
    ethical_considerations: list[str]


class Reviewer(_Section):
    """A board member."""

    id: str
    name: str
    role: str


class HumanOversight(_Section):
    """Who decides, how many must agree, and what the service may do."""

    board: list[Reviewer]
    quorum: int
    process: list[str]


class Decision(_Section):
    """One member's signed decision, verified against their key in the policy."""

    reviewer: str
    name: str
    role: str
    decision: str
    rationale: str
    at: str
    key_fingerprint: str = ""
    key_type: str = ""
    # A software key generated for a demonstration board, not a real member's.
    demo: bool = False


class AuditEvent(_Section):
    """One audit-log entry about this version."""

    seq: int
    timestamp: str
    actor: str
    action: str
    hash: str


class ApprovalRecord(_Section):
    """The approval state from the version's tags and the audit log."""

    status: Literal["pending", "approved", "rejected", "rolled_back"]
    gate: str
    decisions: list[Decision]
    decided_at: str | None
    aliases: list[str]
    audit_events: list[AuditEvent]
    audit_log_verified: bool


class MetricChange(_Section):
    """A headline metric of this version against the version compared with."""

    metric: str
    previous: float | None
    current: float | None
    change: float | None


class ChangeSection(_Section):
    """What changed since the version in production (or the previous one)."""

    compared_with: str | None
    metrics: list[MetricChange]
    features_added: list[str] | None
    features_removed: list[str] | None
    policy_changed: bool | None
    previous_policy_sha256: str | None


class Hashes(_Section):
    """SHA-256 digests that tie the card to what it describes."""

    model_sha256: str
    data_sha256: str
    policy_sha256: str
    gate_report_sha256: str
    backtest_results_sha256: str
    code_version: str


class ModelCard(_Section):
    """A model card; ``status`` is ``draft`` until the version is approved."""

    schema_version: Literal["1.0"]
    status: Literal["draft", "published"]
    model_details: ModelDetails
    intended_use: IntendedUse
    data: DataSection
    training: TrainingSection
    features: FeatureSection
    evaluation: Evaluation
    fairness: FairnessSection
    explanations: ExplanationSection
    considerations: Considerations
    human_oversight: HumanOversight
    approval: ApprovalRecord
    changes: ChangeSection
    hashes: Hashes
