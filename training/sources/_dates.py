"""Dates and times as partners write them: ISO 8601 and the UK day-first forms.

Each value is read by its own shape, never by guessing across a column:

- ISO 8601: ``YYYY-MM-DD``, optionally followed by ``T`` or a space and
  ``HH:MM`` or ``HH:MM:SS`` (fractions of a second are dropped);
- day-first, as most NHS and council extracts in England write them:
  ``DD/MM/YYYY`` and ``DD-MM-YYYY``, optionally followed by a space and
  ``HH:MM`` or ``HH:MM:SS``.

A value that starts with a four-digit year is always ISO, so an ISO date is
never read day-first (``pandas.to_datetime(format="mixed", dayfirst=True)``
reads ``2023-01-02`` as 1 February; this module never calls it). A source
whose files are month-first (``MM/DD/YYYY``) says so in ``params.yaml``
(``sources.month_first``); its slashed and dashed values are then read
month-first, and its ISO values stay ISO. Anything else, or an impossible
date (31/02/2023, 13 as a month), is unreadable: ``NaT``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = [
    "DATE_FORMS", "RESCUE_DAY_FIRST", "read_datetimes", "parse_datetimes", "split_dates",
    "check_date", "date_forms", "day_first_rescue",
]  # fmt: skip

#: Every accepted form, as documented in ``docs/data-contract.md``.
DATE_FORMS = (
    "YYYY-MM-DD",
    "YYYY-MM-DD HH:MM",
    "YYYY-MM-DD HH:MM:SS",
    "YYYY-MM-DDTHH:MM[:SS]",
    "DD/MM/YYYY",
    "DD/MM/YYYY HH:MM",
    "DD/MM/YYYY HH:MM:SS",
    "DD-MM-YYYY",
    "DD-MM-YYYY HH:MM[:SS]",
)

_TIME = r"(?:[T ](?P<hour>\d{1,2}):(?P<minute>\d{2})(?::(?P<second>\d{2})(?:\.\d+)?)?)?"
_ISO = r"(?P<year>\d{4})-(?P<a>\d{1,2})-(?P<b>\d{1,2})" + _TIME
_UK = r"(?P<a>\d{1,2})(?P<sep>[/-])(?P<b>\d{1,2})(?P=sep)(?P<year>\d{4})" + _TIME.replace(
    "[T ]", " "
)
#: The linkage report's name for records readable only as day-first dates.
RESCUE_DAY_FIRST = "day_first_date"
# The fast path: the exact form of the synthetic city and most ISO exports.
_FAST = ("%Y-%m-%d %H:%M", "%Y-%m-%d")


def _from_parts(parts: pd.DataFrame, *, day: str, month: str) -> pd.Series:
    numbers = {
        "year": parts["year"],
        "month": parts[month],
        "day": parts[day],
        "hour": parts["hour"].fillna("0"),
        "minute": parts["minute"].fillna("0"),
        "second": parts["second"].fillna("0"),
    }
    frame = pd.DataFrame({k: pd.to_numeric(v, errors="coerce") for k, v in numbers.items()})
    bad_time = (frame["hour"] > 23) | (frame["minute"] > 59) | (frame["second"] > 59)
    parsed = pd.to_datetime(frame, errors="coerce")
    return parsed.mask(bad_time)


def read_datetimes(text: pd.Series, *, month_first: bool = False) -> tuple[pd.Series, pd.Series]:
    """Parse each value by its own form: ``(parsed, day_first)``.

    ``parsed`` is ``datetime64[ns]`` (``NaT`` where unreadable or blank) and
    ``day_first`` is True where a value was read in a slashed or dashed
    day-first (or, with ``month_first``, month-first) form. One pass: the
    common ISO forms through pandas' C parser, the rest by regex.
    """
    text = text.astype(str).str.strip()
    values = np.full(len(text), np.datetime64("NaT"), dtype="datetime64[ns]")
    day_first = np.zeros(len(text), dtype=bool)
    rest = (text != "").to_numpy().copy()
    if rest.any():
        # the fast format that reads the first value first (usually it reads them all)
        first = text.iat[int(np.argmax(rest))]

        def _misses(fmt: str) -> bool:
            return pd.isna(pd.to_datetime(first, format=fmt, errors="coerce"))

        for fmt in sorted(_FAST, key=_misses):
            whole = bool(rest.all())
            subset = text if whole else text[rest]
            parsed = pd.to_datetime(subset, format=fmt, errors="coerce").to_numpy()
            hit = ~np.isnat(parsed)
            where = np.flatnonzero(rest)[hit] if not whole else np.flatnonzero(hit)
            values[where] = parsed[hit]
            rest[where] = False
            if not rest.any():
                break
    if rest.any():
        remaining = text[rest]
        positions = np.flatnonzero(rest)
        iso = remaining.str.extract(f"^{_ISO}$")
        is_iso = iso["year"].notna().to_numpy()
        if is_iso.any():
            values[positions[is_iso]] = _from_parts(iso[is_iso], day="b", month="a").to_numpy()
        uk = remaining[~is_iso].str.extract(f"^{_UK}$")
        is_uk = uk["year"].notna().to_numpy()
        if is_uk.any():
            day, month = ("b", "a") if month_first else ("a", "b")
            where = positions[~is_iso][is_uk]
            values[where] = _from_parts(uk[is_uk], day=day, month=month).to_numpy()
            day_first[where] = ~np.isnat(values[where])
    return (
        pd.Series(values, index=text.index, dtype="datetime64[ns]"),
        pd.Series(day_first, index=text.index),
    )


def parse_datetimes(text: pd.Series, *, month_first: bool = False) -> pd.Series:
    """Parse each value by its own form; unreadable or blank values are ``NaT``.

    Parameters
    ----------
    text : the cells as published (``str``).
    month_first : read ``NN/NN/YYYY`` and ``NN-NN-YYYY`` as month first
        (a partner's setting); ISO values are ISO either way.

    Returns
    -------
    Series
        ``datetime64[ns]``, indexed like ``text``.

    Examples
    --------
    >>> import pandas as pd
    >>> values = pd.Series(["2023-03-14 21:40", "14/03/2023 21:40", "2023-01-02", "31/02/2023"])
    >>> parse_datetimes(values).dt.strftime("%Y-%m-%d %H:%M").tolist()
    ['2023-03-14 21:40', '2023-03-14 21:40', '2023-01-02 00:00', nan]
    """
    return read_datetimes(text, month_first=month_first)[0]


def split_dates(
    frame: pd.DataFrame, column: str, *, source: str, month_first: bool = False
) -> tuple[pd.DataFrame, pd.Series, pd.Series, pd.DataFrame]:
    """Read ``frame[column]`` once; quarantine what is unreadable as ``invalid_date``.

    Returns
    -------
    tuple
        The readable rows, their dates (normalised to the day), their rescue
        (``RESCUE_DAY_FIRST`` or ``""``) and the quarantine of the others.
    """
    from training.sources._csv import quarantine_rows

    parsed, day_first = read_datetimes(frame[column], month_first=month_first)
    bad = parsed.isna()
    quarantine = quarantine_rows(frame, bad, source=source, field=column, reason="invalid_date")
    rescue = pd.Series(
        np.where(day_first.to_numpy(), RESCUE_DAY_FIRST, ""), index=frame.index, dtype=object
    )
    if bad.any():  # copy the frame only when a row goes
        keep = ~bad
        frame, parsed, rescue = frame.loc[keep], parsed[keep], rescue[keep]
    return frame, parsed.dt.normalize(), rescue, quarantine


def date_forms(text: pd.Series) -> pd.Series:
    """Name each value's form: ``iso``, ``day_first`` (slashed or dashed) or ``""``.

    Only the shape is looked at; used to count the records the day-first rule rescued.
    """
    text = text.astype(str).str.strip()
    form = pd.Series("", index=text.index, dtype=object)
    fast = pd.Series(False, index=text.index)
    for fmt in _FAST:
        fast |= pd.to_datetime(text, format=fmt, errors="coerce").notna()
    form[fast] = "iso"
    rest = text[~fast & (text != "")]
    if len(rest):
        form[rest.index[rest.str.match(r"^\d{4}-")]] = "iso"
        form[rest.index[rest.str.match(r"^\d{1,2}[/-]\d{1,2}[/-]\d{4}")]] = "day_first"
    return form


def day_first_rescue(text: pd.Series) -> pd.Series:
    """Return ``RESCUE_DAY_FIRST`` where a value is day-first (slashed or dashed), else ``""``."""
    return date_forms(text).map({"day_first": RESCUE_DAY_FIRST}).fillna("").astype(str)


def check_date(*, month_first: bool = False, allow_empty: bool = False):
    """Return a pandera check function passing readable dates (and blanks if allowed)."""

    def _check(series: pd.Series) -> pd.Series:
        ok = parse_datetimes(series, month_first=month_first).notna()
        return ok | (series.str.strip() == "") if allow_empty else ok

    return _check
