"""Sensitive attributes recognised by their values, whatever a feature is called.

The areas table's ``audit_*`` columns (ethnic shares, ethnic band) are for the
fairness audit only. A feature that carries one of them under another name
(``share_black``) passes a check on names, so each feature is compared with
each audit-only attribute area by area: the feature's mean over an area's rows
against the attribute's value. A numeric attribute is matched by the larger of
the absolute Pearson and Spearman correlations; a categorical one (the band)
by the correlation ratio (eta: the share of the feature's spread between areas
that the categories explain, square-rooted). A value at or above
``shap.max_sensitive_correlation`` of the policy fails the gate.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from governance.checks import Check
from governance.policy import ShapPolicy

__all__ = ["SENSITIVE_PREFIX", "SensitiveMatch", "sensitive_matches", "sensitive_content_check"]

SENSITIVE_PREFIX = "audit_"
# A feature whose per-area means hardly vary says nothing about any area attribute.
_MIN_SPREAD = 1e-9


@dataclass(frozen=True)
class SensitiveMatch:
    """How closely one feature follows one audit-only attribute across areas."""

    feature: str
    attribute: str
    strength: float


def _eta(values: np.ndarray, labels: np.ndarray) -> float:
    total = ((values - values.mean()) ** 2).sum()
    between = sum(
        (labels == k).sum() * (values[labels == k].mean() - values.mean()) ** 2
        for k in np.unique(labels)
    )
    return float(np.sqrt(min(between / total, 1.0)))


def _correlation(values: np.ndarray, attribute: np.ndarray) -> float:
    keep = np.isfinite(values) & np.isfinite(attribute)
    x, y = values[keep], attribute[keep]
    if len(x) < 3 or np.std(y) <= _MIN_SPREAD:
        return 0.0
    pearson = abs(float(np.corrcoef(x, y)[0, 1]))
    spearman = abs(float(pd.Series(x).corr(pd.Series(y), method="spearman")))
    return max(np.nan_to_num(pearson), np.nan_to_num(spearman))


def sensitive_matches(
    features: pd.DataFrame, feature_names: list[str], areas: pd.DataFrame
) -> list[SensitiveMatch]:
    """Return, for each feature, its strongest match with an audit-only attribute.

    Parameters
    ----------
    features : rows with ``area_code`` and the feature columns.
    feature_names : the model's feature columns.
    areas : the areas table, ``audit_*`` columns included.

    Returns
    -------
    list of SensitiveMatch
        One per feature that varies between areas, strongest first.
    """
    audit = [c for c in areas.columns if str(c).startswith(SENSITIVE_PREFIX)]
    if not audit:
        return []
    table = areas.drop_duplicates("area_code").set_index("area_code")
    means = features.groupby("area_code")[feature_names].mean().reindex(table.index)
    found = []
    for name in feature_names:
        values = means[name].to_numpy(float)
        keep = np.isfinite(values)
        if keep.sum() < 3 or np.std(values[keep]) <= _MIN_SPREAD:
            continue
        best = SensitiveMatch(name, "", 0.0)
        for column in audit:
            attribute = table[column]
            if pd.api.types.is_numeric_dtype(attribute):
                strength = _correlation(values, attribute.to_numpy(float))
            else:
                strength = _eta(values[keep], attribute.astype(str).to_numpy()[keep])
            if strength > best.strength:
                best = SensitiveMatch(name, column, round(strength, 6))
        found.append(best)
    return sorted(found, key=lambda m: -m.strength)


def sensitive_content_check(
    features: pd.DataFrame, feature_names: list[str], areas: pd.DataFrame, policy: ShapPolicy
) -> Check:
    """Fail when a feature matches an audit-only attribute (by content or by name)."""
    limit = policy.max_sensitive_correlation
    matches = sensitive_matches(features, feature_names, areas)
    named = [n for n in feature_names if n.startswith(SENSITIVE_PREFIX)]
    bad = [m for m in matches if m.strength >= limit]
    strongest = matches[0] if matches else SensitiveMatch("", "", 0.0)
    if bad or named:
        listed = [f"{m.feature} ~ {m.attribute} ({m.strength:.3f})" for m in bad] + [
            f"{n} (an audit-only column)" for n in named if n not in {m.feature for m in bad}
        ]
        detail = f"features that carry an audit-only attribute (limit {limit:g}): " + "; ".join(
            listed
        )
    else:
        detail = (
            f"strongest: {strongest.feature} ~ {strongest.attribute} ({strongest.strength:.3f})"
            if strongest.feature
            else "no audit-only attribute to compare with"
        )
    return Check(
        name="shap.sensitive_content",
        category="shap",
        passed=not bad and not named,
        gated=True,
        value=max(strongest.strength, 1.0 if named else 0.0),
        upper=limit,
        detail=detail,
    )
