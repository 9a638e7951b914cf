"""Verdicts of the fairness audit: which ratios are gated, which pass, and their checks."""

from __future__ import annotations

import numpy as np
import pandas as pd

from governance._fairness_frames import PARITY_METRICS, RATIO_CAP
from governance.checks import Check, finite_or_none, in_bounds
from governance.policy import FairnessPolicy

__all__ = ["judge_ratios", "ratio_checks", "SELECTION_CAVEAT"]

SELECTION_CAVEAT = (
    "share of flags / share of observed harm, read against 1; a top-k cut gives "
    "high-harm groups more than their harm share even under a perfect ranking"
)


def judge_ratios(
    ratios: pd.DataFrame, table: pd.DataFrame, grouping: str, policy: FairnessPolicy
) -> pd.DataFrame:
    """Add ``grouping``, sizes, ``small_group``, ``few_ae``, ``gated`` and ``passed`` to ``ratios``.

    A row is gated when the policy gates its metric and neither the group nor
    its reference is small (``min_group_areas``; for ``calibration_ratio_ae``
    also ``min_ae_count`` A&E attendances).
    """
    n_areas = dict(zip(table["group"], table["n_areas"], strict=True))
    ae_count = dict(zip(table["group"], table["ae_count"], strict=True))
    out = ratios.assign(
        grouping=grouping,
        n_areas=ratios["group"].map(n_areas),
        n_areas_reference=ratios["reference"].map(n_areas),
    )
    # min() skips the missing reference of parity metrics: only the group counts.
    out["small_group"] = out[["n_areas", "n_areas_reference"]].min(axis=1) < policy.min_group_areas
    fewest_ae = pd.concat(
        [ratios["group"].map(ae_count), ratios["reference"].map(ae_count)], axis=1
    ).min(axis=1)
    out["few_ae"] = (out["metric"] == "calibration_ratio_ae") & (fewest_ae < policy.min_ae_count)
    out["gated"] = out["metric"].isin(policy.gated) & ~out["small_group"] & ~out["few_ae"]
    out["passed"] = [_passes(r, policy) for r in out.itertuples()]
    return out


def _passes(row, policy: FairnessPolicy) -> bool:
    lower, upper = policy.band
    if policy.gate_on == "ci" and np.isfinite(row.ci_low) and np.isfinite(row.ci_high):
        return not (row.ci_high < lower or row.ci_low > upper)
    return in_bounds(row.ratio, lower, upper)


def ratio_checks(ratios: pd.DataFrame, policy: FairnessPolicy) -> list[Check]:
    """One :class:`Check` per row of a judged ratio table."""
    lower, upper = policy.band
    checks = []
    for r in ratios.itertuples():
        if r.metric in PARITY_METRICS:
            detail = f"{r.group} ({r.n_areas} areas): {SELECTION_CAVEAT}"
        else:
            detail = f"{r.group} vs {r.reference} ({r.n_areas} vs {r.n_areas_reference} areas)"
        if r.ratio >= RATIO_CAP:
            detail += "; the reference group's value is 0"
        if r.small_group:
            detail += f"; reported only: fewer than {policy.min_group_areas} areas"
        elif r.few_ae and r.metric in policy.gated:
            detail += f"; reported only: fewer than {policy.min_ae_count} A&E attendances"
        checks.append(
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
                detail=detail,
            )
        )
    return checks
