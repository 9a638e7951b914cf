"""How agencies observe the synthetic city's incidents (see docs/synthetic-city.md).

Each latent incident gets a day, a time, a location and a weapon; police and
A&E see it independently with probabilities set by location and weapon; the
ambulance service attends a subset of A&E cases. Police also record other
crime and anti-social behaviour.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np
import pandas as pd

from training.synth.places import Places
from training.synth.process import LatentProcess

__all__ = [
    "LOCATION_TYPES",
    "WEAPONS",
    "OTHER_CRIME_TYPES",
    "ObservationConstants",
    "observe_incidents",
    "other_crime",
    "seen_probabilities",
]

LOCATION_TYPES = ("street", "licensed premises", "home", "school", "workplace", "other")
WEAPONS = ("body part", "blunt object", "knife/sharp object", "firearm", "other", "unknown")
OTHER_CRIME_TYPES = (
    "Anti-social behaviour", "Bicycle theft", "Burglary", "Criminal damage and arson", "Drugs",
    "Other crime", "Other theft", "Public order", "Shoplifting", "Theft from the person",
    "Vehicle crime",
)  # fmt: skip
_OTHER_SHARES = (0.32, 0.02, 0.08, 0.10, 0.03, 0.02, 0.10, 0.08, 0.07, 0.03, 0.15)


@dataclass(frozen=True)
class ObservationConstants:
    """Parameters of the observation process (written to ``city.json``)."""

    p_police: dict[str, float] = field(
        default_factory=lambda: dict(
            zip(LOCATION_TYPES, (0.45, 0.50, 0.35, 0.30, 0.40, 0.35), strict=True)
        )
    )
    p_ae: dict[str, float] = field(
        default_factory=lambda: dict(
            zip(WEAPONS, (0.30, 0.45, 0.70, 0.80, 0.35, 0.30), strict=True)
        )
    )
    weapon_shares: tuple[float, ...] = (0.62, 0.10, 0.10, 0.01, 0.07, 0.10)
    location_late: tuple[float, ...] = (0.40, 0.60, 0.0, 0.0, 0.0, 0.0)
    location_base: tuple[float, ...] = (0.40, 0.05, 0.35, 0.05, 0.07, 0.08)
    day_late: tuple[float, ...] = (0.04, 0.04, 0.05, 0.08, 0.22, 0.35, 0.22)
    day_base: tuple[float, ...] = (0.12, 0.12, 0.12, 0.13, 0.16, 0.18, 0.17)
    p_ambulance: dict[str, float] = field(
        default_factory=lambda: dict(
            zip(WEAPONS, (0.30, 0.40, 0.75, 0.90, 0.30, 0.30), strict=True)
        )
    )
    p_ambulance_no_ae: float = 0.20  # treated at the scene, never conveyed to A&E
    robbery_share: float = 0.10
    weapons_possession_share: float = 0.05
    other_crime_rate: float = 1.4  # police non-violent rows per area-week at the mean base
    recording_bias: float = 0.0
    recording_bias_group: str = "majority global majority"
    # Relative rise of police recording in an area while a patrol operation
    # covers it (observation only: patrols do not change the risk here).
    patrol_recording_uplift: float = 0.0

    def to_dict(self) -> dict:
        """Plain-JSON form."""
        return asdict(self)


def _police_by_area(places: Places, c: ObservationConstants) -> np.ndarray:
    """(n_areas, n_location_types) police recording probability."""
    p = np.tile(np.array([c.p_police[k] for k in LOCATION_TYPES]), (len(places.areas), 1))
    if c.recording_bias != 0:
        # Differential recording in one audit group (more patrols record more,
        # less trust reports less): observation only, never risk.
        group = (places.areas["audit_ethnic_band"] == c.recording_bias_group).to_numpy()
        p[group] = np.clip(p[group] * (1 + c.recording_bias), 0.0, 0.95)
    return p


def _location_mix(
    places: Places, c: ObservationConstants, home_share: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Per-area location-type mixes of the base and night-time components.

    The domestic (home) share of the base component is the area's
    ``home_share``; the other locations keep their relative weights.
    """
    n = len(places.areas)
    home = LOCATION_TYPES.index("home")
    base = np.tile(np.array(c.location_base), (n, 1))
    others = 1 - base[:, home]
    base *= ((1 - home_share) / others)[:, None]
    base[:, home] = home_share
    no_premises = places.areas["premises"].to_numpy() == 0
    no_school = ~np.isin(np.arange(n), places.schools["area"])
    base[no_premises, 0] += base[no_premises, 1]
    base[no_premises, 1] = 0
    base[no_school, 0] += base[no_school, 3]
    base[no_school, 3] = 0
    return base, np.tile(np.array(c.location_late), (n, 1))


def _weapon_mixes(c: ObservationConstants) -> tuple[np.ndarray, np.ndarray]:
    """Weapon shares of armed (knife/firearm) and unarmed incidents."""
    shares = np.array(c.weapon_shares)
    armed = np.isin(WEAPONS, ("knife/sharp object", "firearm"))
    return np.where(armed, shares, 0) / shares[armed].sum(), np.where(armed, 0, shares) / shares[
        ~armed
    ].sum()


def seen_probabilities(
    places: Places, c: ObservationConstants, latent: LatentProcess
) -> dict[str, np.ndarray]:
    """P(seen by police or A&E) per area for each component, and P(A&E) per area."""
    pp = _police_by_area(places, c)
    p_ae = np.array([c.p_ae[k] for k in WEAPONS])
    armed_mix, unarmed_mix = _weapon_mixes(c)
    a = latent.armed_share
    pa = a * float(armed_mix @ p_ae) + (1 - a) * float(unarmed_mix @ p_ae)
    mix_base, mix_late = _location_mix(places, c, latent.home_share)
    any_seen = 1 - (1 - pp) * (1 - pa[:, None])
    return {
        "base": (mix_base * any_seen).sum(axis=1),
        "late": (mix_late * any_seen).sum(axis=1),
        "ae": pa,
    }


def _draw_rows(rng: np.random.Generator, probs: np.ndarray) -> np.ndarray:
    """One categorical draw per row of ``probs`` (rows sum to 1)."""
    cum = probs.cumsum(axis=1)
    return (rng.random(len(probs))[:, None] > cum[:, :-1]).sum(axis=1)


def _pick_within(
    rng: np.random.Generator, owner: np.ndarray, counts: np.ndarray, first: np.ndarray
) -> np.ndarray:
    """Uniform random member of each row's group; -1 when the group is empty."""
    k = counts[owner]
    pick = first[owner] + np.floor(rng.random(len(owner)) * np.maximum(k, 1)).astype(np.int64)
    return np.where(k > 0, pick, -1)


def _groups(owner: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    counts = np.bincount(owner, minlength=n)
    return counts, np.r_[0, counts.cumsum()[:-1]]


def observe_incidents(
    latent: LatentProcess,
    places: Places,
    c: ObservationConstants,
    rng: np.random.Generator,
    *,
    patrolled: np.ndarray | None = None,
) -> pd.DataFrame:
    """Expand latent counts into one row per incident with what each agency saw.

    ``patrolled`` (weeks x areas, bool) marks the area-weeks under a patrol
    operation, where police record ``1 + c.patrol_recording_uplift`` times as often.

    Returns columns ``week, area, late, day, minute, location_type, weapon,
    street, venue, police, ae, ambulance`` (``street``/``venue`` index rows of
    ``places.streets``/``places.premises`` or ``places.schools``; -1 none).
    """
    n = len(places.areas)
    flat = latent.incidents.ravel()
    idx = np.repeat(np.arange(flat.size), flat)
    week, area = np.divmod(idx, n)
    late_n = latent.late_incidents.ravel()[idx]
    # The first late_n incidents of each area-week are the night-time ones; the
    # armed ones are the first armed_n in an independent random order.
    rank = np.arange(len(idx)) - np.repeat(np.r_[0, flat.cumsum()[:-1]], flat)
    late = rank < late_n
    m = len(idx)
    shuffled = np.lexsort((rng.random(m), idx))
    armed = np.empty(m, bool)
    armed[shuffled] = rank < latent.armed_incidents.ravel()[idx]
    day = np.where(late, rng.choice(7, m, p=c.day_late), rng.choice(7, m, p=c.day_base))
    night = rng.integers(21 * 60, 28 * 60, m) % (24 * 60)
    spread = np.clip(rng.normal(17 * 60, 5 * 60, m), 0, 24 * 60 - 1).astype(int)
    minute = np.where(late, night, spread)
    mix_base, mix_late = _location_mix(places, c, latent.home_share)
    loc = np.where(late, _draw_rows(rng, mix_late[area]), _draw_rows(rng, mix_base[area]))
    armed_mix, unarmed_mix = _weapon_mixes(c)
    weapon = np.where(
        armed, rng.choice(len(WEAPONS), m, p=armed_mix), rng.choice(len(WEAPONS), m, p=unarmed_mix)
    )
    s_counts, s_first = _groups(places.streets["area"].to_numpy(), n)
    street = _pick_within(rng, area, s_counts, s_first)
    premises = places.premises
    p_counts, p_first = _groups(premises["area"].to_numpy(), n)
    venue = np.where(loc == 1, _pick_within(rng, area, p_counts, p_first), -1)
    sc_counts, sc_first = _groups(places.schools["area"].to_numpy(), n)
    venue = np.where(loc == 3, _pick_within(rng, area, sc_counts, sc_first), venue)
    pp = _police_by_area(places, c)[area, loc]
    if patrolled is not None and c.patrol_recording_uplift > 0:
        on = patrolled[week, area]
        pp = np.where(on, np.minimum(pp * (1 + c.patrol_recording_uplift), 0.95), pp)
    pa = np.array([c.p_ae[k] for k in WEAPONS])[weapon]
    police = rng.random(m) < pp
    ae = rng.random(m) < pa
    p_amb = np.where(ae, np.array([c.p_ambulance[k] for k in WEAPONS])[weapon], c.p_ambulance_no_ae)
    amb = rng.random(m) < p_amb
    return pd.DataFrame(
        {
            "week": week.astype(np.int32),
            "area": area.astype(np.int32),
            "late": late,
            "day": day.astype(np.int8),
            "minute": minute.astype(np.int16),
            "location_type": loc.astype(np.int8),
            "weapon": weapon.astype(np.int8),
            "street": street,
            "venue": venue,
            "police": police,
            "ae": ae,
            "ambulance": amb,
        }
    )


def other_crime(
    latent: LatentProcess, places: Places, c: ObservationConstants, rng: np.random.Generator
) -> pd.DataFrame:
    """Police non-violent crime and ASB rows: ``week, area, day, street, crime_type``."""
    n = len(places.areas)
    rate = latent.lam_base.mean(axis=0) + latent.lam_late.mean(axis=0)
    rate = c.other_crime_rate * rate / rate.mean()
    # Disorder moves with the same drifting neighbourhood risk as violence.
    counts = rng.poisson(rate[None, :] * latent.drift).ravel()
    idx = np.repeat(np.arange(counts.size), counts)
    week, area = np.divmod(idx, n)
    s_counts, s_first = _groups(places.streets["area"].to_numpy(), n)
    return pd.DataFrame(
        {
            "week": week.astype(np.int32),
            "area": area.astype(np.int32),
            "day": rng.choice(7, len(idx), p=c.day_base).astype(np.int8),
            "street": _pick_within(rng, area, s_counts, s_first),
            "crime_type": rng.choice(len(OTHER_CRIME_TYPES), len(idx), p=_OTHER_SHARES).astype(
                np.int8
            ),
        }
    )
