"""The latent weekly process of the synthetic city (see docs/synthetic-city.md).

One loop over weeks; every area is updated at once with numpy and a sparse
row-normalised adjacency matrix. Nothing here reads an ``audit_`` column.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import date, timedelta

import holidays
import numpy as np
import pandas as pd
import scipy.sparse as sp

__all__ = [
    "PROCESS_COLUMNS",
    "ProcessConstants",
    "LatentProcess",
    "area_mixes",
    "area_rates",
    "council_multiplier",
    "simulate_process",
    "week_calendar",
]

#: The only area columns the process reads.
PROCESS_COLUMNS = ("population", "imd_decile", "premises", "late_premises")


@dataclass(frozen=True)
class ProcessConstants:
    """Parameters of the latent process (written to ``city.json``)."""

    base_rate: float = 0.75  # incidents per area-week at average population/deprivation
    beta_deprivation: float = 0.35  # per sd of (5.5 - imd_decile)
    beta_premises: float = 0.06  # log-rate per log1p(premises)
    area_effect_sd: float = 0.30  # lognormal unobserved area effect
    late_rate: float = 0.22  # night-time-economy incidents per late premises-week
    season_amplitude: float = 0.12  # base component, peak mid-July
    nightlife_amplitude: float = 0.8  # night-time-economy component
    peak_day_of_year: int = 196
    holiday_base: dict[str, float] = field(
        default_factory=lambda: dict(bank=1.08, new_year=1.3, christmas=1.1, halloween_bonfire=1.15)
    )
    holiday_nightlife: dict[str, float] = field(
        default_factory=lambda: dict(bank=1.6, new_year=2.5, christmas=1.6, halloween_bonfire=1.4)
    )
    drift_ar: float = 0.93  # weekly autocorrelation of the area's drifting log-risk
    drift_sd: float = 0.30  # its stationary standard deviation
    hawkes_decay: float = 0.6
    hawkes_self: float = 0.08
    hawkes_neighbour: float = 0.04
    armed_share: float = 0.11  # knife/firearm share of incidents at average deprivation
    armed_deprivation: float = 0.45  # log-odds-like slope per sd of deprivation
    armed_area_sd: float = 0.4  # hidden area factor of the armed share (street groups)
    retaliation_decay: float = 0.5
    retaliation_self: float = 0.45
    retaliation_neighbour: float = 0.25
    home_share: float = 0.35  # domestic share of the base component at average deprivation
    home_deprivation: float = 0.25
    home_area_sd: float = 0.45  # hidden area factor of the domestic share
    eviction_rate: float = 0.02
    eviction_deprivation: float = 0.8
    eviction_shock_prob: float = 0.002
    eviction_shock_mult: float = 10.0
    eviction_shock_weeks: int = 4
    exclusion_rate: float = 0.10
    exclusion_deprivation: float = 0.6
    permanent_share: float = 0.04
    council_lags: tuple[int, int] = (1, 4)  # events in weeks t-4..t-1 raise risk at t
    beta_eviction: float = 0.40  # per eviction (at most 2 count), scaled by deprivation
    beta_exclusion: float = 0.15  # per exclusion (at most 3 count), scaled by deprivation
    council_cap: tuple[int, int] = (2, 3)
    operation_prob: float = 0.5
    operation_weeks: int = 6
    operation_effect: float = 0.7
    operation_excess: float = 2.5  # trigger: last 2 weeks > excess * expected + 3
    shock_shape: float = 10.0  # gamma(k, 1/k) area-week shock

    def to_dict(self) -> dict:
        """Plain-JSON form."""
        return asdict(self)


@dataclass(frozen=True)
class LatentProcess:
    """Simulated latent quantities, arrays of shape (n_weeks, n_areas)."""

    weeks: pd.DatetimeIndex
    lam_base: np.ndarray  # expected base + self-excited incidents, no shock
    lam_late: np.ndarray  # expected night-time-economy incidents, no shock
    incidents: np.ndarray  # latent incident counts (int)
    late_incidents: np.ndarray  # of which night-time economy
    armed_incidents: np.ndarray  # of which with a knife or firearm
    armed_share: np.ndarray  # (n_areas,) chance an incident is armed
    home_share: np.ndarray  # (n_areas,) domestic share of the base component
    drift: np.ndarray  # the drifting risk multiplier exp(x - sd**2 / 2), mean 1
    evictions: np.ndarray
    exclusions: np.ndarray
    operation: np.ndarray  # bool, an operation is active


def week_calendar(start: str, n_weeks: int, c: ProcessConstants) -> pd.DataFrame:
    """Seasonal, holiday and school-term multipliers of each week."""
    weeks = pd.date_range(start, periods=n_weeks, freq="7D")
    years = range(weeks[0].year, weeks[-1].year + 2)
    bank = holidays.country_holidays("GB", subdiv="ENG", years=years)
    kinds = []
    for w in weeks:
        days = [w.date() + timedelta(d) for d in range(7)]
        kind = ""
        if any(d.month == 12 and d.day in (24, 25, 26) for d in days):
            kind = "christmas"
        elif any((d.month == 12 and d.day == 31) or (d.month == 1 and d.day == 1) for d in days):
            kind = "new_year"
        elif any((d.month, d.day) in ((10, 31), (11, 5)) for d in days):
            kind = "halloween_bonfire"
        elif any(d in bank for d in days):
            kind = "bank"
        kinds.append(kind)
    doy = weeks.dayofyear.to_numpy() + 3
    cos = np.cos(2 * np.pi * (doy - c.peak_day_of_year) / 365.25)
    school_holiday = np.array([_school_holiday(w.date()) for w in weeks])
    return pd.DataFrame(
        {
            "week_start": weeks,
            "holiday": kinds,
            "season": 1 + c.season_amplitude * cos,
            "nightlife": 1 + c.nightlife_amplitude * np.maximum(cos, 0) - 0.2 * np.maximum(-cos, 0),
            "holiday_base": [c.holiday_base.get(k, 1.0) for k in kinds],
            "holiday_nightlife": [c.holiday_nightlife.get(k, 1.0) for k in kinds],
            "school_holiday": school_holiday,
        }
    )


def _school_holiday(monday: date) -> bool:
    m, d = monday.month, monday.day
    return (
        (m == 8)
        or (m == 7 and d >= 22)
        or (m == 12 and d >= 20)
        or (m == 1 and d <= 3)
        or (m == 4 and d <= 14)
    )


def _adjacency_matrix(neighbours: np.ndarray, n: int) -> sp.csr_matrix:
    a = sp.csr_matrix(
        (np.ones(len(neighbours)), (neighbours[:, 0], neighbours[:, 1])), shape=(n, n)
    )
    deg = np.asarray(a.sum(axis=1)).ravel()
    return sp.diags(1 / np.maximum(deg, 1)) @ a


def area_rates(
    areas: pd.DataFrame, c: ProcessConstants, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Return the base rate and the late-premises rate of every area."""
    dep = (5.5 - areas["imd_decile"].to_numpy()) / 2.87
    effect = rng.lognormal(-0.5 * c.area_effect_sd**2, c.area_effect_sd, len(areas))
    base = (
        c.base_rate
        * areas["population"].to_numpy()
        / 1600
        * np.exp(
            c.beta_deprivation * dep + c.beta_premises * np.log1p(areas["premises"].to_numpy())
        )
        * effect
    )
    return base, c.late_rate * areas["late_premises"].to_numpy() * effect


def area_mixes(
    areas: pd.DataFrame, c: ProcessConstants, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Return each area's armed (knife/firearm) share and domestic (home) share.

    Both rise with deprivation and carry a hidden area factor that no
    published covariate reveals, so only the A&E records show them.
    """
    dep = (5.5 - areas["imd_decile"].to_numpy()) / 2.87
    n = len(areas)
    armed = c.armed_share * np.exp(c.armed_deprivation * dep + rng.normal(0, c.armed_area_sd, n))
    home = c.home_share * np.exp(c.home_deprivation * dep + rng.normal(0, c.home_area_sd, n))
    return np.clip(armed, 0.02, 0.45), np.clip(home, 0.08, 0.75)


def council_multiplier(
    evictions: np.ndarray, exclusions: np.ndarray, t: int, dep01: np.ndarray, c: ProcessConstants
) -> np.ndarray:
    """Risk multiplier of week ``t`` from the council events of its window.

    ``exp((0.5 + dep01) * (beta_ev * min(EV, cap) + beta_ex * min(EX, cap)))``
    with ``EV``, ``EX`` the (weeks x areas) counts in weeks ``t - hi .. t - lo``
    and ``dep01`` = (10 - imd_decile) / 9.
    """
    lo, hi = c.council_lags
    window = slice(max(0, t - hi), max(0, t - lo + 1))
    ev = np.minimum(evictions[window].sum(axis=0), c.council_cap[0])
    ex = np.minimum(exclusions[window].sum(axis=0), c.council_cap[1])
    scale = 0.5 + dep01
    return np.exp(scale * (c.beta_eviction * ev + c.beta_exclusion * ex))


def simulate_process(
    areas: pd.DataFrame,
    neighbours: np.ndarray,
    calendar: pd.DataFrame,
    c: ProcessConstants,
    rng: np.random.Generator,
    *,
    progress=None,
) -> LatentProcess:
    """Run the discrete-time process week by week.

    Only the columns in ``PROCESS_COLUMNS`` are read from ``areas``.
    """
    areas = areas.loc[:, list(PROCESS_COLUMNS)]
    n, t_n = len(areas), len(calendar)
    w = _adjacency_matrix(neighbours, n)
    base, late = area_rates(areas, c, rng)
    armed_p, home = area_mixes(areas, c, rng)
    dep = (5.5 - areas["imd_decile"].to_numpy()) / 2.87
    dep01 = (10 - areas["imd_decile"].to_numpy()) / 9
    pop = areas["population"].to_numpy() / 1600
    ev_rate = c.eviction_rate * pop * np.exp(c.eviction_deprivation * dep)
    ex_rate = c.exclusion_rate * pop * np.exp(c.exclusion_deprivation * dep)
    shape = (t_n, n)
    lam_base, lam_late = np.zeros(shape), np.zeros(shape)
    incidents, late_inc = np.zeros(shape, np.int32), np.zeros(shape, np.int32)
    armed_inc = np.zeros(shape, np.int32)
    risk = np.zeros(shape, np.float32)
    evictions, exclusions = np.zeros(shape, np.int32), np.zeros(shape, np.int32)
    operation = np.zeros(shape, bool)
    excite, revenge = np.zeros(n), np.zeros(n)
    drift = rng.normal(0, c.drift_sd, n)
    innovation_sd = c.drift_sd * np.sqrt(1 - c.drift_ar**2)
    shock_left = np.zeros(n, np.int32)
    op_left = np.zeros(n, np.int32)
    cal = calendar.to_dict("list")
    for t in range(t_n):
        if t > 0:
            excite = c.hawkes_decay * excite + incidents[t - 1]
            revenge = c.retaliation_decay * revenge + armed_inc[t - 1]
            drift = c.drift_ar * drift + rng.normal(0, innovation_sd, n)
        start = (rng.random(n) < c.eviction_shock_prob) & (shock_left == 0)
        shock_left = np.where(start, c.eviction_shock_weeks, np.maximum(shock_left - 1, 0))
        mult = np.where(shock_left > 0, c.eviction_shock_mult, 1.0)
        evictions[t] = rng.poisson(ev_rate * mult)
        if not cal["school_holiday"][t]:
            exclusions[t] = rng.poisson(ex_rate)
        council = council_multiplier(evictions, exclusions, t, dep01, c)
        op_mult = np.where(op_left > 0, c.operation_effect, 1.0)
        operation[t] = op_left > 0
        hawkes = c.hawkes_self * excite + c.hawkes_neighbour * (w @ excite)
        hawkes += c.retaliation_self * revenge + c.retaliation_neighbour * (w @ revenge)
        risk[t] = np.exp(drift - 0.5 * c.drift_sd**2)
        common = council * op_mult * risk[t]
        lam_base[t] = (base * cal["season"][t] * cal["holiday_base"][t] * common) + hawkes * op_mult
        lam_late[t] = late * cal["nightlife"][t] * cal["holiday_nightlife"][t] * common
        gamma = rng.gamma(c.shock_shape, 1 / c.shock_shape, n)
        total = rng.poisson((lam_base[t] + lam_late[t]) * gamma)
        incidents[t] = total
        share = lam_late[t] / np.maximum(lam_base[t] + lam_late[t], 1e-12)
        late_inc[t] = rng.binomial(total, share)
        armed_inc[t] = rng.binomial(total, armed_p)
        # Decided at the end of week t from counts to date; active from t + 1.
        recent = incidents[t] + (incidents[t - 1] if t > 0 else 0)
        expected = 2 * (base + late)
        trigger = (recent > c.operation_excess * expected + 3) & (op_left <= 1)
        trigger &= rng.random(n) < c.operation_prob
        op_left = np.where(trigger, c.operation_weeks, np.maximum(op_left - 1, 0))
        if progress is not None and (t % 8 == 0 or t == t_n - 1):
            progress("latent process", t + 1, t_n)
    return LatentProcess(
        weeks=pd.DatetimeIndex(calendar["week_start"]),
        lam_base=lam_base,
        lam_late=lam_late,
        incidents=incidents,
        late_incidents=late_inc,
        armed_incidents=armed_inc,
        armed_share=armed_p,
        home_share=home,
        drift=risk,
        evictions=evictions,
        exclusions=exclusions,
        operation=operation,
    )
