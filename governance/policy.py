"""The governance policy (``governance/policy.yaml``) as one typed object.

The policy's SHA-256 (of the file's bytes) goes into every audit report,
registered version and model card, so any change of threshold is visible.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from governance.signing import KeyRecord
from training.config import Paths
from training.errors import ConfigError

__all__ = [
    "Policy",
    "Reviewer",
    "BoardPolicy",
    "WebAuthnPolicy",
    "FairnessPolicy",
    "ShapPolicy",
    "RecordingPolicy",
    "SignificantGap",
    "ChampionPolicy",
    "MonitoringPolicy",
    "DriftPolicy",
    "load_policy",
    "project_policy_path",
    "DEFAULT_POLICY_PATH",
    "MSG_NO_POLICY",
]

DEFAULT_POLICY_PATH = Path(__file__).with_name("policy.yaml")
MSG_NO_POLICY = (
    "{path}: policy file not found. paths.policy in params.yaml names it, so the packaged "
    "policy does not stand in for it: copy {default} there, or remove paths.policy to be "
    "governed by the packaged policy"
)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Grouping(_Strict):
    """An audit grouping and its reference group (a label or ``largest``)."""

    reference: str = "largest"


class SignificantGap(_Strict):
    """Gaps that fail when significant (interval excludes 1) and material (> ``max_gap``)."""

    metrics: list[str] = []
    # 0.10: a ratio below 0.9 or above 1/0.9.
    max_gap: float = Field(0.10, gt=0, lt=1)


class RecordingPolicy(_Strict):
    """Thresholds of the recording check (police records per A&E attendance)."""

    gated: bool = True
    # Fails when the whole interval lies outside the band, or when it excludes 1
    # and the ratio lies more than max_gap from 1.
    band: tuple[float, float] = (0.8, 1.25)
    max_gap: float = Field(0.10, gt=0, lt=1)
    # Gated only where the group and its reference each hold this many A&E
    # assault attendances (and fairness.min_group_areas areas).
    min_ae_count: int = Field(100, ge=0)
    n_boot: int = Field(400, ge=0)
    ci_level: float = Field(0.95, gt=0, lt=1)
    seed: int = 0


class FairnessPolicy(_Strict):
    """Thresholds of the fairness audit."""

    band: tuple[float, float] = (0.8, 1.25)
    n_boot: int = Field(200, ge=0)
    ci_level: float = Field(0.95, gt=0, lt=1)
    hotspot_coverage: float = Field(0.10, gt=0, lt=1)
    min_group_areas: int = Field(10, ge=1)
    # The A&E-only calibration is gated for a group only when it and its
    # reference each hold at least this many A&E attendances in the backtest.
    min_ae_count: int = Field(100, ge=0)
    # The risk-adjusted false-alarm metrics are gated for a group only when its
    # flags expect this many false alarms; a reference group expecting fewer is
    # replaced by the city's flags pooled.
    min_expected_false_alarms: float = Field(5.0, ge=0)
    groupings: dict[str, Grouping]
    gated: list[str]
    reported: list[str] = []
    # "point": the ratio itself must lie in the band; "ci": fail only when the
    # whole bootstrap interval lies outside it (see docs/fairness-audit.md).
    gate_on: Literal["point", "ci"] = "ci"
    # Bootstrap intervals for reported metrics too (gated ones always get them).
    ci_for_reported: bool = False
    # A gated ratio of these metrics also fails when its interval excludes 1 and
    # it lies more than ``max_gap`` from 1: a clear, significant gap is not
    # waved through because it is still inside the band.
    significant_gap: SignificantGap = SignificantGap()
    seed: int = 0


class ShapPolicy(_Strict):
    """Thresholds of the SHAP audit."""

    proxy_features: list[str] = []
    max_proxy_share: float = Field(0.35, ge=0, le=1)
    monotone_increasing: list[str] = []
    min_rank_stability: float = Field(0.6, ge=-1, le=1)
    additivity_tolerance: float = Field(1e-4, gt=0)
    sample_rows: int = Field(2000, ge=10)
    # Spearman correlation between a monotone feature and its SHAP values must
    # reach this (0: the feature's effect never turns negative on average).
    monotone_min_correlation: float = Field(0.0, ge=-1, le=1)
    # Below this share of attribution the sign of a feature's effect is noise:
    # the monotone check is then reported, not gated.
    monotone_min_share: float = Field(0.02, ge=0, le=1)
    rank_stability_statistic: Literal["min", "mean"] = "min"
    crosscheck_rows: int = Field(200, ge=1)
    # A feature whose per-area means follow an audit-only attribute this closely
    # (|correlation|, or eta for a category) carries it, whatever its name.
    max_sensitive_correlation: float = Field(0.95, gt=0, le=1)
    seed: int = 0


class MetricTolerance(_Strict):
    """How much worse than the champion a candidate may be on one metric."""

    greater_is_better: bool
    max_relative_worsening: float = Field(..., ge=0)
    # Absolute slack for metrics near zero, where a relative tolerance is too
    # strict; the larger of the two allowances applies.
    max_absolute_worsening: float | None = Field(None, ge=0)
    min_relative_change: float | None = Field(None, ge=0, le=1)


class ChampionPolicy(_Strict):
    """Candidate-versus-production thresholds."""

    thresholds: dict[str, MetricTolerance]
    alias: str = "production"
    # Areas flagged by pai_area_10 (the share of areas, as in the fairness audit).
    pai_coverage: float = Field(0.10, gt=0, lt=1)


class ServingPolicy(_Strict):
    """What the service flags as a hotspot."""

    hotspot_coverage: float = Field(0.10, gt=0, lt=1)


class DriftPolicy(_Strict):
    """When a source's weekly input counts as drifted (monitoring/drift.py)."""

    trailing_weeks: int = Field(26, ge=4)
    min_trailing_weeks: int = Field(8, ge=2)
    # Two-sided tail probability of the week's count under a negative binomial
    # with the trailing weeks' mean and variance: below this, drift.
    min_count_p: float = Field(1e-4, gt=0, lt=1)
    # PSI of the areas' count distribution; judged only with enough records.
    max_psi: float = Field(0.25, gt=0)
    psi_min_records: int = Field(50, ge=1)
    # A fall of the linkage match rate below the trailing mean by more than this,
    # judged only on weeks with enough records of the source.
    max_match_rate_drop: float = Field(0.10, gt=0, le=1)
    match_rate_min_records: int = Field(30, ge=1)


class MonitoringPolicy(_Strict):
    """Thresholds of the weekly monitoring cycle (monitoring/monitoring.py)."""

    # Consecutive weekly breaches of one check before the model is flagged for review.
    breach_weeks: int = Field(3, ge=1)
    # Accuracy and fairness are judged on the forecasts of the last N scored weeks pooled.
    window_weeks: int = Field(8, ge=1)
    min_pai: float = Field(1.0, ge=0)
    calibration_band: tuple[float, float] = (0.8, 1.25)
    # Fail only when the whole interval lies outside the band (single weeks are noisy).
    ci_level: float = Field(0.95, gt=0, lt=1)
    drift: DriftPolicy = DriftPolicy()


class Reviewer(_Strict):
    """A member of the governance board and the public keys they sign with."""

    id: str
    name: str
    role: str
    keys: list[KeyRecord] = []


class WebAuthnPolicy(_Strict):
    """Where board members' passkey assertions must come from."""

    rp_id: str = "localhost"


class BoardPolicy(_Strict):
    """The board's roster, keys and quorum.

    ``system_keys`` verify the entries harmcast itself writes to the audit log
    (register, publish, snapshot). ``emergency_rollback``: one member's signed
    rollback withdraws a version at once (logged as an emergency); otherwise a
    rollback, like an approval, needs the quorum.
    """

    quorum: int = Field(2, ge=1)
    roster: list[Reviewer]
    demo_reviewers: list[str] = []
    webauthn: WebAuthnPolicy = WebAuthnPolicy()
    system_keys: list[KeyRecord] = []
    emergency_rollback: bool = False

    @model_validator(mode="after")
    def _quorum_reachable(self) -> BoardPolicy:
        ids = {r.id for r in self.roster}
        if len(ids) < self.quorum:
            raise ValueError(f"quorum {self.quorum} exceeds the roster of {len(ids)}")
        unknown = set(self.demo_reviewers) - ids
        if unknown:
            raise ValueError(f"demo_reviewers not on the roster: {sorted(unknown)}")
        return self

    def reviewer(self, reviewer_id: str) -> Reviewer | None:
        """Return the roster entry for ``reviewer_id``, or None when absent."""
        return next((r for r in self.roster if r.id == reviewer_id), None)

    def member_keys(self) -> dict[str, list[KeyRecord]]:
        """Return ``{member_id: keys}`` of every roster member."""
        return {r.id: list(r.keys) for r in self.roster}


class Policy(_Strict):
    """The whole policy plus the hash of the file it came from."""

    version: Literal[1] = 1
    owner: str
    contact: str
    fairness: FairnessPolicy
    shap: ShapPolicy
    recording: RecordingPolicy = RecordingPolicy()
    champion: ChampionPolicy
    serving: ServingPolicy = ServingPolicy()
    monitoring: MonitoringPolicy = MonitoringPolicy()
    board: BoardPolicy
    sha256: str = ""
    path: str = ""


def load_policy(path: str | Path = DEFAULT_POLICY_PATH) -> Policy:
    """Read and validate a policy file.

    Raises
    ------
    ConfigError
        When the file is missing, not YAML, or breaks the schema.
    """
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: policy file not found")
    data = path.read_bytes()
    try:
        raw = yaml.safe_load(data) or {}
        return Policy.model_validate(
            {**raw, "sha256": hashlib.sha256(data).hexdigest(), "path": str(path)}
        )
    except (yaml.YAMLError, ValidationError) as exc:
        raise ConfigError(f"{path}: invalid policy: {exc}") from exc


def project_policy_path(paths: Paths) -> Path:
    """Return the policy file that governs a project root.

    The root's own ``paths.policy`` (``governance/policy.yaml``) when it exists;
    a root without one is governed by the packaged policy
    (:data:`DEFAULT_POLICY_PATH`). A ``paths.policy`` changed in params.yaml
    must exist: a missing file there is a mistake, not a request for the default.

    Raises
    ------
    ConfigError
        When a ``paths.policy`` other than the default names no file.
    """
    path = paths.resolve("policy")
    if path.is_file():
        return path
    if paths.policy != Paths().policy:
        raise ConfigError(MSG_NO_POLICY.format(path=path, default=DEFAULT_POLICY_PATH))
    return DEFAULT_POLICY_PATH
