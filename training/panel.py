"""The area x ISO-week panel: every area, every week, explicit zeros where covered.

An area-week of a source outside that source's coverage (``training.coverage``:
before its first record, after its last, or in a gap inside its span) is
missing (NaN) in the source's columns, never zero; so is the target when
police or A&E (those the partnership provides) are not covered that week.

``violence`` (the target) is police violence plus A&E assault attendances,
de-duplicated by area and day: on each area-day it is
``police + ae - min(police, ae)`` (that is, the larger of the two), because
one assault often appears in both. Month-grain records (published police.uk
files) are spread over the ISO weeks of their month by share of days; they
cannot be matched by day, so they add to ``violence`` without de-duplication.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from training.coverage import SOURCE_PANEL_COLUMNS, TARGET_SOURCES, covered_weeks, source_coverage
from training.disclosure import suppress_small
from training.errors import LinkageError
from training.sources.istv import WEAPON_METHODS

__all__ = [
    "COUNT_COLUMNS",
    "PANEL_COLUMNS",
    "COVERAGE_FILE",
    "MSG_UNKNOWN_AREAS",
    "build_panel",
    "mask_uncovered",
    "write_panel",
    "read_panel",
    "read_panel_layer",
    "suppress_small",
    "week_range",
]

COUNT_COLUMNS = ["police_violence", "police_other", "ae_assault", "ae_weapon",
                 "ambulance_assault", "exclusions", "evictions"]  # fmt: skip
PANEL_COLUMNS = ["area_code", "week_start", *COUNT_COLUMNS, "violence"]
COVERAGE_FILE = "coverage.json"
MSG_UNKNOWN_AREAS = "{n} records have area codes missing from the areas frame, e.g. {example!r}"


def _events(records: pd.DataFrame) -> pd.DataFrame:
    """One row per (record, panel column) it counts in."""
    src, viol = records["source"], records["is_violence"].astype(bool)
    rules = {
        "police_violence": (src == "police") & viol,
        "police_other": (src == "police") & ~viol,
        "ae_assault": src == "istv",
        "ae_weapon": (src == "istv") & records["category"].isin(WEAPON_METHODS),
        "ambulance_assault": (src == "ambulance") & viol,
        "exclusions": src == "exclusions",
        "evictions": src == "evictions",
    }
    keep = ["area_code", "date", "grain"]
    return pd.concat(
        [records.loc[mask, keep].assign(column=name) for name, mask in rules.items()],
        ignore_index=True,
    )


def _wide(events: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    counts = events.groupby([*keys, "column"], observed=True).size().unstack("column")
    return counts.reindex(columns=COUNT_COLUMNS, fill_value=0).fillna(0).astype("float64")


def _day_part(events: pd.DataFrame) -> pd.DataFrame:
    per_day = _wide(events, ["area_code", "date"]).reset_index()
    police, ae = per_day["police_violence"], per_day["ae_assault"]
    per_day["violence"] = police + ae - np.minimum(police, ae)
    per_day["week_start"] = per_day["date"] - pd.to_timedelta(per_day["date"].dt.weekday, "D")
    return per_day.drop(columns="date")


def _month_shares(months: pd.Series) -> pd.DataFrame:
    rows = []
    for month in pd.DatetimeIndex(months.unique()):
        days = pd.date_range(month, month + pd.offsets.MonthEnd(0), freq="D")
        weeks = (days - pd.to_timedelta(days.weekday, "D")).value_counts() / len(days)
        rows.append(pd.DataFrame({"date": month, "week_start": weeks.index, "share": weeks.values}))
    return pd.concat(rows, ignore_index=True)


def _month_part(events: pd.DataFrame) -> pd.DataFrame:
    per_month = _wide(events, ["area_code", "date"]).reset_index()
    per_month["violence"] = per_month["police_violence"] + per_month["ae_assault"]
    spread = per_month.merge(_month_shares(per_month["date"]), on="date")
    value_cols = [*COUNT_COLUMNS, "violence"]
    spread[value_cols] = spread[value_cols].mul(spread["share"], axis=0)
    return spread.drop(columns=["date", "share"])


def build_panel(
    records: pd.DataFrame,
    areas: pd.DataFrame,
    *,
    expected_sources: tuple[str, ...] = (),
    coverage: dict[str, dict] | None = None,
) -> pd.DataFrame:
    """Count linked records per area and ISO week.

    Parameters
    ----------
    records : the linked records (``training.link.RECORD_COLUMNS``).
    areas : the area reference; every area gets a row for every week.
    expected_sources : sources the partnership provides even if ``records``
        holds none of theirs (the weekly cycle: a source that delivered
        nothing is a gap, not zeros).
    coverage : the sources' coverage (``training.coverage.source_coverage``)
        when ``records`` are only part of the city's (the Dask path's area
        blocks); default: from ``records``.

    Returns
    -------
    DataFrame
        ``PANEL_COLUMNS``: ``area_code`` (str), ``week_start`` (Monday,
        datetime64[ns]) and float64 counts, from the first to the last
        observed week, sorted by area then week; NaN outside a source's
        coverage (see :func:`mask_uncovered`).

    Raises
    ------
    LinkageError
        When a record's area is not in ``areas`` or there are no records.
    """
    codes = pd.Index(sorted(areas["area_code"].astype(str).unique()), name="area_code")
    unknown = ~records["area_code"].isin(codes)
    if unknown.any():
        example = records.loc[unknown, "area_code"].iat[0]
        raise LinkageError(MSG_UNKNOWN_AREAS.format(n=int(unknown.sum()), example=example))
    if records.empty:
        raise LinkageError("no linked records: the panel would have no weeks")
    events = _events(records)
    day, month = events["grain"] == "day", events["grain"] == "month"
    parts = [_day_part(events.loc[day]) if day.any() else None,
             _month_part(events.loc[month]) if month.any() else None]  # fmt: skip
    parts = [p for p in parts if p is not None]
    empty = pd.DataFrame(columns=PANEL_COLUMNS).astype({c: "float64" for c in COUNT_COLUMNS})
    long = pd.concat(parts, ignore_index=True) if parts else empty
    weekly = long.groupby(["area_code", "week_start"])[[*COUNT_COLUMNS, "violence"]].sum()
    weeks = week_range(records)
    grid = pd.MultiIndex.from_product([codes, weeks], names=["area_code", "week_start"])
    panel = weekly.reindex(grid, fill_value=0.0).astype("float64").reset_index()
    panel = panel[PANEL_COLUMNS].astype({"area_code": str})
    panel.columns.name = None
    coverage = source_coverage(records) if coverage is None else coverage
    return mask_uncovered(panel, coverage, expected_sources=expected_sources)


def mask_uncovered(
    panel: pd.DataFrame, coverage: dict[str, dict], *, expected_sources: tuple[str, ...] = ()
) -> pd.DataFrame:
    """Return ``panel`` with NaN in each source's columns outside its coverage.

    Sources neither in ``coverage`` nor in ``expected_sources`` are not
    provided at all: their columns stay zero. The target is NaN where any of
    ``training.coverage.TARGET_SOURCES`` that is provided is not covered.
    """
    weeks = pd.DatetimeIndex(panel["week_start"])
    unique = weeks.unique()
    out = panel.copy()
    target_ok = np.ones(len(out), dtype=bool)
    provided = set(coverage) | set(expected_sources)
    for source, columns in SOURCE_PANEL_COLUMNS.items():
        if source not in provided:
            continue
        if source in coverage:
            ok_weeks = unique[covered_weeks(coverage[source], unique)]
            ok = np.asarray(weeks.isin(ok_weeks))
        else:
            ok = np.zeros(len(out), dtype=bool)
        out.loc[~ok, list(columns)] = np.nan
        if source in TARGET_SOURCES:
            target_ok &= ok
    out.loc[~target_ok, "violence"] = np.nan
    return out


def week_range(records: pd.DataFrame) -> pd.DatetimeIndex:
    """Every week (Monday) from the first record's to the last's (month grain: its last week)."""
    dates = records["date"]
    month = records["grain"] == "month"
    last = dates.where(~month, dates + pd.offsets.MonthEnd(0))
    first_week = (dates - pd.to_timedelta(dates.dt.weekday, "D")).min()
    last_week = (last - pd.to_timedelta(last.dt.weekday, "D")).max()
    return pd.date_range(first_week, last_week, freq="7D", name="week_start").astype(
        "datetime64[ns]"
    )


def write_panel(
    panel: pd.DataFrame,
    out_dir: Path,
    *,
    areas: pd.DataFrame | None = None,
    adjacency: pd.DataFrame | None = None,
    coverage: dict[str, dict] | None = None,
) -> list[Path]:
    """Write ``panel.parquet`` (and ``areas``, ``adjacency``, ``coverage.json`` when given)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = [out_dir / "panel.parquet"]
    panel.to_parquet(written[0], index=False)
    if coverage is not None:
        written.append(out_dir / COVERAGE_FILE)
        written[-1].write_text(json.dumps(coverage, indent=2) + "\n")
    for name, frame in (("areas", areas), ("adjacency", adjacency)):
        if frame is not None:
            written.append(out_dir / f"{name}.parquet")
            frame.to_parquet(written[-1], index=False)
    return written


def read_panel(directory: Path) -> pd.DataFrame:
    """Read ``panel.parquet`` from the panel layer."""
    panel = pd.read_parquet(Path(directory) / "panel.parquet")
    return panel.astype({"area_code": str, "week_start": "datetime64[ns]"})


def read_panel_layer(directory: Path) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Read the panel layer: ``(panel, areas, adjacency)``."""
    directory = Path(directory)
    areas = pd.read_parquet(directory / "areas.parquet")
    adjacency = pd.read_parquet(directory / "adjacency.parquet")
    return read_panel(directory), areas, adjacency
