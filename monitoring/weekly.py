"""A new week's files: link them and append their week to the panel.

The panel is extended, never rebuilt: earlier rows stay exactly as they were,
so forecasts already published can be scored against the same numbers. A week
is appended once, and only the week right after the panel's last week (a
missing week must be delivered first). Rows dated outside the new week (late
reports) and month-grain rows (no day, so no week) are counted and left out:
they reach the panel when the raw layer is ingested again in full.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from training.config import LinkParams, SourceParams
from training.coverage import (
    MONTH_ONLY,
    SOURCE_PANEL_COLUMNS,
    TARGET_SOURCES,
    WEEKLY_MIN_MEDIAN,
)
from training.errors import LinkageError, SchemaError
from training.link.linker import RawLayout, link_sources
from training.panel import COUNT_COLUMNS, PANEL_COLUMNS, build_panel

__all__ = [
    "WeekIngest",
    "link_week",
    "append_week",
    "week_gaps",
    "next_week",
    "MSG_WEEK_IN_PANEL",
    "MSG_WEEK_GAP",
    "MSG_NO_WEEK",
    "MSG_NOT_A_FOLDER",
]

MSG_WEEK_IN_PANEL = (
    "week {week} is already in the panel (its last week is {last}): a week is appended once"
)
MSG_WEEK_GAP = (
    "week {week} does not follow the panel's last week {last}: expected week {expected}; "
    "deliver the missing week(s) first"
)
MSG_NO_WEEK = "no dated records in {folder}: cannot tell which week it holds (give --week)"
MSG_NOT_A_FOLDER = "not a folder of weekly raw files"


@dataclass(frozen=True)
class WeekIngest:
    """One week's linked records and what was left out.

    Attributes
    ----------
    week : the ISO week (Monday) the records belong to.
    records : linked day-grain records of that week (``training.link.RECORD_COLUMNS``).
    quarantine : records that could not be linked, with reasons.
    report : the linkage report of the week's files (per source).
    outside_week : records dated in another week (late or early), left out.
    month_grain : records with a month but no day, left out.
    """

    week: pd.Timestamp
    records: pd.DataFrame
    quarantine: pd.DataFrame
    report: dict[str, dict]
    outside_week: int
    month_grain: int


def next_week(panel: pd.DataFrame) -> pd.Timestamp:
    """Return the week after the panel's last week."""
    return pd.Timestamp(panel["week_start"].max()) + pd.Timedelta(days=7)


def link_week(
    week_dir: Path,
    sources: SourceParams,
    link: LinkParams,
    *,
    reference_dir: Path | None,
    week: pd.Timestamp | None = None,
) -> WeekIngest:
    """Link a weekly delivery against the existing area reference.

    Parameters
    ----------
    week_dir : a folder with any of ``police/``, ``istv/``, ``ambulance/``,
        ``council/`` in the raw formats (only the new week's rows).
    sources, link : the ingest parameters (as for ``harmcast ingest``).
    reference_dir : the raw layer's ``reference/`` (areas, boundaries,
        gazetteer); the delivery's own ``reference/`` is never used.
    week : the week the delivery holds; default the latest week among its
        day-grain records.

    Raises
    ------
    SchemaError
        When ``week_dir`` is not a folder, a file breaks its schema, or no week
        can be told.
    LinkageError
        When the folder holds no source files.
    """
    week_dir = Path(week_dir)
    if not week_dir.is_dir():
        raise SchemaError(week_dir, MSG_NOT_A_FOLDER)
    found = RawLayout.from_raw_dir(week_dir)
    ref = reference_dir if reference_dir is not None and reference_dir.is_dir() else None
    layout = RawLayout(found.police, found.istv, found.ambulance, found.council, ref)
    result = link_sources(week_dir, sources, link, layout=layout)
    records = result.records
    day = records["grain"] == "day"
    if week is None:
        if not day.any():
            raise SchemaError(week_dir, MSG_NO_WEEK.format(folder=week_dir))
        week = pd.Timestamp(records.loc[day, "week_start"].max())
    week = pd.Timestamp(week)
    in_week = day & (records["week_start"] == week)
    return WeekIngest(
        week=week,
        records=records.loc[in_week].reset_index(drop=True),
        quarantine=result.quarantine,
        report=result.report,
        outside_week=int((day & ~in_week).sum()),
        month_grain=int((~day).sum()),
    )


def _check_week(panel: pd.DataFrame, week: pd.Timestamp) -> None:
    last = pd.Timestamp(panel["week_start"].max())
    expected = next_week(panel)
    fmt = {"week": f"{week:%Y-%m-%d}", "last": f"{last:%Y-%m-%d}",
           "expected": f"{expected:%Y-%m-%d}"}  # fmt: skip
    if week <= last:
        raise LinkageError(MSG_WEEK_IN_PANEL.format(**fmt))
    if week != expected:
        raise LinkageError(MSG_WEEK_GAP.format(**fmt))


def week_gaps(
    panel: pd.DataFrame, records: pd.DataFrame, delivered: dict[str, int] | None
) -> list[str]:
    """Return the sources the panel has that delivered nothing this week (gaps, not zeros).

    A source the panel holds is a gap when it was not delivered at all (no
    file: ``delivered`` names the sources read and their records in), or when
    it is busy (median weekly total of at least
    ``training.coverage.WEEKLY_MIN_MEDIAN``, and not a ``MONTH_ONLY`` source)
    and none of its records reached the week. A quiet source with no records
    in a delivered file has a zero week.
    """
    gaps = []
    for source, columns in SOURCE_PANEL_COLUMNS.items():
        values = panel[list(columns)]
        if not (values.fillna(0) > 0).any().any():
            continue  # never had a record: not a source of this partnership
        weekly = values.sum(axis=1, min_count=1).groupby(panel["week_start"]).sum(min_count=1)
        busy = source not in MONTH_ONLY and float(weekly.dropna().median()) >= WEEKLY_MIN_MEDIAN
        not_delivered = delivered is not None and source not in delivered
        empty = "source" not in records or not (records["source"] == source).any()
        if not_delivered or (busy and empty):
            gaps.append(source)
    return gaps


def append_week(
    panel: pd.DataFrame,
    records: pd.DataFrame,
    areas: pd.DataFrame,
    *,
    week: pd.Timestamp,
    delivered: dict[str, int] | None = None,
) -> pd.DataFrame:
    """Return the panel with one more week: every area, zero-filled where delivered.

    Parameters
    ----------
    panel : the current panel (``training.panel.PANEL_COLUMNS``).
    records : linked records, all of them day-grain in ``week``.
    areas : the panel's areas; every one gets a row.
    week : the new week; it must be the week right after the panel's last.
    delivered : records read per source from the delivery (the linkage
        report's ``records_in``); a source of the panel that delivered
        nothing is missing (NaN) that week, not zero (:func:`week_gaps`).

    Returns
    -------
    DataFrame
        A new panel, sorted by area then week; rows of earlier weeks are
        unchanged.

    Raises
    ------
    LinkageError
        When the week is already in the panel, leaves a gap, or a record's
        area is not in ``areas``.
    """
    week = pd.Timestamp(week)
    _check_week(panel, week)
    outside = records["week_start"] != week
    if outside.any():
        example = records.loc[outside, "record_id"].iat[0]
        raise LinkageError(f"record {example!r} is not in week {week:%Y-%m-%d}")
    codes = pd.Index(sorted(areas["area_code"].astype(str).unique()), name="area_code")
    if records.empty:
        rows = pd.DataFrame({"area_code": codes, "week_start": week})
        rows[[*COUNT_COLUMNS, "violence"]] = 0.0
    else:
        rows = build_panel(records, areas)
        rows = rows.loc[rows["week_start"] == week]
    rows = rows.astype({"week_start": "datetime64[ns]"})
    for source in week_gaps(panel, records, delivered):
        rows[list(SOURCE_PANEL_COLUMNS[source])] = np.nan
        if source in TARGET_SOURCES:
            rows["violence"] = np.nan
    grown = pd.concat([panel[PANEL_COLUMNS], rows[PANEL_COLUMNS]], ignore_index=True)
    return grown.sort_values(["area_code", "week_start"], kind="stable").reset_index(drop=True)
