"""Ambulance service call-outs (``ambulance/callouts.csv``)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pandera.pandas as pa

from training.sources._candidates import candidates, split_coordinates
from training.sources._csv import (
    check_float_range,
    check_not_empty,
    parse_float,
    quarantine_rows,
    read_csv_files,
    validate_rows,
)
from training.sources._dates import split_dates

__all__ = ["AMBULANCE_COLUMNS", "AMBULANCE_SCHEMA", "AMBULANCE_FILE", "read_ambulance"]

AMBULANCE_FILE = "callouts.csv"
AMBULANCE_COLUMNS = ["incident_id", "incident_datetime", "latitude", "longitude", "category"]


AMBULANCE_SCHEMA = pa.DataFrameSchema(
    {
        "incident_id": pa.Column(
            checks=pa.Check(check_not_empty, name="missing_value"),
            description="Incident reference, unique in the file.",
        ),
        "incident_datetime": pa.Column(
            checks=pa.Check(check_not_empty, name="missing_value"),
            description=(
                "Time of the call (ISO 8601 or DD/MM/YYYY HH:MM; unreadable: invalid_date)."
            ),
        ),
        "latitude": pa.Column(
            checks=pa.Check(check_float_range(-90, 90), name="invalid_coordinates"),
            description="WGS84 latitude of the incident.",
        ),
        "longitude": pa.Column(
            checks=pa.Check(check_float_range(-180, 180), name="invalid_coordinates"),
            description="WGS84 longitude of the incident.",
        ),
        "category": pa.Column(
            checks=pa.Check(check_not_empty, name="missing_value"),
            description="Call category (assault, stab/gunshot, sexual assault...).",
        ),
    },
    strict=False,
    name="ambulance_callouts",
)


def read_ambulance(
    folder: Path, *, assault_categories: tuple[str, ...], month_first: bool = False
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Read ``callouts.csv`` in ``folder``.

    Parameters
    ----------
    folder : the ambulance folder.
    assault_categories : call categories counted as assaults (lower case).
    month_first : the partner writes ``MM/DD/YYYY`` (``sources.month_first``).

    Returns
    -------
    tuple of DataFrame
        Valid call-outs as day-grain candidates and the quarantine.
    """
    path = Path(folder) / AMBULANCE_FILE
    frame = read_csv_files([path] if path.exists() else [], AMBULANCE_COLUMNS, pattern=str(path))
    valid, quarantine = validate_rows(frame, AMBULANCE_SCHEMA, source="ambulance")
    valid, date, rescue, bad_date = split_dates(
        valid, "incident_datetime", source="ambulance", month_first=month_first
    )
    valid = valid.assign(_date=date, _rescue=rescue)
    valid, bad_xy = split_coordinates(valid, source="ambulance", lat="latitude", lon="longitude")
    duplicate = valid["incident_id"].str.strip().duplicated(keep="first")
    dup_q = quarantine_rows(
        valid, duplicate, source="ambulance", field="incident_id", reason="duplicate_id"
    )
    valid = valid.loc[~duplicate]
    category = valid["category"].str.strip().str.lower()
    records = candidates(
        valid,
        source="ambulance",
        record_id=valid["incident_id"].str.strip(),
        date=valid["_date"],
        grain="day",
        category=category,
        is_violence=category.isin([c.lower() for c in assault_categories]),
        latitude=parse_float(valid["latitude"]),
        longitude=parse_float(valid["longitude"]),
        rescue=valid["_rescue"],
    )
    return records, pd.concat([quarantine, bad_date, bad_xy, dup_q], ignore_index=True)
