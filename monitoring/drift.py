"""Input drift per source: this week's feed against the weeks before it.

Three signals per source, each against the trailing weeks of the panel:

- ``count_p``: the two-sided tail probability of the week's total under a
  negative binomial with the trailing totals' mean and variance (Poisson when
  they are not overdispersed). A feed that stops or doubles is very unlikely.
  ``count_z``, ``(x - mean) / sqrt(max(variance, mean, 1))``, is reported.
- ``psi``: population stability index of the areas' count distribution (bins
  0, 1, 2, 3-4, 5+). Judged only with enough records that week, as small
  samples make PSI noisy.
- ``match_rate_drop``: how far the linkage match rate fell below its trailing
  mean (e.g. a new free-text format the gazetteer cannot place).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

from governance.policy import DriftPolicy

__all__ = ["SOURCE_COLUMNS", "PSI_BINS", "source_drift", "psi", "count_p_value"]

#: The panel columns that count each source's records.
SOURCE_COLUMNS = {
    "police": ("police_violence", "police_other"),
    "istv": ("ae_assault",),
    "ambulance": ("ambulance_assault",),
    "exclusions": ("exclusions",),
    "evictions": ("evictions",),
}
PSI_BINS = (-np.inf, 0.5, 1.5, 2.5, 4.5, np.inf)
_EPS = 1e-4


def psi(expected: np.ndarray, actual: np.ndarray) -> float:
    """Return the population stability index of two samples over :data:`PSI_BINS`.

    Examples
    --------
    >>> round(psi(np.array([0, 1, 2, 5]), np.array([0, 1, 2, 5])), 6)
    0.0
    """
    e = np.histogram(expected, bins=PSI_BINS)[0] / max(len(expected), 1)
    a = np.histogram(actual, bins=PSI_BINS)[0] / max(len(actual), 1)
    e, a = np.clip(e, _EPS, None), np.clip(a, _EPS, None)
    return float(np.sum((a - e) * np.log(a / e)))


def count_p_value(count: float, mean: float, var: float) -> float:
    """Return the two-sided tail probability of ``count`` given trailing ``mean``, ``var``.

    Examples
    --------
    >>> count_p_value(0, 13.0, 13.0) < 1e-4
    True
    >>> count_p_value(13, 13.0, 13.0) > 0.5
    True
    """
    if not np.isfinite(mean) or mean <= 0:
        return 1.0 if count == 0 else 0.0
    if np.isfinite(var) and var > mean:
        size = mean**2 / (var - mean)
        dist = stats.nbinom(size, size / (size + mean))
    else:
        dist = stats.poisson(mean)
    x = round(count)
    tail = min(dist.cdf(x), dist.sf(x - 1))
    return float(min(1.0, 2.0 * tail))


def _counts(panel: pd.DataFrame, columns: tuple[str, ...]) -> pd.DataFrame:
    """Area x week matrix of one source's counts (NaN in weeks it did not cover)."""
    values = panel[list(columns)].sum(axis=1, min_count=1)
    return (
        panel.assign(_n=values)
        .pivot(index="week_start", columns="area_code", values="_n")
        .sort_index()
    )


def source_drift(
    panel: pd.DataFrame,
    week: pd.Timestamp,
    *,
    match_rates: dict[str, float | None],
    records_in: dict[str, int] | None = None,
    drifted: dict[str, set[pd.Timestamp]] | None = None,
    baseline_rates: dict[str, float],
    policy: DriftPolicy,
) -> list[dict]:
    """Drift signals of every source for ``week`` (which must be in ``panel``).

    Parameters
    ----------
    panel : the panel including ``week``.
    week : the week judged; the trailing weeks are the ``policy.trailing_weeks``
        before it.
    match_rates : this week's linkage match rate per source (None: not delivered).
    records_in : this week's records read per source (the match rate is judged
        only from ``policy.match_rate_min_records``); None: always judged.
    baseline_rates : the trailing mean match rate per source.
    drifted : weeks already found drifted per source; they are left out of the
        trailing weeks, so an outage does not become the new normal.
    policy : thresholds.

    Returns
    -------
    list of dict
        One per source: ``source, count, trailing_mean, count_z, count_p, psi,
        match_rate, match_rate_drop, judged, gap`` (the source delivered
        nothing: missing in the panel, judged as a zero week) ``, breaches`` (breach names such as
        ``count``, ``psi``, ``match_rate``).
    """
    week = pd.Timestamp(week)
    out = []
    for source, columns in SOURCE_COLUMNS.items():
        if not set(columns) <= set(panel.columns):
            continue
        matrix = _counts(panel, columns)
        start = week - pd.Timedelta(weeks=policy.trailing_weeks)
        skip = pd.DatetimeIndex(sorted((drifted or {}).get(source, set())))
        keep = (matrix.index < week) & (matrix.index >= start) & ~matrix.index.isin(skip)
        trailing = matrix.loc[keep]
        trailing = trailing.loc[trailing.notna().any(axis=1)]  # earlier gaps are not the normal
        present = week in matrix.index
        now = matrix.loc[week].to_numpy(float) if present else np.zeros(matrix.shape[1])
        gap = bool(np.isnan(now).all()) and now.size > 0
        now = np.nan_to_num(now)  # a gap is judged as a week with nothing: the count test flags it
        totals = trailing.sum(axis=1).to_numpy(float)
        judged = len(totals) >= policy.min_trailing_weeks
        mean = float(totals.mean()) if len(totals) else float("nan")
        var = float(totals.var(ddof=1)) if len(totals) > 1 else float("nan")
        count = float(now.sum())
        z = (count - mean) / np.sqrt(max(var, mean, 1.0)) if judged else float("nan")
        p_value = count_p_value(count, mean, var) if judged else float("nan")
        value_psi = psi(trailing.to_numpy(float).ravel(), now) if judged else float("nan")
        rate = match_rates.get(source)
        base = baseline_rates.get(source)
        drop = float(base - rate) if rate is not None and base is not None else float("nan")
        breaches = []
        if judged and p_value < policy.min_count_p:
            breaches.append("count")
        big = min(count, mean) >= policy.psi_min_records
        if judged and big and value_psi > policy.max_psi:
            breaches.append("psi")
        enough = records_in is None or records_in.get(source, 0) >= policy.match_rate_min_records
        if enough and np.isfinite(drop) and drop > policy.max_match_rate_drop:
            breaches.append("match_rate")
        out.append({
            "source": source, "count": count, "trailing_mean": mean, "count_z": float(z),
            "count_p": p_value, "psi": value_psi, "match_rate": rate, "match_rate_drop": drop,
            "judged": bool(judged), "gap": gap, "breaches": breaches,
        })  # fmt: skip
    return out
