"""A real server refuses to start for an unapproved, tampered or rolled-back version,
and a rollback changes what is served after a restart."""

from __future__ import annotations

import json
import shutil
import sqlite3
from pathlib import Path

import httpx
import mlflow
import pytest
from conftest import start_server, wait_ready

from governance.review import rollback

pytestmark = pytest.mark.slow


def copy_root(city, tmp_path) -> tuple[str, Path]:
    """A copy of the city's governed root (board, keys, log, cards, registry) to tamper with."""
    root = tmp_path / "root"
    for name in ("governance", "governance_log", "model_cards", ".harmcast"):
        shutil.copytree(city.root / name, root / name)
    (root / "mlruns").mkdir()
    db = root / "mlruns" / "mlflow.db"
    with sqlite3.connect(city.uri.removeprefix("sqlite:///")) as src, sqlite3.connect(db) as dst:
        src.backup(dst)
    return f"sqlite:///{db}", root


def _env(uri: str, root: Path, **extra) -> dict[str, str]:
    return {"HARMCAST_TRACKING_URI": uri, "HARMCAST_ROOT": str(root), **extra}


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


def test_forged_version_with_copied_tags_is_refused_at_start_up(city, tmp_path):
    """Attack: a version registered with mlflow.register_model, an approved version's tags
    copied onto it and `production` moved to it; its bento imported by hand."""
    uri, root = copy_root(city, tmp_path)
    client = mlflow.MlflowClient(uri, uri)
    source = client.get_model_version("harmcast-violence", "2")
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    try:
        forged = mlflow.register_model(source.source, "harmcast-violence").version
    finally:
        mlflow.set_tracking_uri(city.uri)
        mlflow.set_registry_uri(city.uri)
    for key, value in source.tags.items():
        client.set_model_version_tag("harmcast-violence", str(forged), key, value)
    client.set_registered_model_alias("harmcast-violence", "production", str(forged))
    # The forged version's bento is version 2's files relabelled as version 3.
    home = tmp_path / "bentoml"
    shutil.copytree(city.bentoml_home, home)
    name, tag = city.bento_tags[2].split(":")
    approval = home / "models" / name / tag / "approval.json"
    record = json.loads(approval.read_text())
    record["version"] = int(forged)
    approval.write_text(json.dumps(record))
    output = refused(city, city.bento_tags[2], tmp_path, **_env(uri, root, BENTOML_HOME=str(home)))
    assert "NotApproved" in output
    assert f"harmcast-violence version {forged}: no register entry signed by harmcast" in output


def test_startup_bundle_refuses_a_forged_version(city, tmp_path, monkeypatch):
    """The same check through serving.store.startup_bundle, in process."""
    from serving.store import startup_bundle
    from training.errors import NotApproved

    uri, root = copy_root(city, tmp_path)
    client = mlflow.MlflowClient(uri, uri)
    path = root / "governance/policy.yaml"
    path.write_text(path.read_text().replace("quorum: 2", "quorum: 1"))
    monkeypatch.setenv("HARMCAST_TRACKING_URI", uri)
    monkeypatch.setenv("HARMCAST_ROOT", str(root))
    import bentoml

    model_path = Path(bentoml.models.get(city.bento_tags[2]).path)
    with pytest.raises(NotApproved, match="policy in force is"):
        startup_bundle(model_path)
    assert str(client.get_model_version_by_alias("harmcast-violence", "production").version) == "2"


def test_unrecorded_snapshot_is_refused(city, tmp_path):
    uri, root = copy_root(city, tmp_path)
    home = tmp_path / "bentoml"
    shutil.copytree(city.bentoml_home, home)
    name, tag = city.bento_tags[2].split(":")
    snapshot = home / "models" / name / tag / "snapshot"
    (snapshot / "extra.csv").write_text("area_code,mu\nSYN00001,99\n")
    output = refused(city, city.bento_tags[2], tmp_path, **_env(uri, root, BENTOML_HOME=str(home)))
    # refused by the store check (hash against the registry) before the evidence check
    assert "NotApproved" in output and "the snapshot changed after it was recorded" in output


def test_tampered_card_is_refused(city, tmp_path):
    home = tmp_path / "bentoml"
    shutil.copytree(city.bentoml_home, home)
    name, version = city.bento_tags[2].split(":")
    card = home / "models" / name / version / "card" / "card.json"
    card.write_text(card.read_text().replace("prevention", "enforcement"))
    output = refused(city, city.bento_tags[2], tmp_path, BENTOML_HOME=str(home))
    assert "the card changed after approval" in output


def test_rollback_changes_what_is_served_after_restart(city, tmp_path):
    from governance.provenance import Governance
    from tests.governance.governed import MODEL

    uri, root = copy_root(city, tmp_path)
    gov = Governance.for_root(root, tracking_uri=uri)
    keys = {m: root / ".harmcast/keys/test" / f"{m}.key" for m in ("r.adeyemi", "j.okafor")}
    for member in keys:
        rollback(gov, model_name=MODEL, version="2", member=member, key=keys[member],
                 rationale="drift found")  # fmt: skip
    output = refused(city, city.bento_tags[2], tmp_path, **_env(uri, root))
    assert "no longer holds the 'production' alias (production is version 1)" in output
    # Moving the alias back by hand serves nothing.
    mlflow.MlflowClient(uri, uri).set_registered_model_alias("harmcast-violence", "production", "2")
    (tmp_path / "again").mkdir()
    output = refused(city, city.bento_tags[2], tmp_path / "again", **_env(uri, root))
    assert "was rolled back by j.okafor, r.adeyemi" in output
    mlflow.MlflowClient(uri, uri).set_registered_model_alias("harmcast-violence", "production", "1")
    server = start_server(
        city,
        city.bento_tags[1],
        _env(uri, root, HARMCAST_PLANNER_TOKENS="t0k3n"),
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


def test_snapshot_and_bento_import_refuse_a_forged_version(city, tmp_path):
    """`harmcast snapshot` and `bento import` resolve production through resolve_approved."""
    from serving.approval import resolve_approved
    from training.errors import NotApproved

    uri, root = copy_root(city, tmp_path)
    client = mlflow.MlflowClient(uri, uri)
    source = client.get_model_version("harmcast-violence", "2")
    forged = client.create_model_version("harmcast-violence", source.source, run_id=None)
    for key, value in source.tags.items():
        client.set_model_version_tag("harmcast-violence", str(forged.version), key, value)
    client.set_registered_model_alias("harmcast-violence", "production", str(forged.version))
    # MLflow fills in the logged model's run: the gate report is there, the register entry is not.
    with pytest.raises(NotApproved, match="no register entry signed by harmcast"):
        resolve_approved(uri, "harmcast-violence", cards_root=root / "model_cards", root=root)
    client.set_registered_model_alias("harmcast-violence", "production", "2")
    approved = resolve_approved(
        uri, "harmcast-violence", cards_root=root / "model_cards", root=root,
        snapshot_dir=city.root / "snapshot-v2",
    )  # fmt: skip
    assert approved.version == 2
    with pytest.raises(NotApproved, match="was never recorded"):
        resolve_approved(uri, "harmcast-violence", cards_root=root / "model_cards", root=root,
                         snapshot_dir=city.root / "snapshot-v1")  # fmt: skip


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
