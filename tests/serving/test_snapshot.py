from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from serving.snapshot import (
    BIAS_COLUMN,
    MSG_MISSING_COLUMNS,
    build_snapshot,
    contribution_columns,
    read_snapshot,
    write_snapshot,
)
from training.errors import SchemaError


@pytest.fixture(scope="module")
def snapshot(city):
    return city.snapshots[2]


def test_snapshot_is_latest_origin_week_all_areas_and_horizons(city, snapshot):
    frame = snapshot.frame
    latest = city.features["origin_week"].max()
    assert snapshot.meta.origin_week == latest.date().isoformat()
    assert (frame["origin_week"] == latest).all()
    assert len(frame) == len(city.areas) * 4
    assert sorted(frame["horizon"].unique()) == [1, 2, 3, 4]
    assert (frame["target_week"] == latest + pd.to_timedelta(7 * frame["horizon"], "D")).all()
    assert not any(c.startswith("audit_") for c in frame.columns)


def test_snapshot_matches_forecaster_predictions(city, snapshot):
    latest = city.features[city.features["origin_week"] == city.features["origin_week"].max()]
    expected = (
        city.forecasters[2]
        .predict(latest)
        .assign(area_code=latest["area_code"].to_numpy(), horizon=latest["horizon"].to_numpy())
    )
    merged = snapshot.frame.merge(expected, on=["area_code", "horizon"], suffixes=("", "_fc"))
    assert len(merged) == len(snapshot.frame)
    for column in ("mu", "q_lo", "q_hi", "p_any"):
        np.testing.assert_allclose(merged[column], merged[f"{column}_fc"], rtol=1e-12)


def test_contributions_add_up_to_log_mu(snapshot):
    frame = snapshot.frame
    total = frame[contribution_columns(snapshot.meta.feature_names)].sum(axis=1)
    np.testing.assert_allclose(total + frame[BIAS_COLUMN], np.log(frame["mu"]), atol=1e-6)


def test_drivers_are_top_three_by_magnitude_in_plain_words(snapshot):
    frame = snapshot.frame
    row = frame.iloc[0]
    contribs = {n: row[f"contrib__{n}"] for n in snapshot.meta.feature_names}
    top = sorted(contribs, key=lambda n: -abs(contribs[n]))[:3]
    assert [row[f"driver_{i}_feature"] for i in (1, 2, 3)] == top
    for i in (1, 2, 3):
        value = row[f"driver_{i}_contribution"]
        assert row[f"driver_{i}_direction"] == ("raises" if value > 0 else "lowers")
        assert row[f"driver_{i}_description"] != row[f"driver_{i}_feature"]


def test_rank_percentile_and_hotspots_per_horizon(snapshot):
    for _, part in snapshot.frame.groupby("horizon"):
        part = part.sort_values("rank")
        assert part["rank"].tolist() == list(range(1, len(part) + 1))
        assert part["mu"].is_monotonic_decreasing
        assert part["hotspot"].sum() == 4  # 10% of 40 areas
        assert part["hotspot"].iloc[:4].all()
        assert part["percentile"].iloc[0] == 100.0
        assert part["percentile"].between(0, 100).all()


def test_write_then_read_round_trips_and_detects_tampering(city, snapshot, tmp_path):
    written = write_snapshot(snapshot, tmp_path)
    meta = json.loads((tmp_path / "snapshot_meta.json").read_text())
    assert meta["sha256"] == written.meta.sha256 and len(meta["sha256"]) == 64
    assert meta["model_version"] == "2"
    again = read_snapshot(tmp_path)
    pd.testing.assert_frame_equal(again.frame, snapshot.frame)
    tampered = snapshot.frame.assign(mu=snapshot.frame["mu"] * 2)
    tampered.to_parquet(tmp_path / "snapshot.parquet", index=False)
    with pytest.raises(SchemaError, match="does not match"):
        read_snapshot(tmp_path)


def test_a_failed_write_leaves_the_published_snapshot_whole(city, snapshot, tmp_path):
    write_snapshot(snapshot, tmp_path)
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    assert sorted(before) == ["snapshot.parquet", "snapshot_meta.json"]  # no temporaries
    # another version's forecasts whose metadata cannot be written (JSON cannot encode it)
    other = city.snapshots[1]
    broken = replace(other, meta=replace(other.meta, model_version=object()))
    with pytest.raises(TypeError):
        write_snapshot(broken, tmp_path)
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before
    pd.testing.assert_frame_equal(read_snapshot(tmp_path).frame, snapshot.frame)


def test_missing_feature_column_names_it(city):
    features = city.features.drop(columns=["violence_lag1"])
    with pytest.raises(SchemaError) as info:
        build_snapshot(features, city.forecasters[2], city.areas, policy_coverage=0.1)
    assert MSG_MISSING_COLUMNS.format(columns=["violence_lag1"]) in str(info.value)


def test_inputs_are_not_mutated(city):
    features, areas = city.features.copy(), city.areas.copy()
    build_snapshot(city.features, city.forecasters[1], city.areas, policy_coverage=0.2)
    pd.testing.assert_frame_equal(features, city.features)
    pd.testing.assert_frame_equal(areas, city.areas)
