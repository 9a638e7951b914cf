"""Static attributes of the synthetic city: people, deprivation, streets, venues.

Built on :mod:`training.synth.geometry`; see docs/synthetic-city.md.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import shapely

from training.synth.geometry import DISTRICT_NAMES, CityGeometry, points_in_cells, smooth_field

__all__ = ["AUDIT_BANDS", "Places", "build_places"]

#: Audit-only ethnic-composition bands, by the share of white residents.
AUDIT_BANDS = ("majority white", "mixed", "majority global majority")

_ONSETS = (
    "Al", "Ash", "Bar", "Bel", "Bram", "Brook", "Cal", "Carr", "Chal", "Cran", "Dal", "Der",
    "El", "Elm", "Fair", "Fen", "Gar", "Glen", "Hal", "Hart", "Hol", "Ink", "Kel", "Kings",
    "Lang", "Lark", "Lin", "Mal", "Mar", "Mill", "Nor", "Oak", "Pen", "Rad", "Rook", "Sal",
    "Stan", "Thorn", "Wal", "Wick", "Ald", "Bex", "Cob", "Dun", "Ever", "Fox", "Gil", "Hay",
    "Ives", "Quen",
)  # fmt: skip
_CODAS = (
    "bury", "by", "combe", "croft", "dale", "den", "field", "ford", "gate", "ham", "hill",
    "hurst", "ington", "ley", "low", "mead", "mere", "more", "ridge", "stead", "stone",
    "thorpe", "ton", "well", "wick", "wood", "worth", "brook", "cote", "holm",
)  # fmt: skip
_MIDDLES = (
    "", "Park", "Hill", "Mill", "Church", "Station", "Green", "Bridge", "Market", "North",
    "South", "Upper", "Lower", "Old", "New",
)  # fmt: skip
_SUFFIXES = (
    "Street", "Road", "Lane", "Avenue", "Close", "Way", "Crescent", "Terrace", "Grove",
    "Place", "Drive", "Gardens", "Row", "Walk", "Court", "Square",
)  # fmt: skip
_VENUE_ADJ = ("Red", "Golden", "Black", "White", "Royal", "Old", "Crooked", "Silver", "Green")
_VENUE_NOUN = ("Lion", "Swan", "Anchor", "Crown", "Fox", "Bell", "Plough", "Stag", "Harp", "Oak")
_PREMISES_TYPES = ("pub", "bar", "nightclub", "restaurant", "off-licence", "late-night takeaway")
_LATE_HOURS = ("00:30", "01:00", "02:00", "03:00", "04:00")
_EARLY_HOURS = ("21:00", "22:00", "23:00", "23:30")


@dataclass(frozen=True)
class Places:
    """Static synthetic city: the area table, streets, premises, schools, A&E sites.

    ``areas`` follows ``reference/areas.csv`` plus km-plane columns ``x``, ``y``
    and the counts ``premises``, ``late_premises``. Streets, premises and
    schools are frames with ``area`` (row index into ``areas``), ``name``,
    ``x``, ``y``.
    """

    areas: pd.DataFrame
    streets: pd.DataFrame
    premises: pd.DataFrame
    schools: pd.DataFrame
    sites: pd.DataFrame


def _deprivation(geo: CityGeometry, rng: np.random.Generator) -> np.ndarray:
    """IMD decile (1 = most deprived): a smooth field plus an inner-city effect."""
    r = np.linalg.norm(geo.xy, axis=1) / geo.radius
    score = smooth_field(geo.xy, rng, length=geo.radius / 3) + 1.2 * np.exp(-((r / 0.45) ** 2))
    score = score + rng.normal(0, 0.35, len(r))
    rank = score.argsort()[::-1].argsort()
    return 1 + (rank * 10) // len(r)


def _audit_shares(geo: CityGeometry, decile: np.ndarray, rng: np.random.Generator) -> pd.DataFrame:
    """Audit-only shares: related to deprivation and place, never to risk."""
    place = smooth_field(geo.xy, rng, length=geo.radius / 4)
    logit = -0.6 + 0.22 * (5.5 - decile) + 0.9 * place + rng.normal(0, 0.4, len(decile))
    global_majority = 1 / (1 + np.exp(-logit))
    mix_field = smooth_field(geo.xy, rng, length=geo.radius / 5)
    weights = np.column_stack(
        [np.exp(0.8 * mix_field), np.exp(-0.8 * mix_field), np.ones_like(mix_field)]
    )
    weights = weights * rng.gamma(8.0, 1 / 8.0, size=weights.shape)
    split = weights / weights.sum(axis=1, keepdims=True) * global_majority[:, None]
    white = 1 - global_majority
    band = np.where(
        white >= 0.6, AUDIT_BANDS[0], np.where(white < 0.4, AUDIT_BANDS[2], AUDIT_BANDS[1])
    )
    return pd.DataFrame(
        {
            "audit_share_white": white.round(4),
            "audit_share_black": split[:, 0].round(4),
            "audit_share_asian": split[:, 1].round(4),
            "audit_share_mixed_other": split[:, 2].round(4),
            "audit_ethnic_band": band,
        }
    )


def _street_names(n: int, rng: np.random.Generator) -> np.ndarray:
    """Draw ``n`` distinct street names; most have no middle word."""
    sizes = (len(_ONSETS), len(_CODAS), len(_MIDDLES), len(_SUFFIXES))
    if n > 0.6 * np.prod(sizes):
        raise ValueError(f"cannot name {n} streets uniquely")
    p_mid = np.r_[8.0, np.ones(len(_MIDDLES) - 1)]
    p_mid /= p_mid.sum()
    codes = np.empty(0, dtype=np.int64)
    while len(codes) < n:
        draw = np.ravel_multi_index(
            (
                rng.integers(0, sizes[0], 2 * n),
                rng.integers(0, sizes[1], 2 * n),
                rng.choice(sizes[2], size=2 * n, p=p_mid),
                rng.integers(0, sizes[3], 2 * n),
            ),
            sizes,
        )
        both = np.r_[codes, draw]
        _, first = np.unique(both, return_index=True)
        codes = both[np.sort(first)]
    o, c, m, s = np.unravel_index(codes[:n], sizes)
    mid = np.array([f"{x} " if x else "" for x in _MIDDLES])
    parts = (np.array(_ONSETS)[o], np.array(_CODAS)[c], " ", mid[m], np.array(_SUFFIXES)[s])
    names = parts[0]
    for part in parts[1:]:
        names = np.char.add(names, part)
    return names.astype(object)


def _streets(geo: CityGeometry, rng: np.random.Generator, n_ambiguous: int) -> pd.DataFrame:
    n = len(geo.xy)
    per_area = 3 + rng.poisson(2.0, n)
    area = np.repeat(np.arange(n), per_area)
    names = _street_names(len(area), rng)
    # A few names exist in two areas, as in every real gazetteer.
    src = rng.choice(len(area), size=n_ambiguous, replace=False)
    dst = rng.choice(len(area), size=n_ambiguous, replace=False)
    ok = area[src] != area[dst]
    names[dst[ok]] = names[src[ok]]
    xy = points_in_cells(geo.cells, area, geo.xy, rng)
    streets = pd.DataFrame({"area": area, "name": names, "x": xy[:, 0], "y": xy[:, 1]})
    return streets.drop_duplicates(["area", "name"]).reset_index(drop=True)


def _premises(geo: CityGeometry, rng: np.random.Generator) -> pd.DataFrame:
    """Licensed premises cluster in the centre and around hubs; late ones more so."""
    d0 = np.linalg.norm(geo.xy, axis=1) / geo.radius
    dh = np.linalg.norm(geo.xy[:, None, :] - geo.hubs[None, 1:, :], axis=2).min(axis=1) / geo.radius
    centre, hub = np.exp(-((d0 / 0.15) ** 2)), np.exp(-((dh / 0.08) ** 2))
    count = rng.poisson(0.8 + 10.0 * centre + 3.0 * hub)
    area = np.repeat(np.arange(len(d0)), count)
    p_late = (0.08 + 0.55 * centre + 0.25 * hub)[area]
    late = rng.random(len(area)) < p_late
    kind = rng.choice(len(_PREMISES_TYPES), size=len(area), p=[0.35, 0.2, 0.05, 0.2, 0.12, 0.08])
    kind = np.where(late & (kind == 3), 2, kind)  # late restaurants are rare; make them clubs
    closing = np.where(
        late,
        np.array(_LATE_HOURS)[rng.integers(0, len(_LATE_HOURS), len(area))],
        np.array(_EARLY_HOURS)[rng.integers(0, len(_EARLY_HOURS), len(area))],
    )
    adj = np.array(_VENUE_ADJ)[rng.integers(0, len(_VENUE_ADJ), len(area))]
    noun = np.array(_VENUE_NOUN)[rng.integers(0, len(_VENUE_NOUN), len(area))]
    names = [f"The {a} {b} {i + 1}" for i, (a, b) in enumerate(zip(adj, noun, strict=True))]
    xy = points_in_cells(geo.cells, area, geo.xy, rng)
    return pd.DataFrame(
        {
            "area": area,
            "premises_id": [f"SYNLP{i + 1:06d}" for i in range(len(area))],
            "name": names,
            "premises_type": np.array(_PREMISES_TYPES)[kind],
            "latest_closing_hour": closing,
            "late": late,
            "x": xy[:, 0],
            "y": xy[:, 1],
        }
    )


def _schools(geo: CityGeometry, rng: np.random.Generator) -> pd.DataFrame:
    area = np.flatnonzero(rng.random(len(geo.xy)) < 0.3)
    kinds = np.array(["Academy", "Primary School", "High School"])[rng.integers(0, 3, len(area))]
    names = [
        f"{DISTRICT_NAMES[geo.district[a]]} {k} {i + 1}"
        for i, (a, k) in enumerate(zip(area, kinds, strict=True))
    ]
    return pd.DataFrame({"area": area, "name": names, "x": geo.xy[area, 0], "y": geo.xy[area, 1]})


def _sites(geo: CityGeometry, rng: np.random.Generator) -> pd.DataFrame:
    """A&E sites near district hubs; each area is served by its nearest site."""
    n_sites = int(np.clip(len(geo.xy) // 300, 2, 150))
    pick = rng.choice(len(geo.xy), size=n_sites, replace=False)
    return pd.DataFrame(
        {
            "site_code": [f"SYNAE{i + 1:03d}" for i in range(n_sites)],
            "x": geo.xy[pick, 0],
            "y": geo.xy[pick, 1],
        }
    )


def build_places(geo: CityGeometry, rng: np.random.Generator) -> Places:
    """Draw every static attribute of the city from its geometry."""
    n = len(geo.xy)
    decile = _deprivation(geo, rng)
    population = np.clip(np.round(rng.lognormal(np.log(1600), 0.22, n)), 1000, 3000).astype(int)
    audit = _audit_shares(geo, decile, rng)
    streets = _streets(geo, rng, n_ambiguous=max(3, n // 150))
    premises = _premises(geo, rng)
    schools = _schools(geo, rng)
    sites = _sites(geo, rng)
    district = np.array(DISTRICT_NAMES)[geo.district]
    seq = pd.Series(district).groupby(district).cumcount().to_numpy() + 1
    areas = pd.DataFrame(
        {
            "area_code": [f"SYN{i + 1:05d}" for i in range(n)],
            "area_name": [f"{d} {s:03d}" for d, s in zip(district, seq, strict=True)],
            "district": district,
            "x": geo.xy[:, 0],
            "y": geo.xy[:, 1],
            "area_km2": shapely.area(geo.cells).round(4),
            "population": population,
            "imd_decile": decile.astype(int),
            "premises": np.bincount(premises["area"], minlength=n),
            "late_premises": np.bincount(
                premises["area"], weights=premises["late"], minlength=n
            ).astype(int),
        }
    )
    dist = np.linalg.norm(geo.xy[:, None, :] - sites[["x", "y"]].to_numpy()[None], axis=2)
    areas["site"] = dist.argmin(axis=1)
    return Places(pd.concat([areas, audit], axis=1), streets, premises, schools, sites)
