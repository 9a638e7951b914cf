"""police.uk street-level crime files, read from a download folder unchanged.

The folder holds ``YYYY-MM/YYYY-MM-<force>-street.csv`` files (searched
recursively). Published files carry a ``Month`` only (month grain); a force's
internal extract adds a ``Date`` column (day grain).
"""

from __future__ import annotations

import csv
from pathlib import Path

import pandas as pd
import pandera.pandas as pa

from training.sources._candidates import candidates, split_coordinates
from training.sources._csv import (
    FILE_COL,
    ROW_COL,
    check_datetime,
    check_float_range,
    check_not_empty,
    empty_quarantine,
    parse_float,
    quarantine_rows,
    read_csv_files,
    validate_rows,
)
from training.sources._dates import split_dates

__all__ = ["POLICE_COLUMNS", "POLICE_SCHEMA", "POLICE_PATTERN", "read_police"]

POLICE_PATTERN = "**/*-street.csv"
POLICE_COLUMNS = [
    "Crime ID",
    "Month",
    "Reported by",
    "Falls within",
    "Longitude",
    "Latitude",
    "Location",
    "LSOA code",
    "LSOA name",
    "Crime type",
    "Last outcome category",
    "Context",
]
DATE_COLUMN = "Date"

POLICE_SCHEMA = pa.DataFrameSchema(
    {
        "Month": pa.Column(
            checks=[
                pa.Check(check_not_empty, name="missing_value"),
                pa.Check(check_datetime("%Y-%m", r"\d{4}-\d{2}"), name="invalid_date"),
            ],
            description="Month of the offence, YYYY-MM.",
        ),
        DATE_COLUMN: pa.Column(
            required=False,
            checks=[
                pa.Check(check_not_empty, name="missing_value"),
            ],
            description=(
                "Day of the offence, ISO 8601 or DD/MM/YYYY (force extracts only; "
                "unreadable: invalid_date)."
            ),
        ),
        "Crime type": pa.Column(
            checks=pa.Check(check_not_empty, name="missing_value"),
            description="police.uk crime category.",
        ),
        "Longitude": pa.Column(
            checks=pa.Check(check_float_range(-180, 180), name="invalid_coordinates"),
            description="WGS84 longitude of the snap point; empty for No Location.",
        ),
        "Latitude": pa.Column(
            checks=pa.Check(check_float_range(-90, 90), name="invalid_coordinates"),
            description="WGS84 latitude of the snap point; empty for No Location.",
        ),
    },
    strict=False,
    name="police_uk_street",
)


def _has_date_column(path: Path) -> bool:
    if path.stat().st_size == 0:
        return False
    with path.open(newline="", encoding="utf-8-sig") as handle:
        header = next(csv.reader(handle), [])
    return DATE_COLUMN in [h.strip() for h in header]


def _read_group(
    files: list[Path], *, day_grain: bool, month_first: bool = False
) -> tuple[pd.DataFrame, pd.DataFrame]:
    required = [*POLICE_COLUMNS, DATE_COLUMN] if day_grain else POLICE_COLUMNS
    frame = read_csv_files(files, required, pattern=POLICE_PATTERN)
    valid, quarantine = validate_rows(frame, POLICE_SCHEMA, source="police")
    parts = [quarantine]
    if day_grain:
        valid, date, rescue, bad_date = split_dates(
            valid, DATE_COLUMN, source="police", month_first=month_first
        )
        parts.append(bad_date)
        valid = valid.assign(_date=date, _rescue=rescue)
    valid, bad_xy = split_coordinates(valid, source="police", lat="Latitude", lon="Longitude")
    parts.append(bad_xy)
    month = pd.to_datetime(valid["Month"].str.strip(), format="%Y-%m")
    if day_grain:
        date = valid["_date"]
        mismatch = (date.dt.year != month.dt.year) | (date.dt.month != month.dt.month)
        parts.append(
            quarantine_rows(
                valid, mismatch, source="police", field=DATE_COLUMN, reason="month_date_mismatch"
            )
        )
        valid = valid.loc[~mismatch]
    else:
        valid = valid.assign(_date=month, _rescue="")
    return valid, pd.concat(parts, ignore_index=True)


def read_police(
    folder: Path, *, violent_crime_types: tuple[str, ...], month_first: bool = False
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Read every police.uk street file under ``folder``.

    Parameters
    ----------
    folder : a police.uk download folder (``YYYY-MM/YYYY-MM-<force>-street.csv``).
    violent_crime_types : crime types counted as violence.
    month_first : a force extract's ``Date`` is ``MM/DD/YYYY`` (``sources.month_first``).

    Returns
    -------
    tuple of DataFrame
        The valid records in the common candidate layout (``grain`` is
        ``month`` without a ``Date`` column, else ``day``) and the quarantine.

    Raises
    ------
    SchemaError
        When no file is found, or a file is empty, unreadable or lacks a column.
    """
    files = sorted(Path(folder).glob(POLICE_PATTERN))
    if not files:
        read_csv_files([], POLICE_COLUMNS, pattern=f"{folder}/{POLICE_PATTERN}")
    day_files = [f for f in files if _has_date_column(f)]
    month_files = [f for f in files if f not in set(day_files)]
    frames, quarantines = [], [empty_quarantine()]
    for group, day_grain in ((month_files, False), (day_files, True)):
        if not group:
            continue
        valid, quarantine = _read_group(group, day_grain=day_grain, month_first=month_first)
        quarantines.append(quarantine)
        crime_id = valid["Crime ID"].str.strip()
        made_id = valid[FILE_COL].map(lambda p: Path(p).name) + ":" + valid[ROW_COL].astype(str)
        frames.append(
            candidates(
                valid,
                source="police",
                record_id=crime_id.where(crime_id != "", made_id),
                date=valid["_date"],
                grain="day" if day_grain else "month",
                category=valid["Crime type"].str.strip(),
                is_violence=valid["Crime type"].str.strip().isin(violent_crime_types),
                area_code=valid["LSOA code"],
                latitude=parse_float(valid["Latitude"]),
                longitude=parse_float(valid["Longitude"]),
                location=valid["Location"],
                rescue=valid["_rescue"],
            ).assign(area_name=valid["LSOA name"].str.strip().to_numpy())
        )
    records = pd.concat(frames, ignore_index=True)
    duplicate = records["record_id"].duplicated(keep="first")
    dup_q = pd.DataFrame(
        {
            "source": "police",
            "file": records.loc[duplicate, "file"],
            "row": records.loc[duplicate, "row"],
            "field": "Crime ID",
            "value": records.loc[duplicate, "record_id"],
            "reason": "duplicate_id",
        }
    )
    quarantines.append(dup_q)
    return records.loc[~duplicate].reset_index(drop=True), pd.concat(quarantines, ignore_index=True)
