"""The areas as SVG shapes, drawn by the server: polygons when known, else circles.

Longitude and latitude are projected once, at service start, onto a plane
(equirectangular, scaled by the cosine of the mean latitude: true enough at
city scale) of :data:`WIDTH` units across, y pointing down as SVG wants.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["Shape", "Box", "WIDTH", "project_shapes", "bounding_box"]

WIDTH = 1000.0
_MARGIN = 8.0


@dataclass(frozen=True)
class Box:
    """A rectangle in map units (the SVG ``viewBox``)."""

    x: float
    y: float
    width: float
    height: float

    @property
    def view_box(self) -> str:
        """Return the ``viewBox`` attribute value."""
        return f"{self.x:.1f} {self.y:.1f} {self.width:.1f} {self.height:.1f}"


@dataclass(frozen=True)
class Shape:
    """One area drawn: ``path`` is an SVG path, or empty for a circle at ``cx, cy``."""

    path: str
    cx: float
    cy: float
    r: float
    box: Box


def _rings(geometry: Mapping[str, Any]) -> list[list[list[float]]]:
    if geometry["type"] == "Polygon":
        return list(geometry["coordinates"])
    if geometry["type"] == "MultiPolygon":
        return [ring for polygon in geometry["coordinates"] for ring in polygon]
    return []


def bounding_box(boxes: Iterable[Box]) -> Box:
    """Return the box around ``boxes`` with a small margin."""
    boxes = list(boxes)
    if not boxes:
        return Box(0.0, 0.0, WIDTH, WIDTH)
    x0 = min(b.x for b in boxes) - _MARGIN
    y0 = min(b.y for b in boxes) - _MARGIN
    x1 = max(b.x + b.width for b in boxes) + _MARGIN
    y1 = max(b.y + b.height for b in boxes) + _MARGIN
    return Box(x0, y0, x1 - x0, y1 - y0)


def project_shapes(
    centroids: Mapping[str, tuple[float | None, float | None]],
    polygons: Mapping[str, Mapping[str, Any]] | None = None,
) -> dict[str, Shape]:
    """Return each area's shape in map units.

    Parameters
    ----------
    centroids : area code -> (longitude, latitude).
    polygons : area code -> GeoJSON geometry (Polygon or MultiPolygon); areas
        without one are drawn as circles at their centroid.
    """
    polygons = polygons or {}
    points = [
        (lon, lat)
        for code, (lon, lat) in centroids.items()
        if lon is not None and lat is not None and code not in polygons
    ]
    for geometry in polygons.values():
        points.extend((x, y) for ring in _rings(geometry) for x, y, *_ in ring)
    if not points:
        return {}
    lons, lats = [p[0] for p in points], [p[1] for p in points]
    scale_x = math.cos(math.radians((min(lats) + max(lats)) / 2))
    span = max((max(lons) - min(lons)) * scale_x, max(lats) - min(lats), 1e-9)
    unit = WIDTH / span
    west, north = min(lons), max(lats)

    def xy(lon: float, lat: float) -> tuple[float, float]:
        return (lon - west) * scale_x * unit, (north - lat) * unit

    radius = max(2.0, min(12.0, 0.45 * WIDTH / math.sqrt(max(len(centroids), 1))))
    shapes: dict[str, Shape] = {}
    for code, (lon, lat) in centroids.items():
        geometry = polygons.get(code)
        if geometry is not None and _rings(geometry):
            shapes[code] = _polygon_shape(geometry, xy)
        elif lon is not None and lat is not None:
            cx, cy = xy(lon, lat)
            box = Box(cx - radius, cy - radius, 2 * radius, 2 * radius)
            shapes[code] = Shape("", round(cx, 1), round(cy, 1), radius, box)
    return shapes


def _polygon_shape(geometry: Mapping[str, Any], xy) -> Shape:
    parts, xs, ys = [], [], []
    for ring in _rings(geometry):
        projected = [xy(x, y) for x, y, *_ in ring]
        xs.extend(p[0] for p in projected)
        ys.extend(p[1] for p in projected)
        parts.append("M" + "L".join(f"{x:.1f},{y:.1f}" for x, y in projected) + "Z")
    box = Box(min(xs), min(ys), max(xs) - min(xs), max(ys) - min(ys))
    cx, cy = box.x + box.width / 2, box.y + box.height / 2
    return Shape("".join(parts), round(cx, 1), round(cy, 1), 0.0, box)
