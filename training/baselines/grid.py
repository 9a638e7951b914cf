"""The panel as an areas x weeks matrix, validated, with the origins' columns.

Used by ``training.baselines.predict`` so every baseline indexes the same matrix.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from training.errors import SchemaError

__all__ = [
    "Grid",
    "build_grid",
    "require_columns",
    "WEEK",
    "MISSING_COLUMNS",
    "DUPLICATE_ROWS",
    "NOT_MONDAY",
    "NOT_FINITE",
    "ORIGIN_OUTSIDE",
    "BAD_HORIZONS",
]

MISSING_COLUMNS = "missing column(s) {columns}"
DUPLICATE_ROWS = "{n} duplicate (area_code, week_start) row(s), first {example}"
NOT_MONDAY = "week_start must be a Monday, got {value}"
NOT_FINITE = "values must be non-negative (NaN = not covered), first bad row {row}"
ORIGIN_OUTSIDE = "origin week {week} is not a week of the panel ({first} to {last})"
BAD_HORIZONS = "horizons must be whole weeks between 1 and 52, got {horizons}"
WEEK = pd.Timedelta(weeks=1)


@dataclass(frozen=True)
class Grid:
    """The panel's counts as matrices and the origins' column indices."""

    codes: np.ndarray  # area codes, sorted
    weeks: pd.DatetimeIndex  # every week of the panel
    counts: np.ndarray  # violence, areas x weeks; uncovered weeks carry the last observed
    ae: np.ndarray  # ae_assault, areas x weeks; NaN where not covered
    origins: pd.DatetimeIndex  # sorted, unique
    origin_idx: np.ndarray  # column of each origin
    horizons: np.ndarray
    observed: np.ndarray | None = None  # violence with NaN where not covered (the truth)


def require_columns(frame: pd.DataFrame, name: str, columns: Sequence[str]) -> None:
    """Raise ``SchemaError`` naming ``name`` when ``frame`` lacks any of ``columns``."""
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise SchemaError(name, MISSING_COLUMNS.format(columns=", ".join(missing)))


def _carry_forward(counts: np.ndarray) -> np.ndarray:
    """Carry each area's last observed count over its missing weeks (0 before the first)."""
    seen = np.isfinite(counts)
    if seen.all():
        return counts
    idx = np.where(seen, np.arange(counts.shape[1])[None, :], 0)
    np.maximum.accumulate(idx, axis=1, out=idx)
    carried = np.take_along_axis(np.where(seen, counts, 0.0), idx, axis=1)
    return np.where(seen | (idx > 0) | seen[:, :1], carried, 0.0)


def build_grid(panel: pd.DataFrame, origin_weeks: Iterable, horizons: Iterable[int]) -> Grid:
    """Validate the panel and pivot it; missing (area, week) rows count as zero.

    NaN counts (weeks outside a source's coverage) are not zeros: the
    baselines forecast from the last observed week carried over the gap
    (``counts``), and the truth stays NaN (``observed``, ``ae``) so the gap
    is never scored.
    """
    require_columns(panel, "panel", ["area_code", "week_start", "violence", "ae_assault"])
    hz = np.array(sorted(set(int(h) for h in horizons)), dtype=int)
    if hz.size == 0 or hz.min() < 1 or hz.max() > 52:
        raise ValueError(BAD_HORIZONS.format(horizons=list(horizons)))
    week = pd.to_datetime(panel["week_start"]).dt.normalize()
    not_monday = np.flatnonzero(week.dt.dayofweek.to_numpy() != 0)
    if not_monday.size:
        raise SchemaError(
            "panel",
            NOT_MONDAY.format(value=week.iloc[not_monday[0]].date()),
            row=int(not_monday[0]) + 2,
            field="week_start",
        )
    dup = panel.assign(week_start=week).duplicated(["area_code", "week_start"])
    if dup.any():
        first = panel.loc[dup].iloc[0]
        example = (first["area_code"], str(pd.Timestamp(first["week_start"]).date()))
        raise SchemaError("panel", DUPLICATE_ROWS.format(n=int(dup.sum()), example=example))
    for column in ("violence", "ae_assault"):
        values = panel[column].to_numpy(dtype=float)
        bad = np.flatnonzero(np.isinf(values) | (values < 0))
        if bad.size:
            raise SchemaError("panel", NOT_FINITE.format(row=int(bad[0]) + 2), field=column)
    codes, area_idx = np.unique(panel["area_code"].astype(str).to_numpy(), return_inverse=True)
    weeks = pd.date_range(week.min(), week.max(), freq="7D")
    week_idx = ((week - weeks[0]) // WEEK).to_numpy()
    counts = np.zeros((codes.size, weeks.size))
    ae = np.zeros_like(counts)
    counts[area_idx, week_idx] = panel["violence"].to_numpy(dtype=float)
    ae[area_idx, week_idx] = panel["ae_assault"].to_numpy(dtype=float)
    origins = pd.DatetimeIndex(sorted(set(pd.to_datetime(list(origin_weeks)).normalize())))
    origin_idx = weeks.get_indexer(origins)
    if origins.size == 0 or (origin_idx < 0).any():
        week_out = origins[origin_idx < 0][0].date() if origins.size else None
        raise SchemaError(
            "panel",
            ORIGIN_OUTSIDE.format(week=week_out, first=weeks[0].date(), last=weeks[-1].date()),
            field="week_start",
        )
    return Grid(codes, weeks, _carry_forward(counts), ae, origins, origin_idx, hz, counts)
