"""Write the synthetic city's reference, council and JSON files.

Formats as in docs/data-contract.md; incident records are written by
:mod:`training.synth.records`.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import shapely

from training.sources.areas import AREA_COLUMNS
from training.synth.geometry import CityGeometry, to_lonlat
from training.synth.places import Places

__all__ = ["day_strings", "lonlat", "write_reference", "write_council", "write_json"]


def lonlat(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Return (longitude, latitude) of km-plane points, rounded to 6 decimals."""
    lon, lat = to_lonlat(x, y)
    return lon.round(6), lat.round(6)


def write_reference(geo: CityGeometry, places: Places, out: Path) -> None:
    """Write ``reference/`` and ``council/licensed_premises.csv``."""
    ref = out / "reference"
    ref.mkdir(parents=True, exist_ok=True)
    areas = places.areas
    lon, lat = lonlat(areas["x"].to_numpy(), areas["y"].to_numpy())
    table = areas.drop(columns=["x", "y", "premises", "late_premises", "site"]).assign(
        latitude=lat, longitude=lon
    )
    cols = list(AREA_COLUMNS)  # the reader's contract, so writer and reader cannot drift
    table[cols + [c for c in table.columns if c.startswith("audit_")]].to_csv(
        ref / "areas.csv", index=False
    )
    codes = areas["area_code"].to_numpy()
    pairs = pd.DataFrame(
        {"area_code": codes[geo.neighbours[:, 0]], "neighbour_code": codes[geo.neighbours[:, 1]]}
    )
    pairs.sort_values(["area_code", "neighbour_code"]).to_csv(ref / "adjacency.csv", index=False)
    gaz = pd.concat(
        [
            pd.DataFrame(
                {
                    "name": places.streets["name"],
                    "area_code": codes[places.streets["area"]],
                    "kind": "street",
                }
            ),
            pd.DataFrame(
                {
                    "name": places.premises["name"],
                    "area_code": codes[places.premises["area"]],
                    "kind": "venue",
                }
            ),
            pd.DataFrame(
                {
                    "name": places.schools["name"],
                    "area_code": codes[places.schools["area"]],
                    "kind": "venue",
                }
            ),
        ]
    )
    gaz.to_csv(ref / "gazetteer.csv", index=False)
    cells = shapely.transform(geo.cells, lambda xy: np.column_stack(lonlat(xy[:, 0], xy[:, 1])))
    geoms = shapely.to_geojson(cells)
    feats = ",\n".join(
        f'{{"type":"Feature","properties":{{"area_code":"{c}"}},"geometry":{g}}}'
        for c, g in zip(codes, geoms, strict=True)
    )
    (ref / "boundaries.geojson").write_text(
        '{"type":"FeatureCollection","features":[\n' + feats + "\n]}\n"
    )
    council = out / "council"
    council.mkdir(parents=True, exist_ok=True)
    prem = places.premises
    plon, plat = lonlat(prem["x"].to_numpy(), prem["y"].to_numpy())
    prem.assign(latitude=plat, longitude=plon)[
        ["premises_id", "name", "latitude", "longitude", "premises_type", "latest_closing_hour"]
    ].to_csv(council / "licensed_premises.csv", index=False)


def day_strings(weeks: pd.DatetimeIndex) -> np.ndarray:
    """Return ``YYYY-MM-DD`` of every day of the weeks, indexed by ``week * 7 + day``."""
    days = pd.date_range(weeks[0], periods=len(weeks) * 7, freq="D")
    return np.asarray(days.strftime("%Y-%m-%d"), dtype=object)


def write_council(
    evictions: np.ndarray, exclusions: np.ndarray, places: Places, weeks: pd.DatetimeIndex,
    out: Path, rng: np.random.Generator, *, permanent_share: float,
) -> dict[str, int]:  # fmt: skip
    """Write evictions and exclusions on weekdays; a few rows carry an unknown code."""
    codes = places.areas["area_code"].to_numpy().astype(object)
    day_str = day_strings(weeks)
    n = len(codes)
    written = {}
    for name, counts in (("evictions", evictions), ("school_exclusions", exclusions)):
        flat = counts.ravel()
        idx = np.repeat(np.arange(flat.size), flat)
        week, area = np.divmod(idx, n)
        day_idx = week * 7 + rng.integers(0, 5, len(idx))
        code = codes[area]
        bad = rng.choice(len(idx), size=min(3, len(idx)), replace=False)
        code[bad] = [f"SYN{99990 + i}" for i in range(len(bad))]
        frame = pd.DataFrame({"area_code": code, "date": day_str[day_idx]})
        if name == "school_exclusions":
            frame["exclusion_type"] = np.where(
                rng.random(len(idx)) < permanent_share, "permanent", "suspension"
            )
        frame.to_csv(out / "council" / f"{name}.csv", index=False)
        written[name] = len(frame)
    return written


def write_json(obj: dict, path: Path) -> None:
    """Write ``obj`` as indented JSON."""
    path.write_text(json.dumps(obj, indent=2, default=str) + "\n")
