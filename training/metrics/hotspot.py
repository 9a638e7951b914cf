"""Hot-spot metrics per week: hit rate, PAI and PEI at several coverages.

Each (method, horizon, target week) is one cross-section of areas. Ties in the
forecast are broken pessimistically: among areas with the same forecast the
ones with FEWER observed incidents come first, so a flat forecast earns
nothing from lucky ties.

Two selections per coverage ``c``:

- by area: areas ranked by forecast density ``mu / km2`` (what a hot-spot map
  shows, and the ranking that makes the most of a km2 budget), taken while the
  km2 selected BEFORE an area is below ``c * A`` (A the total km2): the area
  that crosses the threshold is included whole, so at least one area is always
  selected and the selected area ``a`` can exceed ``c * A``; PAI uses the
  actual ``a``.
- by count: areas ranked by ``mu``; the top ``k = ceil(c * n_areas)`` areas.

With ``n`` the incidents in the selection and ``N`` in the week:

- ``hit_rate_{c}`` = n / N of the by-area selection; ``hit_rate_count_{c}`` of the
  by-count selection;
- ``pai_area_{c}`` = (n / N) / (a / A), km2 (by-area selection);
- ``pai_count_{c}`` = (n / N) / (k / n_areas) (by-count selection);
- ``pei_{c}`` = n / n*, n* the most incidents any ``k`` areas held (hindsight:
  the top ``k`` by observed count), so 0 <= PEI <= 1 and a perfect forecast scores 1;
- ``pei_area_{c}`` = PAI / PAI*, PAI* of the by-area selection ranked with hindsight
  by observed density (incidents per km2). The greedy density ranking is not
  always the best knapsack, so this one can slightly exceed 1.

Weeks without any incident (N = 0) get NaN for all of these.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

__all__ = ["hotspot_metrics", "coverage_label", "HOTSPOT_PREFIXES"]

HOTSPOT_PREFIXES = (
    "hit_rate",
    "hit_rate_count",
    "pai_area",
    "pai_count",
    "pei",
    "pei_area",
)
_KEYS = ["method", "horizon", "target_week"]


def coverage_label(coverage: float) -> str:
    """Return the column suffix of a coverage: its percentage as an integer (0.05 -> '5')."""
    return str(int(round(coverage * 100)))


class _Groups:
    """Rows sorted by (group, order keys) with per-group sums and cumulative sums."""

    def __init__(self, gid: np.ndarray, order: np.ndarray, n_groups: int) -> None:
        self.order = order
        self.gid = gid[order]
        self.starts = np.flatnonzero(np.r_[True, np.diff(self.gid) != 0])
        self.n_groups = n_groups
        self.pos = np.arange(order.size) - self.starts[self.gid]

    def total(self, values: np.ndarray) -> np.ndarray:
        return np.bincount(self.gid, weights=values, minlength=self.n_groups)

    def cum_before(self, values: np.ndarray) -> np.ndarray:
        cs = np.cumsum(values)
        return cs - values - (cs[self.starts] - values[self.starts])[self.gid]


def _area_selection(groups: _Groups, km2: np.ndarray, total_km2: np.ndarray, c: float):
    budget = c * total_km2[groups.gid]
    # a relative tolerance so an exact fill of the budget does not add one more area
    return groups.cum_before(km2) < budget - 1e-9 * total_km2[groups.gid]


def hotspot_metrics(
    frame: pd.DataFrame, coverages: Sequence[float], *, km2_column: str = "area_km2"
) -> pd.DataFrame:
    """Compute hit rate, PAI and PEI per (method, horizon, target week).

    Parameters
    ----------
    frame : predictions with ``mu``, ``y`` (observed, no NaN) and ``km2_column``.
    coverages : shares of the city (by km2 or by area count) selected.
    km2_column : the column with each area's size.

    Returns
    -------
    pandas.DataFrame
        ``method``, ``horizon``, ``target_week``, ``n_areas``, ``incidents`` and one
        column per metric and coverage (``hit_rate_5``, ``pai_area_5``...).
    """
    keys = frame[_KEYS].reset_index(drop=True)
    gid = keys.groupby(_KEYS, sort=True).ngroup().to_numpy()
    out = keys.drop_duplicates().sort_values(_KEYS).reset_index(drop=True)
    n_groups = len(out)
    mu = frame["mu"].to_numpy(dtype=float)
    y = frame["y"].to_numpy(dtype=float)
    km2 = frame[km2_column].to_numpy(dtype=float)

    ranked = _Groups(gid, np.lexsort((y, -mu, gid)), n_groups)
    by_density = _Groups(gid, np.lexsort((y / km2, -mu / km2, gid)), n_groups)
    hindsight = _Groups(gid, np.lexsort((-y, gid)), n_groups)
    dense = _Groups(gid, np.lexsort((-y / km2, gid)), n_groups)
    n_areas = np.bincount(gid, minlength=n_groups).astype(float)
    incidents = ranked.total(y[ranked.order])
    total_km2 = ranked.total(km2[ranked.order])
    out["n_areas"] = n_areas.astype(int)
    out["incidents"] = incidents
    empty = incidents <= 0
    share = np.where(empty, np.nan, 1.0) / np.where(empty, 1.0, incidents)

    columns = {}
    for c in coverages:
        label = coverage_label(c)
        k = np.ceil(c * n_areas - 1e-9)
        # by area
        sel = _area_selection(by_density, km2[by_density.order], total_km2, c)
        hit = by_density.total(y[by_density.order] * sel) * share
        area_share = by_density.total(km2[by_density.order] * sel) / total_km2
        pai_area = hit / area_share
        sel_star = _area_selection(dense, km2[dense.order], total_km2, c)
        hit_star = dense.total(y[dense.order] * sel_star) * share
        pai_star = hit_star / (dense.total(km2[dense.order] * sel_star) / total_km2)
        # by count
        n_count = ranked.total(y[ranked.order] * (ranked.pos < k[ranked.gid]))
        n_star = hindsight.total(y[hindsight.order] * (hindsight.pos < k[hindsight.gid]))
        with np.errstate(divide="ignore", invalid="ignore"):
            columns[f"hit_rate_{label}"] = hit
            columns[f"hit_rate_count_{label}"] = n_count * share
            columns[f"pai_area_{label}"] = pai_area
            columns[f"pai_count_{label}"] = n_count * share / (k / n_areas)
            columns[f"pei_{label}"] = np.where(empty, np.nan, n_count / np.maximum(n_star, 1e-300))
            columns[f"pei_area_{label}"] = np.where(
                empty | (pai_star <= 0), np.nan, pai_area / pai_star
            )
    return pd.concat([out, pd.DataFrame(columns)], axis=1)
