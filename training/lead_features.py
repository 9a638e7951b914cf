"""Features with lead time: council indicators weeks back, and the night-time economy.

Violence research finds that a household or a school in crisis shows up in
council records weeks before violence does, and that a crisis is a jump, not
a level. For evictions and exclusions, at each origin week:

- ``<col>_lag<k>`` for ``k`` in ``FeatureParams.council_lags`` (3 to 8): the
  count ``k - 1`` weeks before the origin week (the ``_lag`` naming of
  ``training.features``);
- ``<col>_lead_change = lead - base``, where ``lead`` is the mean of those lags
  and ``base`` the area's weekly mean over the ``council_baseline_weeks`` (52)
  weeks before the earliest of them;
- ``<col>_lead_ratio = (lead + p) / (base + p)`` with the small prior
  ``p = council_ratio_prior`` (0.5), so a quiet area's first eviction is a jump
  but not an infinite one.

Weeks outside a source's coverage are missing in the panel: they are left out
of both means, and a mean over no observed week is missing, never zero.

The night-time economy (``late_premises``: licensed premises open after
midnight) matters most on summer nights, in December and on bank-holiday
weekends; the ``nte_*`` columns are ``late_premises`` times the target week's

- ``nte_summer``: summer-ness ``(1 - woy_cos) / 2`` (0 in early January, 1 in
  early July);
- ``nte_december``: 1 when the target week's Thursday falls in December;
- ``nte_bank_holiday_weekend``: 1 when a bank holiday in England falls on the
  target week's Friday to the following Monday (the weekend it makes long).
"""

from __future__ import annotations

import holidays
import numpy as np
import pandas as pd

from training.config import FeatureParams

__all__ = ["COUNCIL_COLUMNS", "LEAD_WORDS", "council_lead_block", "night_time_block"]

COUNCIL_COLUMNS = ("evictions", "exclusions")
LEAD_WORDS = {
    "lead_change": "jump {lags} weeks back against the area's usual level (mean minus "
    "the mean of the {base} weeks before)",
    "lead_ratio": "jump {lags} weeks back against the area's usual level (ratio)",
    "nte_summer": "late-night premises x summer",
    "nte_december": "late-night premises x December",
    "nte_bank_holiday_weekend": "late-night premises x bank-holiday weekend (target week)",
}


def council_lead_block(
    mats: dict[str, np.ndarray], params: FeatureParams, origins: np.ndarray
) -> dict[str, np.ndarray]:
    """Council lags and their jump against the area's baseline (origins x areas).

    Parameters
    ----------
    mats : panel column -> (week x area) matrix, NaN outside coverage.
    params : ``council_lags``, ``council_baseline_weeks``, ``council_ratio_prior``.
    origins : row positions of the origin weeks.

    Returns
    -------
    dict
        ``<col>_lag<k>``, ``<col>_lead_change`` and ``<col>_lead_ratio`` for
        evictions and exclusions; empty when ``council_lags`` is empty.
    """
    out: dict[str, np.ndarray] = {}
    if not params.council_lags:
        return out
    last = max(params.council_lags)
    for column in COUNCIL_COLUMNS:
        mat = mats[column]
        lags = [_rows_at(mat, origins - (k - 1)) for k in params.council_lags]
        for k, values in zip(params.council_lags, lags, strict=True):
            out[f"{column}_lag{k}"] = values
        lead = _mean_of(np.stack(lags))
        # the baseline ends the week before the earliest council lag
        end = origins - (last - 1)
        base = _window_mean(mat, end, params.council_baseline_weeks)
        out[f"{column}_lead_change"] = lead - base
        prior = params.council_ratio_prior
        out[f"{column}_lead_ratio"] = (lead + prior) / (base + prior)
    return out


def night_time_block(late_premises: np.ndarray, target_week: np.ndarray) -> dict[str, np.ndarray]:
    """Late premises times the target week's summer-ness, December and bank-holiday weekend."""
    weeks = pd.DatetimeIndex(target_week)
    angle = 2 * np.pi * (weeks.isocalendar().week.to_numpy(np.float64) - 1) / 52.18
    summer = (1.0 - np.cos(angle)) / 2.0
    december = ((weeks + pd.Timedelta(days=3)).month == 12).astype(np.float64)
    late = np.asarray(late_premises, dtype=np.float64)
    return {
        "nte_summer": (late * summer).astype(np.float32),
        "nte_december": (late * december).astype(np.float32),
        "nte_bank_holiday_weekend": (late * bank_holiday_weekend(weeks)).astype(np.float32),
    }


def bank_holiday_weekend(weeks: pd.DatetimeIndex) -> np.ndarray:
    """1.0 where a bank holiday in England falls on the week's Friday to the next Monday.

    Examples
    --------
    >>> bank_holiday_weekend(pd.DatetimeIndex(["2024-05-20", "2024-05-13"]))
    array([1., 0.])
    """
    unique = weeks.unique()
    years = range(unique.min().year - 1, unique.max().year + 2)
    bank = pd.DatetimeIndex(list(holidays.country_holidays("GB", subdiv="ENG", years=years)))
    # the Monday of the week whose long weekend the holiday belongs to
    shifted = bank - pd.Timedelta(days=4)
    owner = shifted - pd.to_timedelta(shifted.dayofweek, unit="D")
    flag = pd.Series(unique.isin(owner.normalize()), index=unique).astype(np.float64)
    return flag.reindex(weeks).to_numpy(np.float64)


def _rows_at(mat: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """Rows ``idx`` of ``mat``; NaN where ``idx`` is outside the matrix."""
    ok = (idx >= 0) & (idx < mat.shape[0])
    out = np.full((len(idx), mat.shape[1]), np.nan)
    out[ok] = mat[idx[ok]]
    return out


def _mean_of(stack: np.ndarray) -> np.ndarray:
    """Mean over axis 0 of the observed values; NaN where none is observed."""
    seen = np.isfinite(stack)
    n = seen.sum(axis=0)
    total = np.where(seen, stack, 0.0).sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n > 0, total / n, np.nan)


def _window_mean(mat: np.ndarray, end: np.ndarray, window: int) -> np.ndarray:
    """Mean of the observed weeks in ``[end - window, end)`` per row; NaN when none."""
    seen = np.isfinite(mat)
    zero = np.zeros((1, mat.shape[1]))
    csum = np.vstack([zero, np.cumsum(np.where(seen, mat, 0.0), axis=0)])
    ccount = np.vstack([zero, np.cumsum(seen, axis=0)])
    hi = np.clip(end, 0, mat.shape[0])
    lo = np.clip(end - window, 0, mat.shape[0])
    n = ccount[hi] - ccount[lo]
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n > 0, (csum[hi] - csum[lo]) / n, np.nan)
