"""NHS ISTV (information sharing to tackle violence) A&E files, one per site.

The assault date is ``assault_datetime`` when given, else the arrival date.
The minimum data set is anonymised: no patient identifier exists, and only the
columns below are read.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pandera.pandas as pa

from training.sources._candidates import candidates
from training.sources._csv import (
    FILE_COL,
    ROW_COL,
    check_datetime,
    check_not_empty,
    read_csv_files,
    validate_rows,
)

__all__ = ["ISTV_COLUMNS", "ISTV_SCHEMA", "ISTV_PATTERN", "WEAPON_METHODS", "read_istv"]

ISTV_PATTERN = "*.csv"
ISTV_COLUMNS = [
    "site_code",
    "arrival_datetime",
    "assault_datetime",
    "assault_method",
    "location_type",
    "location_description",
]
WEAPON_METHODS = ("knife/sharp object", "firearm")
_DT_FMT, _DT_RE = "%Y-%m-%d %H:%M", r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}"

ISTV_SCHEMA = pa.DataFrameSchema(
    {
        "arrival_datetime": pa.Column(
            checks=[
                pa.Check(check_not_empty, name="missing_value"),
                pa.Check(check_datetime(_DT_FMT, _DT_RE), name="invalid_date"),
            ],
            description="Arrival at the emergency department, YYYY-MM-DD HH:MM.",
        ),
        "assault_datetime": pa.Column(
            checks=pa.Check(check_datetime(_DT_FMT, _DT_RE, allow_empty=True), name="invalid_date"),
            description="When the assault happened, YYYY-MM-DD HH:MM; may be empty.",
        ),
        "assault_method": pa.Column(
            checks=pa.Check(check_not_empty, name="missing_value"),
            description="body part, blunt object, knife/sharp object, firearm, other, unknown.",
        ),
    },
    strict=False,
    name="istv",
)


def read_istv(folder: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Read every ISTV site file in ``folder``.

    Returns
    -------
    tuple of DataFrame
        Valid attendances as day-grain candidates (``category`` is the
        lower-cased assault method, ``location`` the free-text description)
        and the quarantine.

    Raises
    ------
    SchemaError
        When no file is found, or a file is empty, unreadable or lacks a column.
    """
    files = sorted(Path(folder).glob(ISTV_PATTERN))
    frame = read_csv_files(files, ISTV_COLUMNS, pattern=f"{folder}/{ISTV_PATTERN}")
    valid, quarantine = validate_rows(frame, ISTV_SCHEMA, source="istv")
    arrival = pd.to_datetime(valid["arrival_datetime"].str.strip(), format=_DT_FMT)
    assault = pd.to_datetime(valid["assault_datetime"].str.strip(), format=_DT_FMT, errors="coerce")
    when = assault.fillna(arrival).dt.normalize()
    method = valid["assault_method"].str.strip().str.lower()
    record_id = valid[FILE_COL].map(lambda p: Path(p).stem) + ":" + valid[ROW_COL].astype(str)
    records = candidates(
        valid,
        source="istv",
        record_id=record_id,
        date=when,
        grain="day",
        category=method,
        is_violence=pd.Series(True, index=valid.index),
        location=valid["location_description"],
        site=valid["site_code"],
    )
    return records, quarantine
