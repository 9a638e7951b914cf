"""Write the synthetic city's incident records: police, ISTV and ambulance.

Formats as in docs/data-contract.md: police.uk street-level plus ``Date``,
the ISTV minimum data set, ambulance call-outs.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from training.synth.geometry import CityGeometry, points_in_cells
from training.synth.noise import noisy_descriptions
from training.synth.observe import LOCATION_TYPES, OTHER_CRIME_TYPES, WEAPONS
from training.synth.places import Places
from training.synth.write import day_strings, lonlat

__all__ = ["FORCE", "FORCE_SLUG", "POLICE_COLUMNS", "write_police", "write_istv", "write_ambulance"]

FORCE = "Synthetic City Police"
FORCE_SLUG = "synthetic-city"
POLICE_COLUMNS = (
    "Crime ID", "Month", "Reported by", "Falls within", "Longitude", "Latitude", "Location",
    "LSOA code", "LSOA name", "Crime type", "Last outcome category", "Context", "Date",
)  # fmt: skip
_OUTCOMES = (
    ("Unable to prosecute suspect", 0.42),
    ("Investigation complete; no suspect identified", 0.25),
    ("Status update unavailable", 0.06),
    ("Local resolution", 0.06),
    ("Offender given a caution", 0.04),
    ("Court result unavailable", 0.04),
    ("Awaiting court outcome", 0.04),
    ("Further investigation is not in the public interest", 0.04),
    ("Offender sent to prison", 0.03),
    ("Offender given community sentence", 0.02),
)
_NO_LOCATION = 0.02


def _hex_ids(rng: np.random.Generator, n: int) -> list[str]:
    blob = rng.bytes(32 * n).hex()
    return [blob[64 * i : 64 * (i + 1)] for i in range(n)]


def write_police(
    incidents: pd.DataFrame, other: pd.DataFrame, places: Places, weeks: pd.DatetimeIndex,
    out: Path, rng: np.random.Generator, *, violent_types: dict[str, float],
) -> int:  # fmt: skip
    """Write one street-level file per month; return the number of rows."""
    seen = incidents[incidents["police"]]
    kinds = list(violent_types) + list(OTHER_CRIME_TYPES)
    u = rng.random(len(seen))
    cum = np.cumsum(list(violent_types.values()))
    vtype = (u[:, None] > cum[None, :-1]).sum(axis=1)
    rows = pd.concat(
        [
            pd.DataFrame(
                {
                    "day_idx": seen["week"] * 7 + seen["day"],
                    "area": seen["area"],
                    "street": seen["street"],
                    "kind": vtype,
                }
            ),
            pd.DataFrame(
                {
                    "day_idx": other["week"] * 7 + other["day"],
                    "area": other["area"],
                    "street": other["street"],
                    "kind": other["crime_type"].astype(int) + len(violent_types),
                }
            ),
        ],
        ignore_index=True,
    ).sort_values("day_idx", kind="stable")
    day_str = day_strings(weeks)
    month_of = np.array([d[:7] for d in day_str], dtype=object)
    streets = places.streets
    # Formatted once per street: per-cell float formatting dominates the write time.
    slon, slat = (
        np.char.mod("%.6f", v).astype(object)
        for v in lonlat(streets["x"].to_numpy(), streets["y"].to_numpy())
    )
    codes, names = places.areas["area_code"].to_numpy(), places.areas["area_name"].to_numpy()
    outcome_names = np.array([o for o, _ in _OUTCOMES] + [""], dtype=object)
    outcome_p = np.array([p for _, p in _OUTCOMES])
    asb = kinds.index("Anti-social behaviour")
    month = month_of[rows["day_idx"].to_numpy()]
    for m in pd.unique(month):
        chunk = rows[month == m]
        k = len(chunk)
        st = chunk["street"].to_numpy()
        ar = chunk["area"].to_numpy()
        kind = chunk["kind"].to_numpy()
        is_asb = kind == asb
        nowhere = rng.random(k) < _NO_LOCATION
        outcome = rng.choice(len(_OUTCOMES), k, p=outcome_p / outcome_p.sum())
        ids = np.array(_hex_ids(rng, k), dtype=object)
        frame = pd.DataFrame(
            {
                "Crime ID": np.where(is_asb, "", ids),
                "Month": m,
                "Reported by": FORCE,
                "Falls within": FORCE,
                "Longitude": np.where(nowhere, "", slon[st]),
                "Latitude": np.where(nowhere, "", slat[st]),
                "Location": np.where(
                    nowhere, "No Location", "On or near " + streets["name"].to_numpy()[st]
                ),
                "LSOA code": np.where(nowhere, "", codes[ar]),
                "LSOA name": np.where(nowhere, "", names[ar]),
                "Crime type": np.array(kinds, dtype=object)[kind],
                "Last outcome category": np.where(is_asb, "", outcome_names[outcome]),
                "Context": "",
                "Date": day_str[chunk["day_idx"].to_numpy()],
            }
        )
        folder = out / "police" / m
        folder.mkdir(parents=True, exist_ok=True)
        frame.to_csv(folder / f"{m}-{FORCE_SLUG}-street.csv", index=False)
    return len(rows)


def _datetimes(weeks: pd.DatetimeIndex, day_idx: np.ndarray, minute: np.ndarray) -> np.ndarray:
    day_str = day_strings(weeks)
    hhmm = np.array([f"{h:02d}:{mm:02d}" for h in range(24) for mm in range(60)], dtype=object)
    return day_str[day_idx] + " " + hhmm[minute]


def write_istv(
    incidents: pd.DataFrame,
    places: Places,
    weeks: pd.DatetimeIndex,
    out: Path,
    rng: np.random.Generator,
) -> int:
    """Write one ISTV file per A&E site; return the number of rows."""
    seen = incidents[incidents["ae"]]
    k = len(seen)
    day_idx = (seen["week"] * 7 + seen["day"]).to_numpy()
    minute = seen["minute"].to_numpy().astype(np.int64)
    arrival_min = day_idx * 1440 + minute + np.maximum(rng.exponential(90, k), 10).astype(np.int64)
    arrival_min = np.minimum(arrival_min, len(weeks) * 7 * 1440 - 1)
    assault = _datetimes(weeks, day_idx, minute)
    arrival = _datetimes(weeks, arrival_min // 1440, arrival_min % 1440)
    loc = seen["location_type"].to_numpy()
    venue_names = np.r_[places.premises["name"].to_numpy(), places.schools["name"].to_numpy()]
    n_prem = len(places.premises)
    venue = seen["venue"].to_numpy()
    venue_ref = np.where(loc == 3, np.where(venue >= 0, venue + n_prem, -1), venue)
    street_names = places.streets["name"].to_numpy()
    names = np.r_[street_names, venue_names]
    which = np.where(
        np.isin(loc, (1, 3)) & (venue_ref >= 0),
        venue_ref + len(street_names),
        seen["street"].to_numpy(),
    )
    # Some home addresses are never written down.
    which = np.where((loc == 2) & (rng.random(k) < 0.3), -1, which)
    desc = noisy_descriptions(names, which, rng)
    frame = pd.DataFrame(
        {
            "site_code": places.sites["site_code"].to_numpy()[
                places.areas["site"].to_numpy()[seen["area"].to_numpy()]
            ],
            "arrival_datetime": arrival,
            "assault_datetime": np.where(rng.random(k) < 0.05, "", assault),
            "assault_method": np.array(WEAPONS, dtype=object)[seen["weapon"].to_numpy()],
            "location_type": np.array(LOCATION_TYPES, dtype=object)[loc],
            "location_description": desc,
            "_order": arrival_min,
        }
    ).sort_values("_order", kind="stable")
    folder = out / "istv"
    folder.mkdir(parents=True, exist_ok=True)
    for site, rows in frame.groupby("site_code", sort=True):
        rows.drop(columns="_order").to_csv(folder / f"{site}.csv", index=False)
    return k


def write_ambulance(
    incidents: pd.DataFrame,
    geo: CityGeometry,
    weeks: pd.DatetimeIndex,
    out: Path,
    rng: np.random.Generator,
) -> int:
    """Write ``ambulance/callouts.csv``; about 0.5 % of points fall outside the city."""
    seen = incidents[incidents["ambulance"]].sort_values(["week", "day", "minute"], kind="stable")
    k = len(seen)
    xy = points_in_cells(geo.cells, seen["area"].to_numpy(), geo.xy, rng)
    away = rng.random(k) < 0.005
    angle = rng.uniform(0, 2 * np.pi, away.sum())
    r = geo.radius * rng.uniform(1.3, 1.8, away.sum())
    xy[away] = np.column_stack([r * np.cos(angle), r * np.sin(angle)])
    lon, lat = lonlat(xy[:, 0], xy[:, 1])
    weapon = seen["weapon"].to_numpy()
    category = np.where(
        np.isin(weapon, (2, 3)),
        "stab/gunshot",
        np.where(rng.random(k) < 0.05, "sexual assault", "assault"),
    )
    day_idx = (seen["week"] * 7 + seen["day"]).to_numpy()
    frame = pd.DataFrame(
        {
            "incident_id": [f"AMB{i + 1:08d}" for i in range(k)],
            "incident_datetime": _datetimes(
                weeks, day_idx, seen["minute"].to_numpy().astype(np.int64)
            ),
            "latitude": lat,
            "longitude": lon,
            "category": category,
        }
    )
    (out / "ambulance").mkdir(parents=True, exist_ok=True)
    frame.to_csv(out / "ambulance" / "callouts.csv", index=False)
    return k
