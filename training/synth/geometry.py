"""Geometry of the synthetic city: areas, districts, streets, premises.

Everything here lives on a projected kilometre plane centred on the city; only
:func:`to_lonlat` converts to WGS84 around a fictional origin. See
docs/synthetic-city.md for the construction.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import shapely

__all__ = [
    "DISTRICT_NAMES",
    "ORIGIN_LAT",
    "ORIGIN_LON",
    "KM_PER_AREA",
    "CityGeometry",
    "build_geometry",
    "points_in_cells",
    "smooth_field",
    "to_lonlat",
]

#: Invented district names (no real places intended).
DISTRICT_NAMES = (
    "Old Market",
    "Northgate",
    "Eastmere",
    "Corwick",
    "Fenmoor",
    "Highcaster",
    "Stannick",
    "Brayholm",
    "Ollerbrook",
    "Wendleby",
    "Caddon Cross",
    "Marrowgate",
)
ORIGIN_LAT = 52.75
ORIGIN_LON = -1.85
#: Mean area of one small area, km^2 (a dense urban LSOA-like unit).
KM_PER_AREA = 0.4
_KM_PER_DEG_LAT = 110.574
_KM_PER_DEG_LON = 111.320 * np.cos(np.radians(ORIGIN_LAT))


@dataclass(frozen=True)
class CityGeometry:
    """Areas on the km plane.

    Attributes
    ----------
    outline : city boundary polygon.
    radius : nominal city radius, km.
    hubs : (n_districts, 2) hub centres; hub 0 is the city centre.
    cells : (n,) area polygons (clipped Voronoi cells).
    xy : (n, 2) generating point of each area (inside its cell).
    district : (n,) index into ``DISTRICT_NAMES``.
    neighbours : (m, 2) pairs ``(i, j)``, both directions, of areas sharing an edge.
    """

    outline: shapely.Polygon
    radius: float
    hubs: np.ndarray
    cells: np.ndarray
    xy: np.ndarray
    district: np.ndarray
    neighbours: np.ndarray


def to_lonlat(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Convert km-plane coordinates to (longitude, latitude) degrees."""
    return ORIGIN_LON + np.asarray(x) / _KM_PER_DEG_LON, ORIGIN_LAT + np.asarray(
        y
    ) / _KM_PER_DEG_LAT


def smooth_field(
    xy: np.ndarray, rng: np.random.Generator, *, length: float, n_waves: int = 24
) -> np.ndarray:
    """Draw a smooth, zero-mean, unit-variance random field at points ``xy``.

    Random Fourier features of a squared-exponential kernel with length scale
    ``length`` (km).
    """
    w = rng.normal(0.0, 1.0 / length, size=(n_waves, 2))
    phase = rng.uniform(0, 2 * np.pi, size=n_waves)
    field = np.cos(xy @ w.T + phase).sum(axis=1) * np.sqrt(2.0 / n_waves)
    return (field - field.mean()) / (field.std() + 1e-12)


def _outline(radius: float, rng: np.random.Generator) -> shapely.Polygon:
    theta = np.linspace(0, 2 * np.pi, 256, endpoint=False)
    p1, p2 = rng.uniform(0, 2 * np.pi, 2)
    r = radius * (1 + 0.10 * np.sin(3 * theta + p1) + 0.06 * np.sin(5 * theta + p2))
    return shapely.Polygon(np.column_stack([r * np.cos(theta), r * np.sin(theta)]))


def _hubs(n_districts: int, radius: float, rng: np.random.Generator) -> np.ndarray:
    angle = np.linspace(0, 2 * np.pi, n_districts - 1, endpoint=False)
    angle = angle + rng.uniform(0, 2 * np.pi) + rng.normal(0, 0.15, n_districts - 1)
    r = radius * rng.uniform(0.45, 0.7, n_districts - 1)
    ring = np.column_stack([r * np.cos(angle), r * np.sin(angle)])
    return np.vstack([[0.0, 0.0], ring])


def _sample_points(
    n: int, outline: shapely.Polygon, hubs: np.ndarray, radius: float, rng: np.random.Generator
) -> np.ndarray:
    """Mixture: 25 % around the centre, 45 % around hubs, 30 % uniform; inside outline."""
    out = np.empty((0, 2))
    while len(out) < n:
        m = 2 * n
        comp = rng.choice(3, size=m, p=[0.25, 0.45, 0.30])
        pts = rng.uniform(-1.2 * radius, 1.2 * radius, size=(m, 2))
        centre = comp == 0
        pts[centre] = rng.normal(0, 0.25 * radius, size=(centre.sum(), 2))
        hub = comp == 1
        which = rng.integers(1, len(hubs), size=hub.sum())
        pts[hub] = hubs[which] + rng.normal(0, 0.12 * radius, size=(hub.sum(), 2))
        keep = shapely.contains_xy(outline, pts[:, 0], pts[:, 1])
        out = np.vstack([out, pts[keep]])
    return out[:n]


def _voronoi_cells(xy: np.ndarray, outline: shapely.Polygon) -> np.ndarray:
    points = shapely.points(xy)
    diagram = shapely.voronoi_polygons(shapely.multipoints(points), extend_to=outline)
    raw = np.asarray(shapely.get_parts(diagram))
    cell_idx, point_idx = shapely.STRtree(points).query(raw, predicate="contains")
    cells = np.empty(len(xy), dtype=object)
    cells[point_idx] = shapely.intersection(raw[cell_idx], outline)
    for i in np.flatnonzero(shapely.get_type_id(cells) != 3):
        # A cell cut by a concave stretch of the outline: keep the part holding its point.
        parts = shapely.get_parts(cells[i])
        cells[i] = parts[shapely.contains(parts, points[i])][0]
    return cells


def _shared_edges(cells: np.ndarray) -> np.ndarray:
    left, right = shapely.STRtree(cells).query(cells, predicate="intersects")
    keep = left < right
    left, right = left[keep], right[keep]
    shared = shapely.length(shapely.intersection(cells[left], cells[right])) > 1e-6
    left, right = left[shared], right[shared]
    return np.vstack([np.column_stack([left, right]), np.column_stack([right, left])])


def build_geometry(n_areas: int, n_districts: int, rng: np.random.Generator) -> CityGeometry:
    """Build the outline, district hubs, area cells and adjacency.

    Parameters
    ----------
    n_areas : number of small areas.
    n_districts : number of districts (at most ``len(DISTRICT_NAMES)``).
    rng : random generator (consumed).
    """
    radius = float(np.sqrt(n_areas * KM_PER_AREA / np.pi))
    outline = _outline(radius, rng)
    hubs = _hubs(n_districts, radius, rng)
    xy = _sample_points(n_areas, outline, hubs, radius, rng)
    cells = _voronoi_cells(xy, outline)
    dist = np.linalg.norm(xy[:, None, :] - hubs[None, :, :], axis=2)
    # The centre district is compact; the others share out the rest.
    dist[:, 0] *= 1.6
    district = dist.argmin(axis=1)
    return CityGeometry(outline, radius, hubs, cells, xy, district, _shared_edges(cells))


def points_in_cells(
    cells: np.ndarray, owner: np.ndarray, fallback: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    """Draw one uniform random point inside ``cells[owner[k]]`` for every k.

    Rejection sampling in each cell's bounding box; after 30 rounds any point
    still missing takes ``fallback[owner[k]]`` (a point known to be inside).
    """
    bounds = shapely.bounds(cells)[owner]
    out = np.empty((len(owner), 2))
    todo = np.arange(len(owner))
    for _ in range(30):
        if todo.size == 0:
            break
        b = bounds[todo]
        x = rng.uniform(b[:, 0], b[:, 2])
        y = rng.uniform(b[:, 1], b[:, 3])
        ok = shapely.contains_xy(cells[owner[todo]], x, y)
        out[todo[ok]] = np.column_stack([x[ok], y[ok]])
        todo = todo[~ok]
    out[todo] = fallback[owner[todo]]
    return out
