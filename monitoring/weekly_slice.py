"""Cut a raw layer by ISO week: the history before a week, and one folder per week.

A partner's weekly delivery holds the same files as the raw layer, with only
that week's rows. :func:`split_weeks` makes such deliveries from a full raw
layer (the synthetic city, or an archive) so the weekly cycle can be replayed.
Rows are kept byte for byte as text; only their date decides where they go:
police by ``Date``, ISTV by ``assault_datetime`` (else ``arrival_datetime``),
ambulance by ``incident_datetime``, council files by ``date``. Rows whose date
cannot be read stay with the history, where ingest quarantines them.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pandas as pd

from training.errors import SchemaError
from training.sources._dates import parse_datetimes

__all__ = ["split_weeks", "week_of", "MSG_NO_DATE_COLUMN", "MSG_TOO_FEW_WEEKS"]

MSG_NO_DATE_COLUMN = "column {column!r} is needed to place rows in weeks"
MSG_TOO_FEW_WEEKS = "asked for {n} weekly folders but the raw layer spans only {available} weeks"

# Files copied whole into the history (static reference data).
_STATIC = ("reference", "oracle", "council/licensed_premises.csv", "city.json")


def week_of(dates: pd.Series) -> pd.Series:
    """Monday of each date's ISO week (NaT where the text is not a date)."""
    day = parse_datetimes(dates).dt.normalize()
    return day - pd.to_timedelta(day.dt.weekday, unit="D")


def _istv_date(frame: pd.DataFrame) -> pd.Series:
    assault = frame["assault_datetime"].str.strip()
    readable = parse_datetimes(assault).notna()
    return assault.where(readable, frame["arrival_datetime"])


def _column(name: str) -> Callable[[pd.DataFrame], pd.Series]:
    return lambda frame: frame[name]


def _dated_files(raw_dir: Path) -> list[tuple[Path, Callable[[pd.DataFrame], pd.Series], str]]:
    files = [(p, _column("Date"), "Date") for p in sorted(raw_dir.glob("police/**/*.csv"))]
    files += [(p, _istv_date, "arrival_datetime") for p in sorted(raw_dir.glob("istv/*.csv"))]
    files += [(p, _column("incident_datetime"), "incident_datetime")
              for p in sorted(raw_dir.glob("ambulance/*.csv"))]  # fmt: skip
    for name in ("school_exclusions.csv", "evictions.csv"):
        path = raw_dir / "council" / name
        if path.is_file():
            files.append((path, _column("date"), "date"))
    return files


def _write(frame: pd.DataFrame, path: Path, *, keep_empty: bool) -> None:
    # a header-only file says "delivered, nothing this week"; police files are per month
    if frame.empty and not keep_empty:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(path, index=False)


def _last_weeks(raw_dir: Path, n_weeks: int) -> pd.DatetimeIndex:
    weeks: set[pd.Timestamp] = set()
    for path, date_of, column in _dated_files(raw_dir):
        frame = pd.read_csv(path, dtype=str, keep_default_na=False)
        if column not in frame.columns:
            raise SchemaError(path, MSG_NO_DATE_COLUMN.format(column=column), field=column)
        weeks.update(week_of(date_of(frame)).dropna().unique())
    ordered = pd.DatetimeIndex(sorted(weeks))
    if len(ordered) < n_weeks + 1:
        raise SchemaError(raw_dir, MSG_TOO_FEW_WEEKS.format(n=n_weeks, available=len(ordered)))
    return ordered[-n_weeks:]


def split_weeks(
    raw_dir: Path, out_dir: Path, *, n_weeks: int
) -> tuple[Path, list[tuple[pd.Timestamp, Path]]]:
    """Split a raw layer into its history and one folder per last week.

    Parameters
    ----------
    raw_dir : a raw layer (``police/``, ``istv/``, ``ambulance/``, ``council/``,
        ``reference/``); it is only read.
    out_dir : where ``history/`` and ``weeks/<YYYY-MM-DD>/`` are written.
    n_weeks : how many of the last ISO weeks get their own folder.

    Returns
    -------
    tuple
        The history folder (every row before the first split week, plus the
        reference and other static files) and ``[(week_start, folder), ...]``
        in week order. A week folder holds every ISTV, ambulance and council
        file (header only when empty) and the police month files with rows.

    Raises
    ------
    SchemaError
        When a dated file lacks its date column, or there are too few weeks.
    """
    raw_dir, out_dir = Path(raw_dir), Path(out_dir)
    split = _last_weeks(raw_dir, n_weeks)
    history = out_dir / "history"
    folders = {week: out_dir / "weeks" / f"{week:%Y-%m-%d}" for week in split}
    for path, date_of, column in _dated_files(raw_dir):
        frame = pd.read_csv(path, dtype=str, keep_default_na=False)
        if column not in frame.columns:
            raise SchemaError(path, MSG_NO_DATE_COLUMN.format(column=column), field=column)
        week = week_of(date_of(frame))
        relative = path.relative_to(raw_dir)
        keep = relative.parts[0] != "police"
        _write(frame.loc[~week.isin(split)], history / relative, keep_empty=keep)
        for start, folder in folders.items():
            _write(frame.loc[week == start], folder / relative, keep_empty=keep)
    for name in _STATIC:
        source = raw_dir / name
        if source.is_dir():
            shutil.copytree(source, history / name, dirs_exist_ok=True)
        elif source.is_file():
            (history / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, history / name)
    for folder in folders.values():
        folder.mkdir(parents=True, exist_ok=True)
    return history, list(folders.items())
