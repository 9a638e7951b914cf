"""The synthetic city: harmcast's embedded default data.

:func:`generate_city` draws a fictional city (areas, streets, licensed
premises, deprivation), runs a latent weekly violence process with planted
effects, lets police, A&E, the ambulance service and the council observe it,
and writes every raw file of docs/data-contract.md under ``out_dir`` together
with the oracle (the true one-week-ahead conditional expectations) and
``city.json``. The generative process is documented in docs/synthetic-city.md.

Examples
--------
>>> from pathlib import Path; import tempfile
>>> from training.config import SynthParams
>>> params = SynthParams(preset="tiny", n_areas=20, n_weeks=10)
>>> summary = generate_city(params, Path(tempfile.mkdtemp()))
>>> summary.n_areas, summary.n_weeks
(20, 10)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd

from training.config import SynthParams
from training.errors import ConfigError
from training.synth.geometry import ORIGIN_LAT, ORIGIN_LON, build_geometry
from training.synth.observe import (
    ObservationConstants,
    observe_incidents,
    other_crime,
    seen_probabilities,
)
from training.synth.patrols import patrol_frame, plan_patrols
from training.synth.places import build_places
from training.synth.process import ProcessConstants, simulate_process, week_calendar
from training.synth.records import write_ambulance, write_istv, write_police
from training.synth.write import write_council, write_json, write_reference

__all__ = [
    "PRESETS", "PATROL_FILE", "CitySummary", "Progress", "generate_city", "oracle_frame",
    "NOT_A_MONDAY",
]  # fmt: skip

#: The patrol operations' truth, beside the oracle (``oracle/patrols.parquet``).
PATROL_FILE = "patrols.parquet"

#: (n_areas, n_weeks, n_districts) of each preset.
PRESETS: dict[str, tuple[int, int, int]] = {
    "tiny": (60, 80, 8),
    "default": (1000, 156, 10),
    "london": (5000, 260, 12),
    "national": (35700, 260, 12),
}
NOT_A_MONDAY = "synth.start must be a Monday (ISO weeks start on Monday), got {start!r}"
TOO_SMALL = "synth needs at least 8 areas and 4 weeks, got {n_areas} areas and {n_weeks} weeks"

#: ``progress(step, done, total)`` is called as the work advances.
Progress = Callable[[str, int, int], None]


@dataclass(frozen=True)
class CitySummary:
    """What :func:`generate_city` wrote."""

    out_dir: Path
    preset: str
    seed: int
    n_areas: int
    n_weeks: int
    start: str
    end: str
    latent_incidents: int
    mean_incidents_per_area_week: float
    police_rows: int
    istv_rows: int
    ambulance_rows: int
    evictions: int
    exclusions: int
    licensed_premises: int

    def to_dict(self) -> dict:
        """Plain-JSON form."""
        return {k: str(v) if isinstance(v, Path) else v for k, v in asdict(self).items()}


def _sizes(params: SynthParams) -> tuple[int, int, int]:
    n_areas, n_weeks, n_districts = PRESETS[params.preset]
    n_areas = params.n_areas or n_areas
    n_weeks = params.n_weeks or n_weeks
    if n_areas < 8 or n_weeks < 4:
        raise ConfigError(TOO_SMALL.format(n_areas=n_areas, n_weeks=n_weeks))
    if pd.Timestamp(params.start).dayofweek != 0:
        raise ConfigError(NOT_A_MONDAY.format(start=params.start))
    return n_areas, n_weeks, min(n_districts, max(3, n_areas // 6))


def _patrolled(obs: ObservationConstants) -> ObservationConstants:
    """Return the observation constants of an area under a patrol operation."""
    rise = 1 + obs.patrol_recording_uplift
    return replace(obs, p_police={k: min(v * rise, 0.95) for k, v in obs.p_police.items()})


def oracle_frame(
    latent, places, obs: ObservationConstants, patrolled: np.ndarray | None = None
) -> pd.DataFrame:
    """Return the true one-week-ahead conditional expectations per area-week.

    ``expected_violence`` = lam_base * P(seen | base) + lam_late * P(seen | late),
    where "seen" means recorded by police or attending A&E;
    ``expected_ae_assault`` = (lam_base + lam_late) * P(A&E). Both use the
    intensities given history to the end of the previous week, without the
    gamma shock (whose mean is 1).
    """
    seen = seen_probabilities(places, obs, latent)
    violence = latent.lam_base * seen["base"] + latent.lam_late * seen["late"]
    if patrolled is not None and obs.patrol_recording_uplift > 0:
        patrol = seen_probabilities(places, _patrolled(obs), latent)
        violence = np.where(
            patrolled,
            latent.lam_base * patrol["base"] + latent.lam_late * patrol["late"],
            violence,
        )
    ae = (latent.lam_base + latent.lam_late) * seen["ae"]
    n_weeks, n_areas = violence.shape
    codes = places.areas["area_code"].to_numpy()
    return pd.DataFrame(
        {
            "area_code": np.tile(codes, n_weeks),
            "week_start": np.repeat(latent.weeks.to_numpy().astype("datetime64[ns]"), n_areas),
            "expected_violence": violence.ravel(),
            "expected_ae_assault": ae.ravel(),
        }
    )


def generate_city(
    params: SynthParams, out_dir: Path, *, progress: Progress | None = None
) -> CitySummary:
    """Generate a synthetic city and write its raw files under ``out_dir``.

    Parameters
    ----------
    params : preset, seed, sizes, start Monday and recording bias.
    out_dir : the raw layer folder (``data/01_raw``); created if missing.
    progress : optional ``progress(step, done, total)`` callback.

    Returns
    -------
    CitySummary
        Sizes and row counts of what was written.

    Raises
    ------
    ConfigError
        When ``start`` is not a Monday or the city is too small.
    """
    n_areas, n_weeks, n_districts = _sizes(params)
    report = progress or (lambda step, done, total: None)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    streams = [np.random.default_rng(s) for s in np.random.SeedSequence(params.seed).spawn(8)]
    report("geometry", 0, 1)
    geo = build_geometry(n_areas, n_districts, streams[0])
    places = build_places(geo, streams[1])
    report("geometry", 1, 1)
    proc = ProcessConstants()
    obs = ObservationConstants(
        recording_bias=params.recording_bias,
        recording_bias_group=params.recording_bias_group,
        patrol_recording_uplift=params.patrol_recording_uplift,
    )
    calendar = week_calendar(params.start, n_weeks, proc)
    latent = simulate_process(
        places.areas, geo.neighbours, calendar, proc, streams[2], progress=report
    )
    steps = ("reference", "police", "istv", "ambulance", "council", "oracle")
    report("writing", 0, len(steps))
    # Its own stream, so a city without patrols is the same as before they existed.
    patrolled = plan_patrols(
        latent.incidents,
        operations=params.patrol_operations,
        weeks=params.patrol_weeks,
        rng=np.random.default_rng([params.seed, 8]),
    )
    incidents = observe_incidents(latent, places, obs, streams[3], patrolled=patrolled)
    write_reference(geo, places, out_dir)
    report("writing", 1, len(steps))
    violent = {
        "Violence and sexual offences": 1 - obs.robbery_share - obs.weapons_possession_share,
        "Robbery": obs.robbery_share,
        "Possession of weapons": obs.weapons_possession_share,
    }
    other = other_crime(latent, places, obs, streams[4])
    police_rows = write_police(
        incidents, other, places, latent.weeks, out_dir, streams[5], violent_types=violent
    )
    del other
    report("writing", 2, len(steps))
    istv_rows = write_istv(incidents, places, latent.weeks, out_dir, streams[6])
    report("writing", 3, len(steps))
    amb_rows = write_ambulance(incidents, geo, latent.weeks, out_dir, streams[7])
    report("writing", 4, len(steps))
    council = write_council(
        latent.evictions, latent.exclusions, places, latent.weeks, out_dir, streams[7],
        permanent_share=proc.permanent_share,
    )  # fmt: skip
    report("writing", 5, len(steps))
    (out_dir / "oracle").mkdir(exist_ok=True)
    oracle_frame(latent, places, obs, patrolled).to_parquet(
        out_dir / "oracle" / "expected_counts.parquet", index=False
    )
    codes = places.areas["area_code"].to_numpy()
    patrol_frame(patrolled, codes, latent.weeks, obs.patrol_recording_uplift).to_parquet(
        out_dir / "oracle" / PATROL_FILE, index=False
    )
    report("writing", 6, len(steps))
    end = latent.weeks[-1] + pd.Timedelta(days=6)
    summary = CitySummary(
        out_dir=out_dir,
        preset=params.preset,
        seed=params.seed,
        n_areas=n_areas,
        n_weeks=n_weeks,
        start=str(latent.weeks[0].date()),
        end=str(end.date()),
        latent_incidents=int(latent.incidents.sum()),
        mean_incidents_per_area_week=float(latent.incidents.mean()),
        police_rows=police_rows,
        istv_rows=istv_rows,
        ambulance_rows=amb_rows,
        evictions=council["evictions"],
        exclusions=council["school_exclusions"],
        licensed_premises=len(places.premises),
    )
    write_json(
        {
            **summary.to_dict(),
            "out_dir": None,
            "n_districts": n_districts,
            "districts": sorted(places.areas["district"].unique().tolist()),
            "origin": {"latitude": ORIGIN_LAT, "longitude": ORIGIN_LON},
            "synth_params": params.model_dump(),
            "process": proc.to_dict(),
            "observation": obs.to_dict(),
            "holiday_weeks": calendar.loc[calendar["holiday"] != "", ["week_start", "holiday"]]
            .astype(str)
            .to_dict("records"),
            "patrol_area_weeks": int(patrolled.sum()),
            "operations_started": int((np.diff(latent.operation.astype(int), axis=0) == 1).sum()),
        },
        out_dir / "city.json",
    )
    return summary
