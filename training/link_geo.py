"""Coordinates to areas: point in polygon, or nearest area centroid."""

from __future__ import annotations

import numpy as np
import pandas as pd
import shapely
from scipy.spatial import cKDTree

__all__ = ["project_km", "match_points", "adjacency_from_boundaries"]

_KM_PER_DEGREE = 111.32


def project_km(lat: np.ndarray, lon: np.ndarray, *, lat0: float) -> np.ndarray:
    """Project WGS84 degrees to km on a local equirectangular plane."""
    x = np.asarray(lon, dtype=float) * _KM_PER_DEGREE * np.cos(np.radians(lat0))
    y = np.asarray(lat, dtype=float) * _KM_PER_DEGREE
    return np.column_stack([x, y])


def _in_polygons(lat: np.ndarray, lon: np.ndarray, codes: list[str], shapes) -> np.ndarray:
    tree = shapely.STRtree(shapes)
    points = shapely.points(lon, lat)
    # "intersects" so that points on a shared edge still find an area.
    point_idx, shape_idx = tree.query(points, predicate="intersects")
    found = np.full(len(lat), "", dtype=object)
    order = np.lexsort((shape_idx, point_idx))
    point_idx, shape_idx = point_idx[order], shape_idx[order]
    first = np.unique(point_idx, return_index=True)[1]
    found[point_idx[first]] = np.asarray(codes, dtype=object)[shape_idx[first]]
    return found


def _nearest(lat: np.ndarray, lon: np.ndarray, areas: pd.DataFrame, max_km: float) -> np.ndarray:
    # A derived reference may hold areas without a known centroid.
    areas = areas.loc[areas["latitude"].notna() & areas["longitude"].notna()]
    if areas.empty:
        return np.full(len(lat), "", dtype=object)
    lat0 = float(areas["latitude"].mean())
    tree = cKDTree(project_km(areas["latitude"], areas["longitude"], lat0=lat0))
    distance, index = tree.query(project_km(lat, lon, lat0=lat0), k=1)
    codes = areas["area_code"].to_numpy(dtype=object)
    found = np.full(len(lat), "", dtype=object)
    near = distance <= max_km
    found[near] = codes[index[near]]
    return found


def match_points(
    lat: pd.Series,
    lon: pd.Series,
    *,
    areas: pd.DataFrame,
    boundaries: tuple[list[str], np.ndarray] | None,
    nearest_max_km: float,
) -> pd.DataFrame:
    """Give each point an area.

    With ``boundaries`` the area is the polygon containing the point;
    without, the area whose centroid is nearest, if within ``nearest_max_km``.

    Returns
    -------
    DataFrame
        Indexed like ``lat``: ``area_code`` (empty when outside every area)
        and ``method`` (``polygon`` or ``nearest``).
    """
    lat_v, lon_v = lat.to_numpy(dtype=float), lon.to_numpy(dtype=float)
    if not len(lat_v) or not len(areas):
        found = np.full(len(lat_v), "", dtype=object)
        method = "polygon" if boundaries is not None else "nearest"
    elif boundaries is not None:
        found, method = _in_polygons(lat_v, lon_v, *boundaries), "polygon"
    else:
        found, method = _nearest(lat_v, lon_v, areas, nearest_max_km), "nearest"
    return pd.DataFrame({"area_code": found.astype(str), "method": method}, index=lat.index)


def adjacency_from_boundaries(codes: list[str], shapes) -> pd.DataFrame:
    """Return the pairs of areas whose polygons touch or overlap."""
    tree = shapely.STRtree(shapes)
    left, right = tree.query(shapes, predicate="intersects")
    keep = left != right
    names = np.asarray(codes, dtype=object)
    return pd.DataFrame(
        {
            "area_code": names[left[keep]].astype(str),
            "neighbour_code": names[right[keep]].astype(str),
        }
    )
