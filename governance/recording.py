"""Differential recording: police-recorded violence per A&E assault attendance, by group.

The target counts what the police record plus what A&E sees. Where police
record a larger (or smaller) share of the same violence in one community, the
target there is inflated (or deflated) and a model trained on it forecasts more
(or less) harm for that community; calibration against the target cannot see
this. A&E records assaults whoever patrols, so police records per A&E
attendance, compared between groups, measures the mechanism itself.

A&E's share of assaults is not the same everywhere, though: weapon injuries
reach A&E more often and are commoner where deprivation is higher, and
domestic violence (recorded less by police) too. So each area's police count
is compared with the count its A&E attendances imply at the police-per-A&E
rate of its deprivation decile (indirect standardisation):

    expected_i = ae_i * (sum police / sum ae over the areas of decile(i))
    recording(group) = sum police / sum expected over the group's areas
    ratio = recording(group) / recording(reference)

A ratio above 1 says the group's violence is over-recorded relative to the
reference group's; below 1, under-recorded. Intervals come from a cluster
bootstrap over areas (deciles' rates re-estimated in each resample). A
grouping that deprivation deciles determine (``imd_quintile``) is standardised
away and reported as such: recording that differs by deprivation cannot be told
apart from case mix by this measure.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from governance.checks import Check, finite_or_none, significant_gap
from governance.fairness import area_groups
from governance.policy import FairnessPolicy, RecordingPolicy
from training.errors import SchemaError

__all__ = [
    "PANEL_COLUMNS",
    "RecordingAudit",
    "recording_audit",
    "MISSING_COLUMN",
    "STANDARDISED_AWAY",
]

PANEL_COLUMNS = ("area_code", "week_start", "police_violence", "ae_assault")
MISSING_COLUMN = "missing column; expected {expected}"
STANDARDISED_AWAY = (
    "not measured: deprivation deciles determine this grouping, and expected police "
    "records are standardised by decile"
)
FEW_AREAS = "reported only: fewer than {n} areas"
FEW_AE = "reported only: fewer than {n} A&E attendances"


@dataclass(frozen=True)
class RecordingAudit:
    """Per group: police records, A&E attendances, the recording ratio and its verdict."""

    table: pd.DataFrame
    checks: list[Check]
    skipped: dict[str, str]


def _area_sums(panel: pd.DataFrame, areas: pd.DataFrame, weeks) -> pd.DataFrame:
    for name in PANEL_COLUMNS:
        if name not in panel:
            raise SchemaError("panel", MISSING_COLUMN.format(expected=PANEL_COLUMNS), field=name)
    rows = panel if weeks is None else panel[panel["week_start"].isin(weeks)]
    sums = rows.groupby("area_code")[["police_violence", "ae_assault"]].sum()
    decile = areas.drop_duplicates("area_code").set_index("area_code")["imd_decile"]
    return sums.assign(decile=decile.reindex(sums.index).fillna(0).astype(int).to_numpy())


def _resample_weights(n: int, policy: RecordingPolicy) -> np.ndarray:
    # Row 0 is the sample itself; the rest are cluster-bootstrap resamples of areas.
    rng = np.random.default_rng(policy.seed)
    draws = rng.multinomial(n, np.full(n, 1.0 / n), size=policy.n_boot)
    return np.vstack([np.ones(n), draws]).astype(float)


def _group_recording(sums: pd.DataFrame, labels: np.ndarray, weights: np.ndarray) -> dict:
    police = sums["police_violence"].to_numpy(float)
    ae = sums["ae_assault"].to_numpy(float)
    strata = (sums["decile"].to_numpy()[:, None] == np.unique(sums["decile"])[None, :]).astype(
        float
    )
    with np.errstate(divide="ignore", invalid="ignore"):
        rate = (weights @ (strata * police[:, None])) / (weights @ (strata * ae[:, None]))
        rate = np.nan_to_num(rate)
        out = {}
        for group in np.unique(labels):
            member = (labels == group).astype(float)
            observed = weights @ (police * member)
            expected = ((weights @ (strata * (ae * member)[:, None])) * rate).sum(axis=1)
            out[group] = observed / expected
    return out


def _determined_by_decile(sums: pd.DataFrame, labels: np.ndarray) -> bool:
    frame = pd.DataFrame({"decile": sums["decile"].to_numpy(), "label": labels})
    return bool((frame.groupby("decile")["label"].nunique() <= 1).all())


def recording_audit(
    panel: pd.DataFrame,
    areas: pd.DataFrame,
    fairness: FairnessPolicy,
    policy: RecordingPolicy,
    *,
    references: dict[str, str],
    weeks=None,
) -> RecordingAudit:
    """Compare each audit group's recording with its reference group's.

    Parameters
    ----------
    panel : area-week counts with ``police_violence`` and ``ae_assault``.
    areas : the areas table (``imd_decile`` and the grouping columns).
    fairness : groupings (the recording check uses the fairness audit's).
    policy : band, gap, evidence minimums and bootstrap settings.
    references : the reference group of each grouping (as the fairness audit chose).
    weeks : the weeks to count (the audited target weeks); None: every week.
    """
    sums = _area_sums(panel, areas, weeks)
    groups = area_groups(areas, fairness.groupings).set_index("area_code")
    weights = _resample_weights(len(sums), policy)
    rows, skipped = [], {}
    for grouping in fairness.groupings:
        labels = groups[grouping].reindex(sums.index).fillna("unknown").to_numpy(str)
        if _determined_by_decile(sums, labels):
            skipped[grouping] = STANDARDISED_AWAY
            continue
        recording = _group_recording(sums, labels, weights)
        reference = references.get(grouping, "")
        if reference not in recording:  # unnamed: the largest group, as in the fairness audit
            reference = pd.Series(labels).value_counts().sort_index(kind="stable").idxmax()
        for group, values in recording.items():
            rows.append(
                _row(
                    sums, labels, grouping, group, reference, values / recording[reference], policy
                )
            )
    table = pd.DataFrame(rows)
    if not table.empty:
        table = _judge(table, fairness, policy)
    checks = [_check(r, policy) for r in table.itertuples()] if not table.empty else []
    return RecordingAudit(table=table, checks=checks, skipped=skipped)


def _row(sums, labels, grouping, group, reference, ratio, policy) -> dict:
    alpha = (1 - policy.ci_level) / 2
    boot = ratio[1:][np.isfinite(ratio[1:])]
    low, high = np.quantile(boot, [alpha, 1 - alpha]) if len(boot) else (np.nan, np.nan)
    member, ref = labels == group, labels == reference
    return {
        "grouping": grouping,
        "group": group,
        "reference": reference,
        "n_areas": int(member.sum()),
        "n_areas_reference": int(ref.sum()),
        "police": float(sums["police_violence"].to_numpy()[member].sum()),
        "ae": float(sums["ae_assault"].to_numpy()[member].sum()),
        "ae_reference": float(sums["ae_assault"].to_numpy()[ref].sum()),
        "ratio": float(ratio[0]),
        "ci_low": float(low) if group != reference else 1.0,
        "ci_high": float(high) if group != reference else 1.0,
    }


def _judge(table: pd.DataFrame, fairness: FairnessPolicy, policy: RecordingPolicy) -> pd.DataFrame:
    lower, upper = policy.band
    few_areas = table[["n_areas", "n_areas_reference"]].min(axis=1) < fairness.min_group_areas
    few_ae = table[["ae", "ae_reference"]].min(axis=1) < policy.min_ae_count
    reason = np.where(
        few_areas,
        FEW_AREAS.format(n=fairness.min_group_areas),
        np.where(few_ae, FEW_AE.format(n=policy.min_ae_count), ""),
    )
    outside = (table["ci_high"] < lower) | (table["ci_low"] > upper)
    gap = [
        significant_gap(r.ratio, r.ci_low, r.ci_high, policy.max_gap) for r in table.itertuples()
    ]
    direction = np.where(table["ratio"] > 1, "over-recorded", "under-recorded")
    return table.assign(
        reported_because=reason,
        gated=policy.gated & (reason == "") & (table["group"] != table["reference"]),
        passed=~(outside | np.asarray(gap, bool)),
        direction=np.where(table["group"] == table["reference"], "reference", direction),
    )


def _check(r, policy: RecordingPolicy) -> Check:
    lower, upper = policy.band
    detail = (
        f"police records per A&E attendance, {r.group} vs {r.reference} "
        f"({r.n_areas} vs {r.n_areas_reference} areas)"
    )
    if not r.passed:
        detail += f": {r.direction} relative to {r.reference}"
    if r.reported_because:
        detail += f"; {r.reported_because}"
    return Check(
        name=f"fairness.recording_ratio.{r.grouping}.{r.group}",
        category="fairness",
        passed=bool(r.passed),
        gated=bool(r.gated),
        value=finite_or_none(r.ratio),
        lower=lower,
        upper=upper,
        ci_low=finite_or_none(r.ci_low),
        ci_high=finite_or_none(r.ci_high),
        detail=detail,
    )
