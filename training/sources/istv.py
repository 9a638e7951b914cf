"""NHS ISTV (information sharing to tackle violence) A&E files, one per site.

The assault date is ``assault_datetime`` when readable, else the arrival date;
a row whose arrival time is unreadable but whose assault time is fine is kept
(and counted as rescued), and the other way round. Only a row with neither
readable is quarantined. Dates are read by ``training.sources._dates``.
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
    check_not_empty,
    empty_quarantine,
    quarantine_rows,
    read_csv_files,
    validate_rows,
)
from training.sources._dates import RESCUE_DAY_FIRST, read_datetimes

__all__ = ["ISTV_COLUMNS", "ISTV_SCHEMA", "ISTV_PATTERN", "WEAPON_METHODS", "read_istv",
           "RESCUE_DAY_FIRST", "RESCUE_ASSAULT_TIME", "RESCUE_ARRIVAL_TIME"]  # fmt: skip

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

ISTV_SCHEMA = pa.DataFrameSchema(
    {
        "assault_method": pa.Column(
            checks=pa.Check(check_not_empty, name="missing_value"),
            description="body part, blunt object, knife/sharp object, firearm, other, unknown.",
        ),
    },
    strict=False,
    name="istv",
)
#: Rescue rules counted in the linkage report.
RESCUE_ASSAULT_TIME = "dated_by_assault_time"
RESCUE_ARRIVAL_TIME = "dated_by_arrival_time"


def _dates(frame: pd.DataFrame, *, month_first: bool):
    """Return ``(date, rescue, unreadable)`` for ISTV rows (see the module docstring)."""
    assault_text = frame["assault_datetime"].str.strip()
    arrival, arrival_df = read_datetimes(frame["arrival_datetime"], month_first=month_first)
    assault, assault_df = read_datetimes(assault_text, month_first=month_first)
    date = assault.fillna(arrival).dt.normalize()
    rescue = pd.Series("", index=frame.index, dtype=object)
    used = assault.notna()
    rescue[assault_df.where(used, arrival_df)] = RESCUE_DAY_FIRST
    rescue[arrival.isna() & used] = RESCUE_ASSAULT_TIME
    rescue[(assault_text != "") & ~used & arrival.notna()] = RESCUE_ARRIVAL_TIME
    return date, rescue, date.isna()


def read_istv(folder: Path, *, month_first: bool = False) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Read every ISTV site file in ``folder``.

    Parameters
    ----------
    folder : the ISTV folder (one CSV per site).
    month_first : the partner writes ``MM/DD/YYYY`` (``sources.month_first``).

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
    when, rescue, unreadable = _dates(valid, month_first=month_first)
    blank = valid["arrival_datetime"].str.strip() == ""
    dropped = [
        quarantine_rows(valid, unreadable & blank, source="istv",
                        field="arrival_datetime", reason="missing_value"),
        quarantine_rows(valid, unreadable & ~blank, source="istv",
                        field="arrival_datetime", reason="invalid_date"),
    ]  # fmt: skip
    quarantine = pd.concat([empty_quarantine(), quarantine, *dropped], ignore_index=True)
    valid, when, rescue = valid.loc[~unreadable], when.loc[~unreadable], rescue.loc[~unreadable]
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
        rescue=rescue,
    )
    return records, quarantine
