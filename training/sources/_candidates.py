"""The common frame every source hands to the linker."""

from __future__ import annotations

import pandas as pd

from training.sources._csv import FILE_COL, ROW_COL, parse_float, quarantine_rows

__all__ = ["CANDIDATE_COLUMNS", "candidates", "split_coordinates"]


CANDIDATE_COLUMNS = [
    "source",
    "record_id",
    "date",
    "grain",
    "category",
    "is_violence",
    "area_code",
    "latitude",
    "longitude",
    "location",
    "site",
    "file",
    "row",
    "rescue",
]


def candidates(
    frame: pd.DataFrame,
    *,
    source: str,
    record_id: pd.Series,
    date: pd.Series,
    grain: str,
    category: pd.Series,
    is_violence: pd.Series,
    area_code: pd.Series | None = None,
    latitude: pd.Series | None = None,
    longitude: pd.Series | None = None,
    location: pd.Series | None = None,
    site: pd.Series | None = None,
    rescue: pd.Series | None = None,
) -> pd.DataFrame:
    """Assemble a source's valid rows into the common frame the linker reads.

    ``rescue`` names, per row, the reading rule without which the row would
    have been quarantined (``""`` for none); the linkage report counts them.
    """
    blank = pd.Series("", index=frame.index, dtype=str)
    nan = pd.Series(float("nan"), index=frame.index, dtype="float64")
    return pd.DataFrame(
        {
            "source": source,
            "record_id": record_id.astype(str),
            "date": pd.to_datetime(date).astype("datetime64[ns]"),
            "grain": grain,
            "category": category.astype(str),
            "is_violence": is_violence.astype(bool),
            "area_code": (area_code if area_code is not None else blank).astype(str).str.strip(),
            "latitude": latitude if latitude is not None else nan,
            "longitude": longitude if longitude is not None else nan,
            "location": (location if location is not None else blank).astype(str),
            "site": (site if site is not None else blank).astype(str).str.strip(),
            "file": frame[FILE_COL].astype(str),
            "row": frame[ROW_COL].astype("int64"),
            "rescue": (rescue if rescue is not None else blank).astype(str),
        },
        index=frame.index,
    ).reset_index(drop=True)


def split_coordinates(
    frame: pd.DataFrame, *, source: str, lat: str, lon: str
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Quarantine rows with only one of latitude/longitude, or (0, 0)."""
    has_lat = frame[lat].str.strip() != ""
    has_lon = frame[lon].str.strip() != ""
    zero = (parse_float(frame[lat]) == 0) & (parse_float(frame[lon]) == 0)
    bad = (has_lat != has_lon) | zero
    field_is_lat = ~has_lat | zero
    quarantine = pd.concat(
        [
            quarantine_rows(
                frame, bad & field_is_lat, source=source, field=lat, reason="invalid_coordinates"
            ),
            quarantine_rows(
                frame, bad & ~field_is_lat, source=source, field=lon, reason="invalid_coordinates"
            ),
        ],
        ignore_index=True,
    )
    return frame.loc[~bad], quarantine
