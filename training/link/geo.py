"""Coordinates to areas: point in polygon, or nearest area centroid within its reach.

Without boundaries a point belongs to the area whose centroid is nearest,
provided it lies within that area's own reach: ``reach_factor`` times the
radius of a disc of the area's ``area_km2``, and at least ``reach_min_km``
(an area without a size falls back to ``nearest_max_km``). A large rural area
reaches far; a small city-centre one does not, so a point beyond the city's
edge is not pulled in. A point outside every area whose latitude and
longitude, swapped, fall inside one is linked there and flagged, never
silently (:func:`match_points` returns ``swapped``).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import shapely
from scipy.spatial import cKDTree

__all__ = ["project_km", "area_reach_km", "match_points", "adjacency_from_boundaries"]

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


def area_reach_km(areas: pd.DataFrame, link) -> np.ndarray:
    """Return each area's reach in km (see the module docstring).

    ``link`` is a ``LinkParams`` (``reach_factor``, ``reach_min_km``, ``nearest_max_km``).
    """
    size = (
        pd.to_numeric(areas["area_km2"], errors="coerce")
        if "area_km2" in areas
        else pd.Series(np.nan, index=areas.index)
    ).to_numpy(dtype=float)
    radius = np.sqrt(np.where(size > 0, size, np.nan) / np.pi)
    reach = np.maximum(link.reach_factor * radius, link.reach_min_km)
    return np.where(np.isfinite(reach), reach, link.nearest_max_km)


def _nearest(lat: np.ndarray, lon: np.ndarray, areas: pd.DataFrame, link) -> np.ndarray:
    # A derived reference may hold areas without a known centroid.
    areas = areas.loc[areas["latitude"].notna() & areas["longitude"].notna()]
    if areas.empty:
        return np.full(len(lat), "", dtype=object)
    lat0 = float(areas["latitude"].mean())
    tree = cKDTree(project_km(areas["latitude"], areas["longitude"], lat0=lat0))
    points = project_km(lat, lon, lat0=lat0)
    ok = np.isfinite(points).all(axis=1)
    distance = np.full(len(lat), np.inf)
    index = np.zeros(len(lat), dtype=int)
    if ok.any():
        distance[ok], index[ok] = tree.query(points[ok], k=1)
    codes = areas["area_code"].to_numpy(dtype=object)
    found = np.full(len(lat), "", dtype=object)
    near = distance <= area_reach_km(areas, link)[index]
    found[near] = codes[index[near]]
    return found


def match_points(
    lat: pd.Series,
    lon: pd.Series,
    *,
    areas: pd.DataFrame,
    boundaries: tuple[list[str], np.ndarray] | None,
    link,
) -> pd.DataFrame:
    """Give each point an area.

    With ``boundaries`` the area is the polygon containing the point;
    without, the area whose centroid is nearest, if within that area's reach
    (:func:`area_reach_km`). A point found nowhere is tried again with its
    latitude and longitude swapped.

    Parameters
    ----------
    lat, lon : WGS84 degrees.
    areas : the area reference (``area_code``, ``latitude``, ``longitude``, ``area_km2``).
    boundaries : ``(codes, shapes)`` or ``None``.
    link : the ``LinkParams``.

    Returns
    -------
    DataFrame
        Indexed like ``lat``: ``area_code`` (empty when outside every area),
        ``method`` (``polygon`` or ``nearest``) and ``swapped`` (bool: found
        only with latitude and longitude swapped).
    """
    lat_v, lon_v = lat.to_numpy(dtype=float), lon.to_numpy(dtype=float)
    method = "polygon" if boundaries is not None else "nearest"

    def _find(la: np.ndarray, lo: np.ndarray) -> np.ndarray:
        if not len(la) or not len(areas):
            return np.full(len(la), "", dtype=object)
        if boundaries is not None:
            return _in_polygons(la, lo, *boundaries)
        return _nearest(la, lo, areas, link)

    found = _find(lat_v, lon_v)
    swapped = np.zeros(len(lat_v), dtype=bool)
    miss = np.flatnonzero(found == "")
    if len(miss):
        again = _find(lon_v[miss], lat_v[miss])
        hit = again != ""
        found[miss[hit]], swapped[miss[hit]] = again[hit], True
    return pd.DataFrame(
        {"area_code": found.astype(str), "method": method, "swapped": swapped}, index=lat.index
    )


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
