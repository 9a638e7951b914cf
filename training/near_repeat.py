"""Near-repeat features at day resolution, from the linked records before weekly counting.

Violence clusters in days: an incident raises the risk nearby for a week or
two. At the end of each origin week (its Sunday), per area:

- ``nr_violent_<d>d``: violent records (police violence, A&E assaults,
  ambulance assault call-outs) in the last ``d`` days (``near_repeat_days``:
  7 and 14), the Sunday included;
- ``nr_days_since``: days since the last violent record (0: on the Sunday),
  capped at ``near_repeat_cap_days`` (365);
- ``nb_nr_violent_<d>d``: the mean of the neighbours' counts;
  ``nb_nr_days_since``: the least of the neighbours' days since.

Only day-grain records count: month-grain records (published police.uk
files) have no day and are left out. A day is covered when every source of
day-grain violent records covers its week (``training.coverage``). A count
over a window holding an uncovered day is missing, not zero; so are days
since when the search back meets an uncovered day (or the start of the
records) before an incident, unless the cap is reached first. No feature of
an origin uses a day after its Sunday.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import sparse

from training.config import FeatureParams
from training.coverage import covered_weeks, source_coverage
from training.errors import SchemaError

__all__ = [
    "DailyEvents",
    "daily_events",
    "read_daily_events",
    "read_linked_records",
    "near_repeat_block",
    "neighbour_min",
    "NEAR_REPEAT_WORDS",
    "MSG_MISSING_RECORD_COLUMN",
]

_READ_COLUMNS = ["source", "area_code", "date", "grain", "is_violence"]
MSG_MISSING_RECORD_COLUMN = "missing column of the linked records; expected {expected}"
NEAR_REPEAT_WORDS = {
    "nr_violent": "violent records (police, A&E, ambulance) in the last {days} days "
    "to the origin week's Sunday",
    "nr_days_since": "days since the last violent record (police, A&E, ambulance), capped",
}


@dataclass(frozen=True)
class DailyEvents:
    """Violent day-grain records per area and day, and the coverage of their sources.

    Attributes
    ----------
    counts : ``area_code, date, n`` (days with at least one record).
    coverage : source -> its coverage entry (``training.coverage``), for every
        source of day-grain violent records; a week is covered when all cover it.
    """

    counts: pd.DataFrame
    coverage: dict[str, dict]

    def covered(self, weeks: pd.DatetimeIndex) -> np.ndarray:
        """Return which of ``weeks`` (Mondays) every source covers (none when no source)."""
        ok = np.full(len(weeks), bool(self.coverage))
        for entry in self.coverage.values():
            ok &= np.asarray(covered_weeks(entry, weeks))
        return ok


def daily_events(records: pd.DataFrame, coverage: dict[str, dict] | None = None) -> DailyEvents:
    """Count the day-grain violent records per area and day.

    Parameters
    ----------
    records : linked records (``source, area_code, date, grain, is_violence``).
    coverage : the sources' coverage (``coverage.json`` of the panel layer);
        default: from ``records``.
    """
    violent = records["is_violence"].astype(bool) & (records["grain"] == "day")
    mine = records.loc[violent, ["source", "area_code", "date"]]
    counts = mine.groupby(["area_code", "date"]).size().rename("n").reset_index()
    counts["area_code"] = counts["area_code"].astype(str)
    if mine.empty:
        return DailyEvents(counts, {})
    coverage = source_coverage(records) if coverage is None else coverage
    none = {"unit": "week", "covered": []}  # a source without coverage covers no week
    sources = sorted(mine["source"].astype(str).unique())
    return DailyEvents(counts, {s: coverage.get(s, none) for s in sources})


def read_linked_records(linked_dir: Path) -> pd.DataFrame | None:
    """Read the columns near-repeat needs from ``records.parquet``; None when it is not there."""
    path = Path(linked_dir) / "records.parquet"
    if not path.is_file():
        return None
    import pyarrow.parquet as pq

    names = set(pq.read_schema(path).names)
    for column in _READ_COLUMNS:
        if column not in names:
            raise SchemaError(
                path, MSG_MISSING_RECORD_COLUMN.format(expected=_READ_COLUMNS), field=column
            )
    return pd.read_parquet(path, columns=_READ_COLUMNS)


def read_daily_events(linked_dir: Path, coverage_file: Path | None = None) -> DailyEvents | None:
    """Read ``records.parquet`` of the linked layer; None when it is not there."""
    records = read_linked_records(linked_dir)
    if records is None:
        return None
    coverage = None
    if coverage_file is not None and Path(coverage_file).is_file():
        coverage = json.loads(Path(coverage_file).read_text())
    return daily_events(records, coverage)


def near_repeat_block(
    events: DailyEvents,
    weeks: pd.DatetimeIndex,
    codes: pd.Index,
    origins: np.ndarray,
    params: FeatureParams,
) -> dict[str, np.ndarray]:
    """Return counts in the last days and days since, per origin (rows) and area (columns)."""
    start = weeks[0]
    n_days = len(weeks) * 7
    day = ((events.counts["date"] - start) // pd.Timedelta(days=1)).to_numpy()
    area = pd.Index(codes).get_indexer(events.counts["area_code"])
    keep = (day >= 0) & (day < n_days) & (area >= 0)
    daily = np.zeros((n_days, len(codes)))
    np.add.at(daily, (day[keep], area[keep]), events.counts["n"].to_numpy(np.float64)[keep])
    covered = np.repeat(events.covered(pd.DatetimeIndex(weeks)), 7)
    sunday = origins * 7 + 6
    out: dict[str, np.ndarray] = {}
    csum = np.vstack([np.zeros((1, len(codes))), np.cumsum(daily, axis=0)])
    ccov = np.concatenate([[0], np.cumsum(covered)])
    for d in params.near_repeat_days:
        hi, lo = sunday + 1, sunday + 1 - d
        ok = (lo >= 0) & (ccov[hi] - ccov[np.maximum(lo, 0)] == d)
        values = csum[hi] - csum[np.maximum(lo, 0)]
        out[f"nr_violent_{d}d"] = np.where(ok[:, None], values, np.nan)
    out["nr_days_since"] = _days_since(daily, covered, sunday, params.near_repeat_cap_days)
    return out


def _days_since(daily: np.ndarray, covered: np.ndarray, sunday: np.ndarray, cap: int) -> np.ndarray:
    index = np.arange(len(daily))
    last_event = np.maximum.accumulate(np.where(daily > 0, index[:, None], -1), axis=0)[sunday]
    # -1 is the start of the records: nothing is known before it
    last_gap = np.maximum.accumulate(np.where(covered, -1, index))[sunday]
    since = (sunday[:, None] - last_event).astype(np.float64)
    known = last_event > last_gap[:, None]
    long_quiet = (sunday - last_gap) > cap
    since = np.where(known, since, np.where(long_quiet[:, None], float(cap), np.nan))
    return np.minimum(since, cap)


def neighbour_min(values: np.ndarray, spread: sparse.csr_matrix) -> np.ndarray:
    """Least value over each area's neighbours, of those not missing (NaN when none)."""
    pattern = sparse.csr_matrix(spread)
    pattern.eliminate_zeros()
    out = np.full(values.shape, np.nan)
    for area in range(pattern.shape[0]):
        nbrs = pattern.indices[pattern.indptr[area] : pattern.indptr[area + 1]]
        if len(nbrs):
            block = values[:, nbrs]
            seen = np.isfinite(block).any(axis=1)
            out[seen, area] = np.nanmin(np.where(np.isfinite(block), block, np.inf)[seen], axis=1)
    return out
