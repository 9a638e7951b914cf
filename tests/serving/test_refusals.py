"""A real server refuses to start for an unapproved, tampered or rolled-back version,
and a rollback changes what is served after a restart."""

from __future__ import annotations

import shutil
import sqlite3

import httpx
import mlflow
import pytest
from conftest import start_server, wait_ready

from governance.policy import load_policy
from governance.review import rollback

pytestmark = pytest.mark.slow


def copy_registry(city, tmp_path) -> str:
    db = tmp_path / "mlflow.db"
    with sqlite3.connect(city.uri.removeprefix("sqlite:///")) as src, sqlite3.connect(db) as dst:
        src.backup(dst)
    return f"sqlite:///{db}"


def refused(city, tag, tmp_path, **env) -> str:
    server = start_server(city, tag, env, tmp_path / "server.log")
    try:
        ready = wait_ready(server, timeout=90)
        if ready:
            return ""
        server.process.wait(timeout=30)
        assert server.process.returncode != 0
        return server.output()
    finally:
        server.stop()


def test_unapproved_version_is_refused(city, tmp_path):
    uri = copy_registry(city, tmp_path)
    mlflow.MlflowClient(uri, uri).set_model_version_tag(
        "harmcast-violence", "2", "harmcast.approval_status", "pending"
    )
    output = refused(city, city.bento_tags[2], tmp_path, HARMCAST_TRACKING_URI=uri)
    assert "NotApproved" in output
    assert "harmcast-violence version 2 is not approved for serving" in output


def test_tampered_card_is_refused(city, tmp_path):
    home = tmp_path / "bentoml"
    shutil.copytree(city.bentoml_home, home)
    name, version = city.bento_tags[2].split(":")
    card = home / "models" / name / version / "card" / "card.json"
    card.write_text(card.read_text().replace("prevention", "enforcement"))
    output = refused(city, city.bento_tags[2], tmp_path, BENTOML_HOME=str(home))
    assert "the card changed after approval" in output


def test_rollback_changes_what_is_served_after_restart(city, tmp_path):
    uri = copy_registry(city, tmp_path)
    rollback(
        model_name="harmcast-violence",
        reviewer="r.adeyemi",
        rationale="drift found",
        policy=load_policy(),
        tracking_uri=uri,
        audit_log=tmp_path / "audit.jsonl",
    )
    output = refused(city, city.bento_tags[2], tmp_path, HARMCAST_TRACKING_URI=uri)
    assert "no longer holds the 'production' alias (production is version 1)" in output
    server = start_server(
        city,
        city.bento_tags[1],
        {"HARMCAST_TRACKING_URI": uri, "HARMCAST_PLANNER_TOKENS": "t0k3n"},
        tmp_path / "v1.log",
    )
    try:
        assert wait_ready(server), server.output()
        body = httpx.post(
            f"{server.url}/forecast",
            json={"areas": ["SYN00001"]},
            headers={"Authorization": "Bearer t0k3n"},
        ).json()
    finally:
        server.stop()
    frame = city.snapshots[1].frame
    v1 = frame[(frame["area_code"] == "SYN00001") & (frame["horizon"] == 1)]["mu"].item()
    v2 = city.snapshots[2].frame.query("area_code == 'SYN00001' and horizon == 1")["mu"].item()
    assert body["model"]["version"] == "1"
    assert body["forecasts"][0]["expected_count"] == pytest.approx(v1)
    assert v1 != pytest.approx(v2)


def test_tampered_snapshot_is_refused(city, tmp_path):
    """The attack as filed: an area's forecast set to 0.01 and the sha256 beside it updated."""
    from test_integrity import tamper_like_an_attacker

    from serving.snapshot import snapshot_sha256

    home = tmp_path / "bentoml"
    shutil.copytree(city.bentoml_home, home)
    name, version = city.bento_tags[2].split(":")
    snapshot = home / "models" / name / version / "snapshot"
    recorded = snapshot_sha256(snapshot)
    tamper_like_an_attacker(snapshot)
    output = refused(
        city, city.bento_tags[2], tmp_path, BENTOML_HOME=str(home), HARMCAST_TRACKING_URI=city.uri
    )
    assert "NotApproved" in output
    assert recorded in output and snapshot_sha256(snapshot) in output
    assert "the snapshot changed after it was recorded" in output
