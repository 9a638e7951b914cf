"""One verdict of the governance gate, shared by the fairness, SHAP and champion audits."""

from __future__ import annotations

import math
from typing import Literal

from pydantic import BaseModel, ConfigDict

__all__ = ["Check", "Category", "finite_or_none", "in_bounds", "significant_gap"]

Category = Literal["fairness", "shap", "champion"]


class Check(BaseModel):
    """One named check: its value, the bounds it was held to and the verdict.

    Attributes
    ----------
    name : dotted name, e.g. ``fairness.calibration_ratio.imd_quintile.Q1``.
    category : the audit that produced it.
    passed : whether ``value`` lies within ``[lower, upper]`` (or the check's rule).
    gated : whether a failure blocks registration (else reported only).
    value, lower, upper : the measured value and its bounds (None: no bound).
    ci_low, ci_high : the bootstrap interval of ``value``, when computed.
    detail : plain words on what was compared.
    """

    model_config = ConfigDict(extra="forbid")

    name: str
    category: Category
    passed: bool
    gated: bool
    value: float | None = None
    lower: float | None = None
    upper: float | None = None
    ci_low: float | None = None
    ci_high: float | None = None
    detail: str = ""


def finite_or_none(value: float | None) -> float | None:
    """Return ``value`` as a float, or None when it is missing, NaN or infinite (JSON-safe)."""
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def in_bounds(value: float, lower: float | None, upper: float | None) -> bool:
    """Whether ``value`` lies within the closed bounds (NaN never does)."""
    if math.isnan(value):
        return False
    return (lower is None or value >= lower) and (upper is None or value <= upper)


def significant_gap(ratio: float, low: float, high: float, max_gap: float) -> bool:
    """Whether the interval excludes 1 and the ratio lies more than ``max_gap`` from 1.

    More than ``max_gap`` from 1 means below ``1 - max_gap`` or above
    ``1 / (1 - max_gap)`` (the same distance on the log scale).

    Examples
    --------
    >>> significant_gap(0.872, 0.748, 0.998, 0.10)
    True
    >>> significant_gap(0.95, 0.90, 0.99, 0.10)
    False
    >>> significant_gap(0.85, 0.70, 1.02, 0.10)
    False
    """
    if not all(math.isfinite(v) for v in (ratio, low, high)):
        return False
    excludes_one = high < 1.0 or low > 1.0
    return bool(excludes_one and (ratio < 1 - max_gap or ratio > 1 / (1 - max_gap)))
