"""Patrol operations of the synthetic city: the feedback loop, planted with its truth.

An operation patrols one area for ``patrol_weeks`` weeks, chosen among the
city's hotspots at its start (the top ``HOTSPOT_SHARE`` of areas by incidents
in the ``HOTSPOT_WEEKS`` weeks before), as a force would pick where to patrol.
While it lasts, police record ``1 + patrol_recording_uplift`` times as many of
the area's incidents (capped at 0.95); A&E sees the same assaults. The risk
itself does not change, so any rise in the police record is recording, not
violence. The truth (one row per patrolled area-week) is written beside the
oracle, ``oracle/patrols.parquet``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["HOTSPOT_SHARE", "HOTSPOT_WEEKS", "FIRST_WEEK", "plan_patrols", "patrol_frame"]

HOTSPOT_SHARE = 0.10
HOTSPOT_WEEKS = 4
#: No operation starts before this week, so every one has a history before it.
FIRST_WEEK = 30


def plan_patrols(
    incidents: np.ndarray, *, operations: int, weeks: int, rng: np.random.Generator
) -> np.ndarray:
    """Return which area-weeks (weeks x areas, bool) are under a patrol operation.

    Parameters
    ----------
    incidents : latent incidents, weeks x areas.
    operations : how many operations start over the city's weeks.
    weeks : how long each lasts.
    rng : the random stream.
    """
    n_weeks, n_areas = incidents.shape
    patrolled = np.zeros((n_weeks, n_areas), dtype=bool)
    last_start = n_weeks - max(weeks // 2, 1)
    if operations <= 0 or last_start <= FIRST_WEEK:
        return patrolled
    starts = np.sort(rng.integers(FIRST_WEEK, last_start, size=operations))
    k = max(int(round(HOTSPOT_SHARE * n_areas)), 1)
    for start in starts:
        recent = incidents[start - HOTSPOT_WEEKS : start].sum(axis=0).astype(float)
        free = ~patrolled[max(start - weeks, 0) : start + weeks].any(axis=0)
        candidates = [a for a in np.argsort(-recent, kind="stable")[:k] if free[a]]
        if not candidates:
            continue
        area = candidates[int(rng.integers(len(candidates)))]
        patrolled[start : start + weeks, area] = True
    return patrolled


def patrol_frame(
    patrolled: np.ndarray, codes: np.ndarray, weeks: pd.DatetimeIndex, uplift: float
) -> pd.DataFrame:
    """Return the truth: ``area_code``, ``week_start``, ``recording_uplift`` per area-week."""
    t, a = np.nonzero(patrolled)
    return pd.DataFrame(
        {
            "area_code": np.asarray(codes)[a].astype(str),
            "week_start": weeks.to_numpy().astype("datetime64[ns]")[t],
            "recording_uplift": float(uplift),
        }
    )
