"""The briefing's extra snapshot files: weeks observed vs forecast, last week's forecast, shapes."""

from __future__ import annotations

import json
import shutil

import pandas as pd
import pytest

from serving.briefing.inputs import (
    BOUNDARIES_FILE,
    BRIEFING_META_FILE,
    HISTORY_FILE,
    HISTORY_WEEKS,
    PREVIOUS_FILE,
    boundaries_geojson,
)
from serving.briefing.pages import briefing_csv, map_svg
from serving.briefing.view import Briefing
from training.errors import SchemaError


def test_history_is_observed_against_one_week_ahead_forecasts(city):
    history = pd.read_parquet(city.root / "snapshot-v2" / HISTORY_FILE)
    origin = city.features["origin_week"].max()
    assert history.groupby("area_code").size().eq(HISTORY_WEEKS).all()
    assert history["week"].max() == origin
    one = city.features[city.features["horizon"] == 1]
    row = one[(one["target_week"] == origin) & (one["area_code"] == "SYN00005")]
    got = history[(history["area_code"] == "SYN00005") & (history["week"] == origin)].iloc[0]
    assert got["observed"] == row["y"].iloc[0]
    assert got["forecast"] == pytest.approx(city.forecasters[2].predict(row)["mu"].iloc[0])


def test_previous_is_last_weeks_forecast_per_horizon(city):
    previous = pd.read_parquet(city.root / "snapshot-v2" / PREVIOUS_FILE)
    origin = city.features["origin_week"].max()
    before = city.features[city.features["origin_week"] == origin - pd.Timedelta(weeks=1)]
    expected = city.forecasters[2].predict(before)["mu"].to_numpy()
    assert sorted(previous["horizon"].unique()) == [1, 2, 3, 4]
    assert previous["previous_mu"].to_numpy() == pytest.approx(expected)


def test_boundaries_only_where_present_and_bad_ones_named(city, tmp_path):
    assert (city.root / "snapshot-v2" / BOUNDARIES_FILE).is_file()
    assert not (city.root / "snapshot-v1" / BOUNDARIES_FILE).exists()
    bad = tmp_path / "b.geojson"
    bad.write_text(json.dumps({"features": [{"properties": {}, "geometry": {}}]}))
    with pytest.raises(SchemaError) as caught:
        boundaries_geojson(bad, {"SYN00001"})
    assert str(bad) in str(caught.value) and "features[0]" in str(caught.value)


def test_circles_without_boundaries_and_stale_inputs_are_not_shown(city, tmp_path):
    approval = {"name": "harmcast-violence", "version": 1, "tags": {}}
    snapshot_dir = tmp_path / "snap"
    shutil.copytree(city.root / "snapshot-v1", snapshot_dir)
    view = Briefing(city.snapshots[1], snapshot_dir, approval)
    svg = str(map_svg(view, 1, "", None))
    assert svg.count("<circle ") == len(city.areas) and "<path " not in svg
    assert view.rows[1][0].change is not None and view.history
    meta = json.loads((snapshot_dir / BRIEFING_META_FILE).read_text())
    meta["snapshot_parquet_sha256"] = "0" * 64
    (snapshot_dir / BRIEFING_META_FILE).write_text(json.dumps(meta))
    stale = Briefing(city.snapshots[1], snapshot_dir, approval)
    assert stale.rows[1][0].change is None and stale.history == {}
    assert not stale.provenance.approved
    assert briefing_csv(stale, horizon=1, district=None).count("\n") == 1 + 4
