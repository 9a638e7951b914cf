"""Verdicts of the fairness audit: which ratios are gated, which pass, and their checks."""

from __future__ import annotations

import numpy as np
import pandas as pd

from governance._fairness_frames import ADJUSTED_METRICS, PARITY_METRICS, RATIO_CAP
from governance.checks import Check, finite_or_none, in_bounds, significant_gap
from governance.policy import FairnessPolicy

__all__ = ["judge_ratios", "ratio_checks", "SELECTION_CAVEAT", "CITY_REFERENCE"]

SELECTION_CAVEAT = (
    "share of flags / share of observed harm, read against 1; a top-k cut gives "
    "high-harm groups more than their harm share even under a perfect ranking"
)
CITY_REFERENCE = (
    "vs the city's flags pooled: the reference group expects fewer than {n:g} false alarms"
)
FEW_AREAS = "reported only: fewer than {n} areas"
FEW_AE = "reported only: fewer than {n} A&E attendances"
FEW_FALSE_ALARMS = "reported only: its flags expect fewer than {n:g} false alarms"


def judge_ratios(
    ratios: pd.DataFrame, table: pd.DataFrame, grouping: str, policy: FairnessPolicy
) -> pd.DataFrame:
    """Add ``grouping``, sizes, ``reported_because``, ``gated`` and ``passed`` to ``ratios``.

    A row is gated when the policy gates its metric and the evidence suffices:
    the group and its reference have ``min_group_areas`` areas; for
    ``calibration_ratio_ae`` both hold ``min_ae_count`` A&E attendances; for the
    adjusted false-alarm metrics the group's flags expect
    ``min_expected_false_alarms`` false alarms. Otherwise ``reported_because``
    says why the row is reported only.
    """
    by_group = table.set_index("group")
    out = ratios.assign(
        grouping=grouping,
        n_areas=ratios["group"].map(by_group["n_areas"]),
        n_areas_reference=ratios["reference"].map(by_group["n_areas"]),
    )
    ae = pd.concat(
        [ratios["group"].map(by_group["ae_count"]), ratios["reference"].map(by_group["ae_count"])],
        axis=1,
    ).min(axis=1)
    expected_fa = ratios["group"].map(by_group["expected_false_alarms"])
    # min() skips the reference of parity and city comparisons (not a group).
    reasons = [
        (
            out[["n_areas", "n_areas_reference"]].min(axis=1) < policy.min_group_areas,
            FEW_AREAS.format(n=policy.min_group_areas),
        ),
        (
            (out["metric"] == "calibration_ratio_ae") & (ae < policy.min_ae_count),
            FEW_AE.format(n=policy.min_ae_count),
        ),
        (
            out["metric"].isin(ADJUSTED_METRICS) & (expected_fa < policy.min_expected_false_alarms),
            FEW_FALSE_ALARMS.format(n=policy.min_expected_false_alarms),
        ),
    ]
    out["reported_because"] = ""
    for mask, reason in reversed(reasons):
        out.loc[mask.to_numpy(), "reported_because"] = reason
    out["gated"] = out["metric"].isin(policy.gated) & (out["reported_because"] == "")
    out["passed"] = [_passes(r, policy) for r in out.itertuples()]
    return out


def _passes(row, policy: FairnessPolicy) -> bool:
    lower, upper = policy.band
    gap = policy.significant_gap
    if row.metric in gap.metrics and significant_gap(
        row.ratio, row.ci_low, row.ci_high, gap.max_gap
    ):
        return False
    if policy.gate_on == "ci" and np.isfinite(row.ci_low) and np.isfinite(row.ci_high):
        return not (row.ci_high < lower or row.ci_low > upper)
    return in_bounds(row.ratio, lower, upper)


def _detail(r, policy: FairnessPolicy) -> str:
    if r.metric in PARITY_METRICS:
        detail = f"{r.group} ({r.n_areas} areas): {SELECTION_CAVEAT}"
    elif r.reference == "city":
        detail = f"{r.group} ({r.n_areas} areas) " + CITY_REFERENCE.format(
            n=policy.min_expected_false_alarms
        )
    else:
        detail = f"{r.group} vs {r.reference} ({r.n_areas} vs {int(r.n_areas_reference)} areas)"
    if r.ratio >= RATIO_CAP:
        detail += "; the reference group's value is 0"
    gap = policy.significant_gap
    if r.metric in gap.metrics and significant_gap(r.ratio, r.ci_low, r.ci_high, gap.max_gap):
        detail += f"; interval excludes 1 and the gap exceeds {gap.max_gap:.0%}"
    if r.reported_because and r.metric in policy.gated:
        detail += f"; {r.reported_because}"
    return detail


def ratio_checks(ratios: pd.DataFrame, policy: FairnessPolicy) -> list[Check]:
    """One :class:`Check` per row of a judged ratio table."""
    lower, upper = policy.band
    return [
        Check(
            name=f"fairness.{r.metric}.{r.grouping}.{r.group}",
            category="fairness",
            passed=bool(r.passed),
            gated=bool(r.gated),
            value=finite_or_none(r.ratio),
            lower=lower,
            upper=upper,
            ci_low=finite_or_none(r.ci_low),
            ci_high=finite_or_none(r.ci_high),
            detail=_detail(r, policy),
        )
        for r in ratios.itertuples()
    ]
