"""Shared reading and validation of agency CSV files, as published.

Every source reads its files with :func:`read_csv_files` (all cells as text,
nothing edited) and validates them once against its pandera schema with
:func:`validate_rows`. Structural problems raise :class:`SchemaError`; row
problems become quarantine entries.
"""

from __future__ import annotations

import csv
import re
import warnings
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

import pandas as pd
import pandera.pandas as pa

from training.errors import SchemaError

__all__ = [
    "QUARANTINE_REASONS",
    "QUARANTINE_COLUMNS",
    "MSG_EMPTY_FILE",
    "MSG_MISSING_COLUMN",
    "MSG_UNREADABLE",
    "MSG_NO_FILES",
    "read_csv_files",
    "validate_rows",
    "quarantine_rows",
    "empty_quarantine",
    "check_not_empty",
    "check_datetime",
    "check_float_range",
    "check_pattern",
    "parse_float",
]

QUARANTINE_REASONS: tuple[str, ...] = (
    "invalid_date",
    "invalid_coordinates",
    "invalid_value",
    "missing_value",
    "month_date_mismatch",
    "duplicate_id",
    "no_location",
    "unknown_area_code",
    "outside_all_areas",
    "unmatched_location",
    "ambiguous_location",
)
QUARANTINE_COLUMNS = ["source", "file", "row", "field", "value", "reason"]

MSG_EMPTY_FILE = "file is empty (0 bytes); expected a CSV header line"
MSG_MISSING_COLUMN = "required column is missing; expected columns: {expected}"
MSG_UNREADABLE = "not a readable CSV file: {detail}"
MSG_NO_FILES = "no files matching {pattern!r} found"

FILE_COL = "_file"
ROW_COL = "_row"


def empty_quarantine() -> pd.DataFrame:
    """Return an empty quarantine frame with the contract's columns."""
    frame = pd.DataFrame({c: pd.Series(dtype=str) for c in QUARANTINE_COLUMNS})
    return frame.astype({"row": "int64"})


def _record_lines(path: Path) -> list[int]:
    # Quoted fields may span lines, so the record index no longer gives the line.
    starts: list[int] = []
    with path.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.reader(handle)
        previous = 0
        for _ in reader:
            starts.append(previous + 1)
            previous = reader.line_num
    return starts[1:]


def _read_one(path: Path, required: Sequence[str]) -> pd.DataFrame:
    if path.stat().st_size == 0:
        raise SchemaError(path, MSG_EMPTY_FILE)
    try:
        with warnings.catch_warnings():
            # A row longer than the header would silently become the index.
            warnings.simplefilter("error", pd.errors.ParserWarning)
            frame = pd.read_csv(
                path,
                dtype=str,
                index_col=False,
                na_filter=False,
                keep_default_na=False,
                skip_blank_lines=False,
                encoding="utf-8-sig",
            )
    except (
        pd.errors.ParserError,
        pd.errors.ParserWarning,
        UnicodeDecodeError,
        pd.errors.EmptyDataError,
    ) as exc:
        raise SchemaError(path, MSG_UNREADABLE.format(detail=str(exc).strip())) from exc
    columns = [str(c).strip() for c in frame.columns]
    frame.columns = columns
    for name in required:
        if name not in columns:
            expected = ", ".join(required)
            raise SchemaError(path, MSG_MISSING_COLUMN.format(expected=expected), field=name)
    frame = frame.loc[:, list(dict.fromkeys(columns))]
    multiline = any(
        frame[c].str.contains("\n|\r", regex=True).any() for c in frame.columns if len(frame)
    )
    rows = _record_lines(path) if multiline else range(2, len(frame) + 2)
    frame[FILE_COL] = str(path)
    frame[ROW_COL] = pd.Series(list(rows), index=frame.index, dtype="int64")
    blank = (frame[list(required)] == "").all(axis=1)
    return frame.loc[~blank]


def read_csv_files(
    paths: Iterable[Path], required: Sequence[str], *, pattern: str = "*.csv"
) -> pd.DataFrame:
    """Read CSV files as text, unchanged, with their file and 1-based line numbers.

    Parameters
    ----------
    paths : the files to read (read in sorted order).
    required : columns every file must have.
    pattern : shown in the error when ``paths`` is empty.

    Returns
    -------
    DataFrame
        The required columns (plus any other published columns) as ``str``
        and ``_file``/``_row`` (the header is line 1; blank lines are skipped
        but keep the numbering).

    Raises
    ------
    SchemaError
        On an empty file, an unreadable CSV or a missing column.
    """
    files = sorted(Path(p) for p in paths)
    if not files:
        raise SchemaError(pattern, MSG_NO_FILES.format(pattern=pattern))
    frames = [_read_one(path, required) for path in files]
    keep = [*required, FILE_COL, ROW_COL]
    frame = pd.concat([f.loc[:, keep] for f in frames], ignore_index=True)
    return frame


Checker = Callable[[pd.Series], pd.Series]


def check_not_empty(series: pd.Series) -> pd.Series:
    """Pass cells with any non-blank text."""
    return series.str.strip() != ""


def check_pattern(regex: str, *, allow_empty: bool = False) -> Checker:
    """Return a check passing cells that fully match ``regex``."""
    compiled = re.compile(regex)

    def _check(series: pd.Series) -> pd.Series:
        ok = series.str.strip().str.fullmatch(compiled.pattern).fillna(False)
        return ok | (series.str.strip() == "") if allow_empty else ok

    return _check


def check_datetime(fmt: str, regex: str, *, allow_empty: bool = False) -> Checker:
    """Return a check passing cells that match ``regex`` and parse with ``fmt``."""

    def _check(series: pd.Series) -> pd.Series:
        text = series.str.strip()
        parsed = pd.to_datetime(text, format=fmt, errors="coerce")
        ok = text.str.fullmatch(regex).fillna(False) & parsed.notna()
        return ok | (text == "") if allow_empty else ok

    return _check


def parse_float(series: pd.Series) -> pd.Series:
    """Parse text to float64; blank or bad cells become NaN."""
    return pd.to_numeric(series.str.strip(), errors="coerce").astype("float64")


def check_float_range(low: float, high: float, *, allow_empty: bool = True) -> Checker:
    """Return a check passing blank cells or numbers within ``[low, high]``."""

    def _check(series: pd.Series) -> pd.Series:
        value = parse_float(series)
        ok = value.between(low, high).fillna(False)
        return ok | (series.str.strip() == "") if allow_empty else ok

    return _check


def quarantine_rows(
    frame: pd.DataFrame, mask: pd.Series, *, source: str, field: str, reason: str
) -> pd.DataFrame:
    """Return quarantine entries for the rows of ``frame`` selected by ``mask``."""
    picked = frame.loc[mask]
    values = picked[field].astype(str) if field in picked else pd.Series("", index=picked.index)
    return pd.DataFrame(
        {
            "source": source,
            "file": picked[FILE_COL].astype(str),
            "row": picked[ROW_COL].astype("int64"),
            "field": field,
            "value": values,
            "reason": reason,
        }
    ).reset_index(drop=True)


def validate_rows(
    frame: pd.DataFrame, schema: pa.DataFrameSchema, *, source: str
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Validate ``frame`` once against ``schema``; failing rows go to quarantine.

    Each check's ``name`` is its quarantine reason. A row failing several
    checks is quarantined once, for the first failing column in schema order.

    Returns
    -------
    tuple of DataFrame
        The rows that passed (same columns) and their quarantine entries.
    """
    try:
        schema.validate(frame, lazy=True)
        return frame, empty_quarantine()
    except pa.errors.SchemaErrors as exc:
        cases = exc.failure_cases
    cases = cases.loc[cases["index"].notna() & cases["column"].isin(list(schema.columns))]
    order = {name: i for i, name in enumerate(schema.columns)}
    cases = cases.assign(
        _order=cases["column"].map(order), _idx=cases["index"].astype("int64")
    ).sort_values(["_idx", "_order", "check_number"])
    cases = cases.drop_duplicates("_idx", keep="first")
    bad = frame.loc[cases["_idx"].to_numpy()]
    quarantine = pd.DataFrame(
        {
            "source": source,
            "file": bad[FILE_COL].astype(str).to_numpy(),
            "row": bad[ROW_COL].astype("int64").to_numpy(),
            "field": cases["column"].astype(str).to_numpy(),
            "value": [bad.at[i, c] for i, c in zip(cases["_idx"], cases["column"], strict=True)],
            "reason": cases["check"].astype(str).to_numpy(),
        }
    )
    return frame.drop(index=cases["_idx"].to_numpy()), quarantine
