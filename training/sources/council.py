"""Council files: school exclusions, evictions and licensed premises."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pandera.pandas as pa

from training.sources._candidates import candidates, split_coordinates
from training.sources._csv import (
    FILE_COL,
    ROW_COL,
    check_float_range,
    check_not_empty,
    check_pattern,
    parse_float,
    read_csv_files,
    validate_rows,
)
from training.sources._dates import split_dates

__all__ = [
    "EXCLUSIONS_SCHEMA",
    "EVICTIONS_SCHEMA",
    "PREMISES_SCHEMA",
    "read_exclusions",
    "read_evictions",
    "read_premises",
]

_DATE = pa.Column(
    checks=[
        pa.Check(check_not_empty, name="missing_value"),
    ],
    description="Day of the event (ISO 8601 or DD/MM/YYYY; unreadable: invalid_date).",
)
_AREA = pa.Column(
    checks=pa.Check(check_not_empty, name="missing_value"),
    description="Area code of the area reference (unknown codes are quarantined at linkage).",
)
EXCLUSIONS_SCHEMA = pa.DataFrameSchema(
    {
        "area_code": _AREA,
        "date": _DATE,
        "exclusion_type": pa.Column(
            checks=pa.Check(check_pattern(r"(?i)suspension|permanent"), name="invalid_value"),
            description="suspension or permanent.",
        ),
    },
    strict=False,
    name="school_exclusions",
)
EVICTIONS_SCHEMA = pa.DataFrameSchema(
    {"area_code": _AREA, "date": _DATE}, strict=False, name="evictions"
)
PREMISES_SCHEMA = pa.DataFrameSchema(
    {
        "premises_id": pa.Column(
            checks=pa.Check(check_not_empty, name="missing_value"),
            description="Licence reference.",
        ),
        "latitude": pa.Column(
            checks=pa.Check(
                check_float_range(-90, 90, allow_empty=False), name="invalid_coordinates"
            ),
            description="WGS84 latitude of the premises.",
        ),
        "longitude": pa.Column(
            checks=pa.Check(
                check_float_range(-180, 180, allow_empty=False), name="invalid_coordinates"
            ),
            description="WGS84 longitude of the premises.",
        ),
        "latest_closing_hour": pa.Column(
            checks=pa.Check(check_pattern(r"([01]\d|2[0-4]):[0-5]\d"), name="invalid_value"),
            description="Latest licensed closing time, HH:MM; 00:01-05:59 is late.",
        ),
    },
    strict=False,
    name="licensed_premises",
)


def _row_ids(frame: pd.DataFrame) -> pd.Series:
    return frame[FILE_COL].map(lambda p: Path(p).stem) + ":" + frame[ROW_COL].astype(str)


def _read(
    path: Path,
    columns: list[str],
    schema: pa.DataFrameSchema,
    source: str,
):
    frame = read_csv_files([path] if path.exists() else [], columns, pattern=str(path))
    return validate_rows(frame, schema, source=source)


def _dated(valid: pd.DataFrame, quarantine: pd.DataFrame, source: str, month_first: bool):
    valid, date, rescue, bad = split_dates(valid, "date", source=source, month_first=month_first)
    return valid, date, rescue, pd.concat([quarantine, bad], ignore_index=True)


def read_exclusions(path: Path, *, month_first: bool = False) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Read ``school_exclusions.csv`` into day-grain candidates and quarantine."""
    columns = ["area_code", "date", "exclusion_type"]
    valid, quarantine = _read(Path(path), columns, EXCLUSIONS_SCHEMA, "exclusions")
    valid, date, rescue, quarantine = _dated(valid, quarantine, "exclusions", month_first)
    records = candidates(
        valid,
        source="exclusions",
        record_id=_row_ids(valid),
        date=date,
        grain="day",
        category=valid["exclusion_type"].str.strip().str.lower(),
        is_violence=pd.Series(False, index=valid.index),
        area_code=valid["area_code"],
        rescue=rescue,
    )
    return records, quarantine


def read_evictions(path: Path, *, month_first: bool = False) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Read ``evictions.csv`` into day-grain candidates and quarantine."""
    columns = ["area_code", "date"]
    valid, quarantine = _read(Path(path), columns, EVICTIONS_SCHEMA, "evictions")
    valid, date, rescue, quarantine = _dated(valid, quarantine, "evictions", month_first)
    records = candidates(
        valid,
        source="evictions",
        record_id=_row_ids(valid),
        date=date,
        grain="day",
        category=pd.Series("eviction", index=valid.index),
        is_violence=pd.Series(False, index=valid.index),
        area_code=valid["area_code"],
        rescue=rescue,
    )
    return records, quarantine


def is_late(closing: pd.Series) -> pd.Series:
    """Return True where a closing time ``HH:MM`` is after midnight and before 06:00."""
    parts = closing.str.strip().str.split(":", expand=True).astype(int)
    minutes = (parts[0] % 24) * 60 + parts[1]
    return (minutes > 0) & (minutes < 6 * 60)


def read_premises(path: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Read ``licensed_premises.csv``.

    Returns
    -------
    tuple of DataFrame
        ``premises_id``, ``late`` (bool), ``latitude``, ``longitude``,
        ``file``, ``row``; and the quarantine (source ``premises``).
    """
    columns = ["premises_id", "name", "latitude", "longitude", "premises_type",
               "latest_closing_hour"]  # fmt: skip
    valid, quarantine = _read(Path(path), columns, PREMISES_SCHEMA, "premises")
    valid, bad_xy = split_coordinates(valid, source="premises", lat="latitude", lon="longitude")
    premises = pd.DataFrame(
        {
            "premises_id": valid["premises_id"].str.strip(),
            "late": is_late(valid["latest_closing_hour"]),
            "latitude": parse_float(valid["latitude"]),
            "longitude": parse_float(valid["longitude"]),
            "file": valid[FILE_COL],
            "row": valid[ROW_COL],
        }
    ).reset_index(drop=True)
    return premises, pd.concat([quarantine, bad_xy], ignore_index=True)
