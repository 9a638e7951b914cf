"""The synthetic city: formats, determinism, oracle and planted effects."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from training.config import SynthParams
from training.errors import ConfigError
from training.synth.city import NOT_A_MONDAY, generate_city
from training.synth.geometry import build_geometry
from training.synth.observe import ObservationConstants, observe_incidents
from training.synth.places import AUDIT_BANDS, build_places
from training.synth.process import (
    PROCESS_COLUMNS,
    ProcessConstants,
    council_multiplier,
    simulate_process,
    week_calendar,
)
from training.synth.records import POLICE_COLUMNS

VIOLENT = ("Violence and sexual offences", "Robbery", "Possession of weapons")
SMALL = {"preset": "tiny", "n_areas": 30, "n_weeks": 20, "seed": 5}


def _police(raw: Path) -> pd.DataFrame:
    files = sorted(raw.glob("police/*/*-street.csv"))
    return pd.concat(
        [pd.read_csv(f, dtype=str, keep_default_na=False).assign(_file=f.name) for f in files]
    )


def _istv(raw: Path) -> pd.DataFrame:
    return pd.concat(
        [pd.read_csv(f, dtype=str, keep_default_na=False) for f in sorted(raw.glob("istv/*.csv"))]
    )


def _digest(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


@pytest.fixture(scope="module")
def police(synthetic_city: Path) -> pd.DataFrame:
    return _police(synthetic_city)


@pytest.fixture(scope="module")
def areas(synthetic_city: Path) -> pd.DataFrame:
    return pd.read_csv(synthetic_city / "reference" / "areas.csv")


def test_police_files_follow_police_uk_schema(synthetic_city: Path, police: pd.DataFrame) -> None:
    for f in synthetic_city.glob("police/*/*-street.csv"):
        header = f.read_text().splitlines()[0].split(",")
        assert tuple(header) == POLICE_COLUMNS
        assert f.name.startswith(f.parent.name + "-") and f.name.endswith("-street.csv")
    assert (police["Month"] == police["Date"].str[:7]).all()
    assert (police["_file"].str[:7] == police["Month"]).all()
    nowhere = police["Location"] == "No Location"
    assert 0.005 < nowhere.mean() < 0.05
    assert (
        (police.loc[nowhere, ["Longitude", "Latitude", "LSOA code", "LSOA name"]] == "").all().all()
    )
    located = police[~nowhere]
    assert located["Location"].str.startswith("On or near ").all()
    asb = police["Crime type"] == "Anti-social behaviour"
    assert (police.loc[asb, "Crime ID"] == "").all()
    assert police.loc[~asb, "Crime ID"].str.fullmatch(r"[0-9a-f]{64}").all()


def test_police_location_codes_match_reference(police: pd.DataFrame, areas: pd.DataFrame) -> None:
    located = police[police["Location"] != "No Location"]
    names = dict(zip(areas["area_code"], areas["area_name"], strict=True))
    assert located["LSOA code"].isin(areas["area_code"]).all()
    assert (located["LSOA code"].map(names) == located["LSOA name"]).all()
    assert areas["area_code"].str.fullmatch(r"SYN\d{5}").all()


def test_other_files_have_contract_headers(synthetic_city: Path) -> None:
    expected = {
        "ambulance/callouts.csv": "incident_id,incident_datetime,latitude,longitude,category",
        "council/school_exclusions.csv": "area_code,date,exclusion_type",
        "council/evictions.csv": "area_code,date",
        "council/licensed_premises.csv": "premises_id,name,latitude,longitude,"
        "premises_type,latest_closing_hour",
        "reference/areas.csv": "area_code,area_name,district,latitude,longitude,area_km2,"
        "population,imd_decile,audit_share_white,audit_share_black,audit_share_asian,audit_share_mixed_other,"
        "audit_ethnic_band",
        "reference/adjacency.csv": "area_code,neighbour_code",
        "reference/gazetteer.csv": "name,area_code,kind",
    }
    for name, header in expected.items():
        assert (synthetic_city / name).read_text().splitlines()[0] == header, name
    istv = list(synthetic_city.glob("istv/*.csv"))
    assert istv
    for f in istv:
        assert f.read_text().splitlines()[0] == (
            "site_code,arrival_datetime,assault_datetime,assault_method,location_type,"
            "location_description"
        )
    city = json.loads((synthetic_city / "city.json").read_text())
    assert city["n_areas"] == 60 and city["n_weeks"] == 80 and "process" in city


def test_reference_is_consistent(synthetic_city: Path, areas: pd.DataFrame) -> None:
    adj = pd.read_csv(synthetic_city / "reference" / "adjacency.csv")
    pairs = set(zip(adj["area_code"], adj["neighbour_code"], strict=True))
    assert all((b, a) in pairs for a, b in pairs)
    assert adj["area_code"].nunique() == len(areas)
    geo = json.loads((synthetic_city / "reference" / "boundaries.geojson").read_text())
    codes = [f["properties"]["area_code"] for f in geo["features"]]
    assert codes == areas["area_code"].tolist()
    assert {f["geometry"]["type"] for f in geo["features"]} == {"Polygon"}
    assert areas["population"].between(1000, 3000).all()
    assert set(areas["imd_decile"]) == set(range(1, 11))
    assert set(areas["audit_ethnic_band"]) <= set(AUDIT_BANDS)
    gaz = pd.read_csv(synthetic_city / "reference" / "gazetteer.csv")
    streets = gaz[gaz["kind"] == "street"]
    ambiguous = streets.groupby("name")["area_code"].nunique()
    assert (ambiguous > 1).sum() >= 1


def test_generation_is_deterministic(tmp_path: Path) -> None:
    generate_city(SynthParams(**SMALL), tmp_path / "a")
    generate_city(SynthParams(**SMALL), tmp_path / "b")
    generate_city(SynthParams(**{**SMALL, "seed": 6}), tmp_path / "c")
    assert _digest(tmp_path / "a") == _digest(tmp_path / "b")
    assert _digest(tmp_path / "a") != _digest(tmp_path / "c")


def test_start_must_be_a_monday(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as exc:
        generate_city(SynthParams(**{**SMALL, "start": "2022-01-04"}), tmp_path)
    assert str(exc.value) == NOT_A_MONDAY.format(start="2022-01-04")


def test_oracle_has_one_row_per_area_week(synthetic_city: Path, areas: pd.DataFrame) -> None:
    oracle = pd.read_parquet(synthetic_city / "oracle" / "expected_counts.parquet")
    assert list(oracle.columns) == [
        "area_code",
        "week_start",
        "expected_violence",
        "expected_ae_assault",
    ]
    assert len(oracle) == len(areas) * 80
    assert not oracle.duplicated(["area_code", "week_start"]).any()
    assert set(oracle["area_code"]) == set(areas["area_code"])
    assert (oracle["week_start"].dt.day_of_week == 0).all()
    assert oracle["week_start"].min() == pd.Timestamp("2022-01-03")
    assert (oracle["expected_violence"] > oracle["expected_ae_assault"]).all()


def test_oracle_is_calibrated_against_ae_records(synthetic_city: Path) -> None:
    oracle = pd.read_parquet(synthetic_city / "oracle" / "expected_counts.parquet")
    ratio = len(_istv(synthetic_city)) / oracle["expected_ae_assault"].sum()
    assert 0.9 < ratio < 1.1


def test_late_premises_raise_violence(synthetic_city: Path, police: pd.DataFrame) -> None:
    premises = pd.read_csv(synthetic_city / "council" / "licensed_premises.csv", dtype=str)
    gaz = pd.read_csv(synthetic_city / "reference" / "gazetteer.csv")
    premises = premises.merge(gaz[gaz["kind"] == "venue"], on="name")
    late = premises[premises["latest_closing_hour"] < "06:00"].groupby("area_code").size()
    violent = police[police["Crime type"].isin(VIOLENT) & (police["LSOA code"] != "")]
    per_area = violent.groupby("LSOA code").size()
    areas = pd.read_csv(synthetic_city / "reference" / "areas.csv")["area_code"]
    frame = pd.DataFrame({"late": late.reindex(areas).fillna(0).to_numpy(),
                          "violence": per_area.reindex(areas).fillna(0).to_numpy()})  # fmt: skip
    many = frame.loc[frame["late"] >= 2, "violence"].mean()
    none = frame.loc[frame["late"] == 0, "violence"].mean()
    assert many > 1.5 * none


def test_violence_peaks_in_summer_and_at_weekends(
    synthetic_city: Path, police: pd.DataFrame
) -> None:
    violent = police[police["Crime type"].isin(VIOLENT)]
    dates = pd.to_datetime(
        pd.concat([violent["Date"], _istv(synthetic_city)["arrival_datetime"].str[:10]])
    )
    in_summer = dates.dt.month.isin([6, 7, 8])
    in_winter = dates.dt.month.isin([1, 2, 11]) & ~((dates.dt.month == 1) & (dates.dt.day < 4))
    days = pd.Series(pd.date_range("2022-01-03", periods=80 * 7, freq="D"))
    summer_days = days.dt.month.isin([6, 7, 8]).sum()
    winter_days = (
        days.dt.month.isin([1, 2, 11]) & ~((days.dt.month == 1) & (days.dt.day < 4))
    ).sum()
    assert in_summer.sum() / summer_days > 1.1 * in_winter.sum() / winter_days
    weekend = dates.dt.day_of_week >= 5
    assert weekend.mean() > 2 / 7 + 0.05


def _small_world(seed: int = 1):
    rng = np.random.default_rng(seed)
    geo = build_geometry(40, 5, rng)
    places = build_places(geo, rng)
    calendar = week_calendar("2022-01-03", 30, ProcessConstants())
    return geo, places, calendar


def test_most_ae_assaults_never_reach_police() -> None:
    geo, places, calendar = _small_world()
    latent = simulate_process(
        places.areas, geo.neighbours, calendar, ProcessConstants(), np.random.default_rng(2)
    )
    incidents = observe_incidents(latent, places, ObservationConstants(), np.random.default_rng(3))
    ae = incidents[incidents["ae"]]
    assert len(ae) > 200
    assert (~ae["police"]).mean() > 0.5
    # Ambulances convey most of whom they attend; some are treated at the scene.
    not_ae = incidents.loc[~incidents["ae"], "ambulance"].mean()
    assert 0.1 < not_ae < 0.3 < ae["ambulance"].mean() < 1
    armed = incidents["weapon"].isin([2, 3])
    assert armed.sum() == latent.armed_incidents.sum()


def test_drift_is_persistent_and_weapon_injuries_raise_next_weeks_risk() -> None:
    geo, places, calendar = _small_world()
    c = ProcessConstants()
    latent = simulate_process(places.areas, geo.neighbours, calendar, c, np.random.default_rng(4))
    log_risk = np.log(latent.drift)
    lag1 = np.corrcoef(log_risk[1:].ravel(), log_risk[:-1].ravel())[0, 1]
    assert 0.85 < lag1 < 0.98
    assert 0.2 < log_risk.std() < 0.4
    # Retaliation: the intensity after a week with an armed incident is higher
    # than after a week with as many incidents, none armed.
    lam = latent.lam_base + latent.lam_late
    n, a = latent.incidents[:-1], latent.armed_incidents[:-1]
    nxt = lam[1:] / lam.mean(axis=0)
    one = n == 1
    assert nxt[one & (a == 1)].mean() > nxt[one & (a == 0)].mean() + 0.1


def test_council_events_raise_risk_with_a_lag_more_in_deprived_areas() -> None:
    c = ProcessConstants()
    dep01 = np.array([1.0, 0.0, 1.0, 1.0])  # most deprived, least deprived, ...
    ev = np.zeros((10, 4), int)
    ex = np.zeros((10, 4), int)
    ev[8, :2] = 1  # one eviction a week before week 9 in areas 0 and 1
    ev[8, 2] = 5  # five in area 2: capped
    ev[4, 3] = 1  # five weeks before: outside the window
    mult = council_multiplier(ev, ex, 9, dep01, c)
    assert mult[0] == pytest.approx(np.exp(1.5 * c.beta_eviction))
    assert mult[1] == pytest.approx(np.exp(0.5 * c.beta_eviction))
    assert mult[2] == pytest.approx(np.exp(1.5 * c.beta_eviction * c.council_cap[0]))
    assert mult[3] == 1.0
    assert council_multiplier(ev, ex, 8, dep01, c)[0] == 1.0  # not the same week


def test_audit_columns_do_not_influence_the_process() -> None:
    assert not any(c.startswith("audit_") for c in PROCESS_COLUMNS)
    geo, places, calendar = _small_world()
    shuffled = places.areas.copy()
    audit = [c for c in shuffled.columns if c.startswith("audit_")]
    shuffled[audit] = shuffled[audit].sample(frac=1, random_state=0).to_numpy()
    shuffled["audit_share_white"] = 1.0 - shuffled["audit_share_white"]
    runs = [
        simulate_process(a, geo.neighbours, calendar, ProcessConstants(), np.random.default_rng(9))
        for a in (places.areas, shuffled)
    ]
    assert np.array_equal(runs[0].incidents, runs[1].incidents)
    assert np.array_equal(runs[0].lam_base, runs[1].lam_base)


def test_recording_bias_raises_police_share_in_the_chosen_group(tmp_path: Path) -> None:
    params = {**SMALL, "n_areas": 40, "n_weeks": 40}
    generate_city(SynthParams(**params), tmp_path / "fair")
    generate_city(SynthParams(**params, recording_bias=1.0), tmp_path / "biased")
    areas = pd.read_csv(tmp_path / "fair" / "reference" / "areas.csv")
    group = set(areas.loc[areas["audit_ethnic_band"] == "majority global majority", "area_code"])
    assert group

    def violent_by_group(raw: Path) -> pd.Series:
        police = _police(raw)
        violent = police[police["Crime type"].isin(VIOLENT) & (police["LSOA code"] != "")]
        return violent["LSOA code"].isin(group).value_counts()

    fair, biased = violent_by_group(tmp_path / "fair"), violent_by_group(tmp_path / "biased")
    assert biased[True] > 1.4 * fair[True]
    assert abs(biased[False] - fair[False]) <= 0.05 * fair[False]
    # Bias is observational: the A&E records are unchanged.
    fair_d, biased_d = _digest(tmp_path / "fair"), _digest(tmp_path / "biased")
    assert {k for k in fair_d if fair_d[k] != biased_d[k]} <= {
        k for k in fair_d if k.startswith(("police/", "oracle/", "city.json"))
    }


def test_istv_text_is_noisy_like_a_clerks(synthetic_city: Path) -> None:
    istv = _istv(synthetic_city)
    gaz = set(pd.read_csv(synthetic_city / "reference" / "gazetteer.csv")["name"])
    desc = istv["location_description"]
    exact = desc.isin(gaz).mean()
    lower = desc.str.lower().isin({g.lower() for g in gaz}).mean()
    assert 0.25 < exact < 0.7 and lower > exact
    assert 0.02 < (istv["assault_datetime"] == "").mean() < 0.1
    unusable = desc.str.lower().isin(
        {"", "not known", "n/k", "unknown", "pt unsure", "refused", "?"}
    )
    assert 0.03 < unusable.mean() < 0.25
    assert istv["arrival_datetime"].str.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d").all()
