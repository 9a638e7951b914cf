"""The weekly cycle refreshes the serving snapshot with the production version only.

A real sqlite MLflow registry: versions are logged, registered on a passed
gate and approved by the board as the pipeline does (``registry_setup``).
Model A is approved (production); model B is trained later but not approved.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from markupsafe import escape
from mlflow import MlflowClient
from registry_setup import build_layers, publish_version
from typer.testing import CliRunner

from governance.policy import load_policy
from governance.servable import MSG_NO_QUORUM
from harmcast.cli import app
from monitoring.monitoring import read_log
from monitoring.weekly import link_week
from monitoring.weekly_cycle import (
    MONITORING_DIR,
    refresh_daily_events,
    refresh_snapshot,
    run_weekly,
)
from monitoring.weekly_slice import split_weeks
from serving.approval import MSG_NO_PRODUCTION
from serving.snapshot import META_FILE, SNAPSHOT_FILE, build_snapshot, write_snapshot
from training.config import ModelParams, Params, load_params, tracking_uri
from training.features import build_features, feature_columns
from training.model import Forecaster, fit_forecaster
from training.panel import read_panel

pytestmark = pytest.mark.slow

# one OpenMP thread: two threads on a busy two-core machine are many times slower
MODEL_A = ModelParams(num_boost_round=30, min_data_in_leaf=20, num_threads=1)
MODEL_B = ModelParams(num_boost_round=8, min_data_in_leaf=50, learning_rate=0.3, num_threads=1)


@pytest.fixture(scope="module")
def history(synthetic_city: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """The city's layers up to three weeks before its end, and models A and B."""
    base = tmp_path_factory.mktemp("weekly-governance")
    raw, weeks = split_weeks(synthetic_city, base / "split", n_weeks=2)
    root = base / "root"
    shutil.copytree(raw, root / "data" / "01_raw")
    params = load_params(None, root=root)
    linked, panel, features = build_layers(params)
    columns = feature_columns(features)
    return {"root": root, "weeks": weeks, "linked": linked, "panel": panel,
            "features": features, "a": fit_forecaster(features, columns, MODEL_A),
            "b": fit_forecaster(features, columns, MODEL_B)}  # fmt: skip


def _project(history: dict, tmp_path: Path) -> Params:
    root = tmp_path / "root"
    shutil.copytree(history["root"], root)
    return load_params(None, root=root)


def _latest(features: pd.DataFrame) -> pd.DataFrame:
    return features.loc[features["origin_week"] == features["origin_week"].max()]


def _expected_mu(params: Params, history: dict, forecaster: Forecaster) -> pd.Series:
    """The forecaster's predictions from the grown panel's latest week, by area and horizon."""
    linked = history["linked"]
    grown = read_panel(params.paths.resolve("panel"))
    records = None  # the near-repeat input: the linked layer, and the week's records once run
    if grown["week_start"].max() > history["panel"]["week_start"].max():
        reference = params.paths.resolve("raw") / "reference"
        week = link_week(history["weeks"][0][1], params.sources, params.link,
                         reference_dir=reference)  # fmt: skip
        records = week.records
    daily = refresh_daily_events(params, records)
    features = build_features(grown, linked.areas, linked.adjacency, params.features, daily)
    latest = _latest(features)
    mu = forecaster.predict(latest)["mu"].to_numpy()
    index = pd.MultiIndex.from_arrays([latest["area_code"].astype(str), latest["horizon"]])
    return pd.Series(mu, index=index).sort_index()


def _snapshot_mu(params: Params) -> pd.Series:
    frame = pd.read_parquet(params.paths.resolve("snapshot") / SNAPSHOT_FILE)
    index = pd.MultiIndex.from_arrays([frame["area_code"].astype(str), frame["horizon"]])
    return pd.Series(frame["mu"].to_numpy(), index=index).sort_index()


def _meta(params: Params) -> dict:
    return json.loads((params.paths.resolve("snapshot") / META_FILE).read_text())


def test_snapshot_comes_from_the_approved_production_version(history, tmp_path):
    params, policy = _project(history, tmp_path), load_policy()
    linked = history["linked"]
    version = publish_version(params, policy, history["a"], _latest(history["features"]))
    first = refresh_snapshot(params, policy, history["panel"], linked.areas, linked.adjacency)
    assert first.refreshed and first.model_version == str(version)
    week, folder = history["weeks"][0]
    result = run_weekly(params, policy, folder)
    entry = result.entry
    assert entry["snapshot_refreshed"] is True and entry["snapshot_reason"] is None
    assert entry["snapshot_model_version"] == str(version) == "1"
    assert entry["snapshot_origin"] == f"{week:%Y-%m-%d}"
    meta = _meta(params)
    assert (meta["model_name"], meta["model_version"]) == (params.tracking.registered_model, "1")
    assert meta["origin_week"] == f"{week:%Y-%m-%d}"
    # the briefing's inputs were rebuilt for this very snapshot, not left from the last one
    briefing = json.loads((params.paths.resolve("snapshot") / "briefing_meta.json").read_text())
    assert briefing["snapshot_parquet_sha256"] == meta["sha256"]
    assert briefing["origin_week"] == meta["origin_week"]
    expected, got = _expected_mu(params, history, history["a"]), _snapshot_mu(params)
    assert got.index.equals(expected.index)
    np.testing.assert_allclose(got.to_numpy(), expected.to_numpy(), rtol=1e-9)


def test_a_newer_unapproved_model_never_reaches_the_snapshot(history, tmp_path):
    params, policy = _project(history, tmp_path), load_policy()
    linked = history["linked"]
    latest = _latest(history["features"])
    publish_version(params, policy, history["a"], latest)
    candidate = publish_version(params, policy, history["b"], latest, approved=False)
    assert candidate == 2
    in_models = Forecaster.load(params.paths.resolve("models"))
    np.testing.assert_allclose(in_models.predict_mu(latest), history["b"].predict_mu(latest))
    refresh_snapshot(params, policy, history["panel"], linked.areas, linked.adjacency)
    result = run_weekly(params, policy, history["weeks"][0][1])
    assert result.snapshot.refreshed and result.snapshot.model_version == "1"
    assert _meta(params)["model_version"] == "1"
    got = _snapshot_mu(params)
    np.testing.assert_allclose(got, _expected_mu(params, history, history["a"]), rtol=1e-9)
    from_b = _expected_mu(params, history, history["b"])
    assert not np.allclose(got.to_numpy(), from_b.to_numpy(), rtol=1e-3)


def test_without_a_servable_production_version_the_snapshot_is_left_alone(history, tmp_path):
    params, policy = _project(history, tmp_path), load_policy()
    publish_version(params, policy, history["b"], _latest(history["features"]), approved=False)
    published = build_snapshot(history["features"], history["a"], history["linked"].areas,
                               policy_coverage=0.1, model_version="0")  # fmt: skip
    snapshot_dir = params.paths.resolve("snapshot")
    write_snapshot(published, snapshot_dir)
    before = {n: (snapshot_dir / n).read_bytes() for n in (SNAPSHOT_FILE, META_FILE)}
    name, uri = params.tracking.registered_model, tracking_uri(params)
    no_production = MSG_NO_PRODUCTION.format(name=name, uri=uri)
    # someone points production at the pending candidate, bypassing the board
    from governance.board import policy_in_force

    not_approved = MSG_NO_QUORUM.format(
        model=name, version="1", members="nobody", n=0, quorum=2,
        policy=policy_in_force(params.paths.root).shas[-1][:12], ignored="",
    )  # fmt: skip
    log = params.paths.root / MONITORING_DIR / "monitoring.jsonl"
    for k, reason in enumerate((no_production, not_approved)):
        if k == 1:
            MlflowClient(uri, uri).set_registered_model_alias(name, "production", "1")
        args = ["weekly", "--data", str(history["weeks"][k][1]), "--root", str(params.paths.root)]
        result = CliRunner().invoke(app, args)
        assert result.exit_code == 0, result.output
        output = "".join(result.output.split())  # rich wraps long paths anywhere
        assert "snapshotnotrefreshed:" in output and "".join(reason.split()) in output
        assert {n: (snapshot_dir / n).read_bytes() for n in before} == before
        entry = read_log(log)[-1]
        assert entry["week"] == f"{history['weeks'][k][0]:%Y-%m-%d}"
        assert entry["snapshot_refreshed"] is False and entry["snapshot_reason"] == reason
        assert entry["snapshot_origin"] is None and entry["snapshot_model_version"] is None
        html = (log.parent / "monitoring_report.html").read_text()
        assert "snapshot_refreshed: false" in html and str(escape(reason)) in html
    assert (
        len(read_panel(params.paths.resolve("panel"))["week_start"].unique())
        == len(history["panel"]["week_start"].unique()) + 2
    )


def test_refresh_reads_its_own_registry_whatever_mlflow_points_at(history, tmp_path):
    import mlflow

    params, policy = _project(history, tmp_path), load_policy()
    linked = history["linked"]
    version = publish_version(params, policy, history["a"], _latest(history["features"]))
    before = mlflow.get_tracking_uri(), mlflow.get_registry_uri()
    decoy = f"sqlite:///{tmp_path / 'decoy.db'}"  # another project's (empty) registry
    mlflow.set_tracking_uri(decoy)
    mlflow.set_registry_uri(decoy)
    try:
        result = refresh_snapshot(params, policy, history["panel"], linked.areas, linked.adjacency)
    finally:
        mlflow.set_tracking_uri(before[0])
        mlflow.set_registry_uri(before[1])
    assert result.refreshed and result.model_version == str(version)
    expected, got = _expected_mu(params, history, history["a"]), _snapshot_mu(params)
    assert got.index.equals(expected.index)
    np.testing.assert_allclose(got.to_numpy(), expected.to_numpy(), rtol=1e-9)


def _written(params: Params) -> dict[str, bytes | None]:
    """The bytes of every file the weekly cycle writes (None when absent)."""
    snapshot, monitoring = params.paths.resolve("snapshot"), params.paths.root / MONITORING_DIR
    paths = [params.paths.resolve("panel") / "panel.parquet", snapshot / SNAPSHOT_FILE,
             snapshot / META_FILE, monitoring / "monitoring.jsonl",
             monitoring / "monitoring_report.html"]  # fmt: skip
    return {str(p): p.read_bytes() if p.is_file() else None for p in paths}


def _published(history: dict, tmp_path: Path, name: str) -> Params:
    """A project with model A in production and its first snapshot published."""
    params = load_params(None, root=tmp_path / name)
    shutil.copytree(history["root"], params.paths.root)
    linked = history["linked"]
    publish_version(params, load_policy(), history["a"], _latest(history["features"]))
    refresh_snapshot(params, load_policy(), history["panel"], linked.areas, linked.adjacency)
    return params


def test_a_failed_snapshot_refresh_changes_no_file_and_the_week_can_be_rerun(
    history, tmp_path, monkeypatch
):
    import monitoring.weekly_cycle as weekly_cycle

    params, twin = _published(history, tmp_path, "a"), _published(history, tmp_path, "b")
    policy, folder = load_policy(), history["weeks"][0][1]
    before = _written(params)
    assert before[str(params.paths.resolve("panel") / "panel.parquet")] is not None

    def unreadable_model(_params):
        raise OSError("model.lgb: input/output error")

    monkeypatch.setattr(weekly_cycle, "production_forecaster", unreadable_model)
    with pytest.raises(OSError, match="input/output error"):
        run_weekly(params, policy, folder)
    assert _written(params) == before
    assert not list(params.paths.root.rglob("*.tmp"))
    monkeypatch.undo()
    rerun, straight = run_weekly(params, policy, folder), run_weekly(twin, policy, folder)
    assert rerun.snapshot.refreshed and straight.snapshot.refreshed
    panels = [read_panel(p.paths.resolve("panel")) for p in (params, twin)]
    pd.testing.assert_frame_equal(panels[0], panels[1])
    logs = [[{k: v for k, v in e.items() if k != "seconds"} for e in read_log(r.log_path)]
            for r in (rerun, straight)]  # fmt: skip
    assert len(logs[0]) == 1 and logs[0] == logs[1]


def test_a_full_disk_while_writing_leaves_every_file_as_it_was(history, tmp_path, monkeypatch):
    import errno

    import training.atomic as atomic

    params, policy = _published(history, tmp_path, "a"), load_policy()
    before = _written(params)
    stage = atomic._stage

    def full_disk(path: Path, data: bytes) -> Path:
        if path.name == "monitoring.jsonl":  # the last file staged: the others are on disk
            raise OSError(errno.ENOSPC, "No space left on device", str(path))
        return stage(path, data)

    monkeypatch.setattr(atomic, "_stage", full_disk)
    with pytest.raises(OSError, match="No space left"):
        run_weekly(params, policy, history["weeks"][0][1])
    assert _written(params) == before
    assert not list(params.paths.root.rglob("*.tmp"))


def test_snapshot_command_on_a_root_without_a_policy_uses_the_packaged_one(history, tmp_path):
    params, policy = _project(history, tmp_path), load_policy()
    assert not params.paths.resolve("policy").exists()
    features_dir = params.paths.resolve("features")
    features_dir.mkdir(parents=True)
    history["features"].to_parquet(features_dir / "features.parquet", index=False)
    publish_version(params, policy, history["a"], _latest(history["features"]))
    result = CliRunner().invoke(app, ["snapshot", "--root", str(params.paths.root)])
    assert result.exit_code == 0, result.output
    assert _meta(params)["hotspot_coverage"] == policy.serving.hotspot_coverage
    # the briefing's inputs sit beside it, with the city's polygons
    snapshot_dir = params.paths.resolve("snapshot")
    briefing = json.loads((snapshot_dir / "briefing_meta.json").read_text())
    assert briefing["snapshot_parquet_sha256"] == _meta(params)["sha256"]
    shapes = json.loads((snapshot_dir / "boundaries.geojson").read_text())["features"]
    n_areas = len(history["linked"].areas)
    assert len(shapes) == n_areas and shapes[0]["geometry"]["type"] == "Polygon"
    history_frame = pd.read_parquet(snapshot_dir / "briefing_history.parquet")
    assert history_frame["area_code"].nunique() == n_areas


def test_weekly_refresh_records_the_snapshots_hash_for_bento_import(history, tmp_path):
    from governance.auditlog import default_log_path
    from governance.auditlog import read_log as read_audit
    from governance.provenance import TAG_SNAPSHOT
    from serving.snapshot import snapshot_sha256

    params, policy = _project(history, tmp_path), load_policy()
    version = publish_version(params, policy, history["a"], _latest(history["features"]))
    linked = history["linked"]
    refresh_snapshot(params, policy, history["panel"], linked.areas, linked.adjacency)
    args = ["weekly", "--data", str(history["weeks"][0][1]), "--root", str(params.paths.root)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    digest = snapshot_sha256(params.paths.resolve("snapshot"))
    uri = tracking_uri(params)
    tags = MlflowClient(uri, uri).get_model_version(params.tracking.registered_model, version).tags
    assert tags[TAG_SNAPSHOT] == digest
    entry = read_audit(default_log_path(params.paths.root))[-1]
    assert entry["action"] == "snapshot" and entry["details"]["snapshot_sha256"] == digest


def test_weekly_with_an_approved_version_and_no_snapshot_yet_works(history, tmp_path):
    params, policy = _project(history, tmp_path), load_policy()
    publish_version(params, policy, history["a"], _latest(history["features"]))
    assert not params.paths.resolve("snapshot").exists()
    args = ["weekly", "--data", str(history["weeks"][0][1]), "--root", str(params.paths.root)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "no published forecast for this week: nothing scored" in result.output
    report = (params.paths.root / MONITORING_DIR / "monitoring_report.html").read_text()
    assert "not scored" in report
    assert (params.paths.resolve("snapshot") / SNAPSHOT_FILE).is_file()
