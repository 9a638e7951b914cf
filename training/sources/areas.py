"""The area reference: areas, adjacency, gazetteer and boundaries.

Reference files must be correct: a bad reference row raises
:class:`SchemaError` (naming file, row and field) instead of being
quarantined, because every record's linkage depends on it.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pandas as pd
import shapely

from training.errors import SchemaError
from training.sources._csv import FILE_COL, ROW_COL, parse_float, read_csv_files

__all__ = [
    "AREA_COLUMNS",
    "AREA_CODE_PATTERN",
    "AREAS_NUMERIC",
    "MSG_BAD_NUMBER",
    "MSG_DUPLICATE_AREA",
    "MSG_BAD_FEATURE",
    "read_areas",
    "read_adjacency",
    "read_gazetteer",
    "read_boundaries",
    "derive_areas",
]

AREA_CODE_PATTERN = r"[EWSN]\d{8}|SYN\d{5}"
AREA_COLUMNS = [
    "area_code",
    "area_name",
    "district",
    "latitude",
    "longitude",
    "area_km2",
    "population",
    "imd_decile",
]
AREAS_NUMERIC = ["latitude", "longitude", "area_km2", "population", "imd_decile"]
MSG_BAD_NUMBER = "not a number: {value!r}"
MSG_DUPLICATE_AREA = "area code {value!r} is listed more than once"
MSG_BAD_FEATURE = "feature {index} has no properties.area_code or no polygon geometry"
MSG_UNKNOWN_REF = "area code {value!r} is not in the areas reference"


def _first_bad(frame: pd.DataFrame, mask: pd.Series, field: str, message: str) -> SchemaError:
    row = frame.loc[mask].iloc[0]
    return SchemaError(
        row[FILE_COL], message.format(value=row[field]), row=int(row[ROW_COL]), field=field
    )


def read_areas(path: Path) -> pd.DataFrame:
    """Read ``reference/areas.csv``; numeric columns as float64, ``audit_*`` kept.

    Raises
    ------
    SchemaError
        On a missing column, a non-numeric value or a duplicated area code.
    """
    path = Path(path)
    audit: list[str] = []
    if path.exists() and path.stat().st_size:
        with path.open(newline="", encoding="utf-8-sig") as handle:
            header = next(csv.reader(handle), [])
        audit = [c.strip() for c in header if c.strip().startswith("audit_")]
    files = [path] if path.exists() else []
    frame = read_csv_files(files, [*AREA_COLUMNS, *audit], pattern=str(path))
    out = frame.loc[:, ["area_code", "area_name", "district"]].apply(lambda s: s.str.strip())
    for name in [*AREAS_NUMERIC, *[c for c in audit if c != "audit_ethnic_band"]]:
        values = parse_float(frame[name])
        if values.isna().any():
            raise _first_bad(frame, values.isna(), name, MSG_BAD_NUMBER)
        out[name] = values
    for name in audit:
        if name not in out:
            out[name] = frame[name].str.strip()
    duplicate = out["area_code"].duplicated()
    if duplicate.any():
        raise _first_bad(frame, duplicate, "area_code", MSG_DUPLICATE_AREA)
    return out.reset_index(drop=True)


def read_adjacency(path: Path, areas: pd.DataFrame) -> pd.DataFrame:
    """Read ``reference/adjacency.csv`` and return it symmetric and de-duplicated."""
    path = Path(path)
    frame = read_csv_files([path], ["area_code", "neighbour_code"], pattern=str(path))
    frame = frame.assign(
        area_code=frame["area_code"].str.strip(), neighbour_code=frame["neighbour_code"].str.strip()
    )
    known = set(areas["area_code"])
    for field in ("area_code", "neighbour_code"):
        unknown = ~frame[field].isin(known)
        if unknown.any():
            raise _first_bad(frame, unknown, field, MSG_UNKNOWN_REF)
    return symmetric(frame[["area_code", "neighbour_code"]])


def symmetric(pairs: pd.DataFrame) -> pd.DataFrame:
    """Return ``pairs`` plus their reverses, without self-pairs or duplicates."""
    both = pd.concat(
        [
            pairs,
            pairs.rename(columns={"area_code": "neighbour_code", "neighbour_code": "area_code"}),
        ],
        ignore_index=True,
    )
    both = both.loc[both["area_code"] != both["neighbour_code"]].drop_duplicates()
    out = both.sort_values(["area_code", "neighbour_code"]).reset_index(drop=True)
    return out.astype({"area_code": str, "neighbour_code": str})


def read_gazetteer(path: Path, areas: pd.DataFrame) -> pd.DataFrame:
    """Read ``reference/gazetteer.csv`` (``name``, ``area_code``, ``kind``)."""
    path = Path(path)
    frame = read_csv_files([path], ["name", "area_code", "kind"], pattern=str(path))
    frame = frame.assign(area_code=frame["area_code"].str.strip())
    unknown = ~frame["area_code"].isin(set(areas["area_code"]))
    if unknown.any():
        raise _first_bad(frame, unknown, "area_code", MSG_UNKNOWN_REF)
    return frame[["name", "area_code", "kind"]].reset_index(drop=True)


def read_boundaries(path: Path) -> tuple[list[str], np.ndarray]:
    """Read ``reference/boundaries.geojson``: area codes and shapely polygons."""
    path = Path(path)
    try:
        features = json.loads(path.read_text())["features"]
    except (ValueError, KeyError, TypeError) as exc:
        raise SchemaError(path, f"not a GeoJSON FeatureCollection: {exc}") from exc
    codes, shapes = [], []
    for index, feature in enumerate(features):
        code = (feature.get("properties") or {}).get("area_code")
        geometry = feature.get("geometry") or {}
        if not code or geometry.get("type") not in ("Polygon", "MultiPolygon"):
            raise SchemaError(path, MSG_BAD_FEATURE.format(index=index), field="area_code")
        codes.append(str(code))
        shapes.append(shapely.geometry.shape(geometry))
    return codes, np.asarray(shapes, dtype=object)


def derive_areas(records: pd.DataFrame) -> pd.DataFrame:
    """Derive an area reference from the well-formed area codes in ``records``.

    Used when no areas file exists (a plain police.uk download): the area set
    is the codes present, named after the published LSOA name; the district
    is the name without its trailing LSOA suffix; coordinates are the mean of
    the records' points. Other attributes are unknown (NaN).
    """
    codes = records["area_code"].astype(str).str.strip()
    picked = records.loc[codes.str.fullmatch(AREA_CODE_PATTERN)].assign(area_code=codes)
    names = picked.get("area_name", pd.Series("", index=picked.index)).fillna("")
    grouped = picked.assign(area_name=names).groupby("area_code", sort=True)
    out = pd.DataFrame(
        {
            "area_name": grouped["area_name"].agg(lambda s: s.mode().iat[0] if len(s) else ""),
            "latitude": grouped["latitude"].mean(),
            "longitude": grouped["longitude"].mean(),
        }
    ).reset_index()
    out["district"] = out["area_name"].str.replace(r"\s+\d{3}[A-Z]$", "", regex=True)
    for name in ("area_km2", "population", "imd_decile"):
        out[name] = np.nan
    return out[AREA_COLUMNS].astype({"area_code": str, "area_name": str, "district": str})
