"""Which weeks each source covers: coverage is data, a gap is not a zero.

A source covers a period when it delivered at least one linked record in it.
Busy day-grain sources (at least ``WEEKLY_MIN_MEDIAN`` records in a median
week, so that a week without any is implausible by chance: below 1 in 20,000
for Poisson counts) are judged week by week; month-grain sources (published
police.uk files) and sparse sources month by month. Weeks before a source's
first record or after its last are outside its coverage too. A source's
``QUIET_MONTHS`` (school exclusions in August) are covered, with zeros, and
``MONTH_ONLY`` sources (school exclusions, which stop every school holiday)
are judged by month however busy.

The panel marks an area-week of a source outside its coverage as missing
(NaN) in that source's columns, and in the target when the target's sources
(police, A&E) are not both covered. The linkage report lists, per source, its
span and the gaps inside it.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = [
    "WEEKLY_MIN_MEDIAN",
    "QUIET_MONTHS",
    "MONTH_ONLY",
    "SOURCE_PANEL_COLUMNS",
    "TARGET_SOURCES",
    "source_coverage",
    "covered_weeks",
    "coverage_gaps",
    "describe_gaps",
]

WEEKLY_MIN_MEDIAN = 10
#: Months in which a source is expected to have no records: not gaps
#: (no school exclusions in the August holiday).
QUIET_MONTHS = {"exclusions": (8,)}
#: Sources judged month by month however busy: school exclusions stop for
#: every school holiday, so their empty weeks are zeros, not gaps.
MONTH_ONLY = frozenset({"exclusions"})
#: The panel columns each source's records count in.
SOURCE_PANEL_COLUMNS = {
    "police": ("police_violence", "police_other"),
    "istv": ("ae_assault", "ae_weapon"),
    "ambulance": ("ambulance_assault",),
    "exclusions": ("exclusions",),
    "evictions": ("evictions",),
}
#: The sources the target (``violence``) is counted from.
TARGET_SOURCES = ("police", "istv")


def _one_source(mine: pd.DataFrame, quiet: tuple[int, ...] = (), *, monthly: bool = False) -> dict:
    month_grain = monthly or (mine["grain"] == "month").any()
    # a few hundred days, not every record; ``n`` when the rows are already counts
    per_day = mine.groupby("date")["n"].sum() if "n" in mine else mine["date"].value_counts()
    days = pd.DatetimeIndex(per_day.index)
    months = pd.PeriodIndex(sorted(days.to_period("M").unique()), freq="M")
    span = pd.period_range(months.min(), months.max(), freq="M")
    entry: dict = {"first": str(span[0]), "last": str(span[-1])}
    weekly = per_day.groupby(days - pd.to_timedelta(days.weekday, unit="D")).sum()
    if not month_grain:
        all_weeks = pd.date_range(weekly.index.min(), weekly.index.max(), freq="7D")
        median = float(weekly.reindex(all_weeks, fill_value=0).median())
    else:
        median = 0.0
    if not month_grain and median >= WEEKLY_MIN_MEDIAN:
        weeks = pd.date_range(weekly.index.min(), weekly.index.max(), freq="7D")
        seen = set(weekly.index)
        entry.update(unit="week", first=str(weeks[0].date()), last=str(weeks[-1].date()))
        entry["gaps"] = _runs([w for w in weeks if w not in seen], unit="week")
        entry["covered"] = [str(w.date()) for w in weeks if w in seen]
    else:
        seen_m = set(months)
        entry["unit"] = "month"
        entry["gaps"] = _runs(
            [m for m in span if m not in seen_m and m.month not in quiet], unit="month"
        )
        entry["covered"] = [str(m) for m in span if m in seen_m or m.month in quiet]
    entry["periods"] = len(entry["covered"]) + sum(g["length"] for g in entry["gaps"])
    return entry


def _runs(missing: list, *, unit: str) -> list[dict]:
    """Group consecutive missing weeks or months into ``{from, to, length}`` runs."""
    runs: list[dict] = []
    for item in missing:
        label = str(item.date()) if unit == "week" else str(item)
        position = item.value // (7 * 86_400 * 10**9) if unit == "week" else item.ordinal
        if runs and position - runs[-1]["_last"] == 1:
            runs[-1].update(to=label, length=runs[-1]["length"] + 1, _last=position)
        else:
            runs.append({"from": label, "to": label, "length": 1, "_last": position})
    return [{k: v for k, v in run.items() if k != "_last"} for run in runs]


def source_coverage(records: pd.DataFrame) -> dict[str, dict]:
    """Return each source's coverage from its linked records.

    Parameters
    ----------
    records : linked records with ``source``, ``date`` and ``grain``; or one
        row per ``(source, date, grain)`` with its count in ``n`` (the Dask path).

    Returns
    -------
    dict
        ``{source: {unit ("week"|"month"), first, last, periods, covered:
        [labels], gaps: [{from, to, length}]}}``; week labels are Mondays
        (``YYYY-MM-DD``), month labels ``YYYY-MM``.
    """
    out: dict[str, dict] = {}
    for source, mine in records.groupby("source", sort=True):
        if len(mine):
            name = str(source)
            out[name] = _one_source(mine, QUIET_MONTHS.get(name, ()), monthly=name in MONTH_ONLY)
    return out


def covered_weeks(entry: dict, weeks: pd.DatetimeIndex) -> np.ndarray:
    """Return which of ``weeks`` (Mondays) one source's coverage ``entry`` covers.

    A week is covered by a month-unit source when any of its days falls in a
    covered month (a month-grain count is spread over every week it touches).
    """
    weeks = pd.DatetimeIndex(weeks)
    if entry["unit"] == "week":
        return weeks.isin(pd.DatetimeIndex(entry["covered"]))
    covered = pd.PeriodIndex(entry["covered"], freq="M")
    first_day = weeks.to_period("M").isin(covered)
    last_day = (weeks + pd.Timedelta(days=6)).to_period("M").isin(covered)
    return np.asarray(first_day | last_day)


def coverage_gaps(coverage: dict[str, dict]) -> dict[str, list[dict]]:
    """Return only the sources with gaps inside their span, and their gaps."""
    return {source: entry["gaps"] for source, entry in coverage.items() if entry["gaps"]}


def describe_gaps(coverage: dict[str, dict]) -> list[str]:
    """Return one sentence per source with gaps, naming each gap's extent.

    Examples
    --------
    >>> describe_gaps({"police": {"unit": "month", "first": "2016-07", "last": "2017-07",
    ...     "gaps": [{"from": "2016-08", "to": "2017-06", "length": 11}]}})
    ['police: no records 2016-08 to 2017-06 (11 months) inside its span 2016-07 to 2017-07']
    """
    lines = []
    for source, entry in coverage.items():
        gaps = entry.get("gaps") or []
        if not gaps:
            continue
        unit = entry["unit"]
        parts = [
            f"{g['from']} to {g['to']} ({g['length']} {unit}{'s' if g['length'] > 1 else ''})"
            if g["from"] != g["to"]
            else f"{g['from']} (1 {unit})"
            for g in gaps
        ]
        lines.append(
            f"{source}: no records {', '.join(parts)} inside its span "
            f"{entry['first']} to {entry['last']}"
        )
    return lines
