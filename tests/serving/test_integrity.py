"""What the service serves is the snapshot that was recorded: the snapshot hash,
its records in the registry and the audit log, and the start-up check."""

from __future__ import annotations

import io
import json
import shutil
import sqlite3
from pathlib import Path

import mlflow
import pandas as pd
import pytest
from conftest import MODEL_NAME

from governance.auditlog import read_log
from governance.evidence import canonical_json, sha256_bytes, sha256_file
from governance.provenance import TAG_SNAPSHOT as GOVERNANCE_TAG
from serving.integrity import (
    MSG_SNAPSHOT_DISAGREE,
    MSG_SNAPSHOT_UNRECORDED,
    REGISTRY_SOURCE,
    STORE_SOURCE,
    TAG_SNAPSHOT,
    verify_snapshot,
)
from serving.snapshot import META_FILE, SNAPSHOT_FILE, snapshot_sha256
from serving.store import TRACKING_URI_ENV, startup_bundle, store_metadata
from training.errors import NotApproved


def copy_registry(city, tmp_path) -> str:
    db = tmp_path / "mlflow.db"
    with sqlite3.connect(city.uri.removeprefix("sqlite:///")) as src, sqlite3.connect(db) as dst:
        src.backup(dst)
    return f"sqlite:///{db}"


def copy_model(city, tmp_path, version=2):
    name, tag_version = city.bento_tags[version].split(":")
    dst = tmp_path / "model"
    shutil.copytree(city.bentoml_home / "models" / name / tag_version, dst)
    return dst


def tamper_like_an_attacker(snapshot_dir, area="SYN00001", value=0.01):
    """Set one area's expected count and rewrite the parquet's sha256 in the meta beside it."""
    parquet, meta_path = snapshot_dir / SNAPSHOT_FILE, snapshot_dir / META_FILE
    frame = pd.read_parquet(parquet)
    frame.loc[frame["area_code"] == area, "mu"] = value
    buffer = io.BytesIO()
    frame.to_parquet(buffer, index=False)
    parquet.write_bytes(buffer.getvalue())
    meta = json.loads(meta_path.read_text())
    meta["sha256"] = sha256_bytes(buffer.getvalue())
    meta_path.write_text(json.dumps(meta))


def test_snapshot_hash_is_the_contract_definition(tmp_path, city):
    folder = tmp_path / "snap"
    shutil.copytree(city.root / "snapshot-v2", folder)
    for extra in folder.iterdir():  # the briefing's inputs: only the parquet and its meta stay
        if extra.name not in (SNAPSHOT_FILE, META_FILE):
            extra.unlink()
    expected = sha256_bytes(canonical_json({SNAPSHOT_FILE: sha256_file(folder / SNAPSHOT_FILE)}))
    assert snapshot_sha256(folder) == expected
    meta = json.loads((folder / META_FILE).read_text())
    assert meta["snapshot_sha256"] == expected
    # the meta is not covered (it carries the hash); any other file is
    (folder / META_FILE).write_text((folder / META_FILE).read_text() + " ")
    assert snapshot_sha256(folder) == expected
    (folder / "briefing.json").write_text("{}")
    assert snapshot_sha256(folder) != expected


def test_serving_and_governance_name_the_same_tag():
    assert TAG_SNAPSHOT == GOVERNANCE_TAG == "harmcast.snapshot_sha256"
    project = Path(__file__).resolve().parents[2]
    sources = {
        path.relative_to(project).as_posix(): path.read_text()
        for package in ("training", "governance", "serving", "monitoring", "harmcast")
        for path in sorted((project / package).rglob("*.py"))
    }
    for tag in ("snapshot_sha256", "gate", "approval_status", "card_sha256", "model_sha256"):
        defining = [name for name, text in sources.items() if f'"harmcast.{tag}"' in text]
        assert defining == ["governance/provenance.py"], tag


def test_import_recorded_the_directory_hash_in_the_store_and_the_registry(city):
    model = city.bentoml_home / "models" / MODEL_NAME / city.bento_tags[2].split(":")[1]
    digest = snapshot_sha256(model / "snapshot")
    assert store_metadata(model)["snapshot_sha256"] == digest
    assert digest == snapshot_sha256(city.root / "snapshot-v2")
    tags = mlflow.MlflowClient(city.uri, city.uri).get_model_version(MODEL_NAME, "2").tags
    assert tags[TAG_SNAPSHOT] == digest
    log = read_log(city.root / "governance_log" / "audit.jsonl")
    (entry,) = [e for e in log if e["version"] == "2" and e["action"] == "snapshot"]
    assert entry["details"]["snapshot_sha256"] == digest


@pytest.mark.parametrize("registry", [True, False], ids=["registry", "store-only"])
def test_tampered_snapshot_is_refused_naming_the_file_and_both_hashes(
    city, tmp_path, monkeypatch, registry
):
    model = copy_model(city, tmp_path)
    recorded = snapshot_sha256(model / "snapshot")
    tamper_like_an_attacker(model / "snapshot")
    if registry:
        monkeypatch.setenv(TRACKING_URI_ENV, copy_registry(city, tmp_path))
    else:
        monkeypatch.delenv(TRACKING_URI_ENV, raising=False)
    with pytest.raises(NotApproved) as info:
        startup_bundle(model)
    message = str(info.value)
    assert str(model / "snapshot") in message and SNAPSHOT_FILE in message
    assert recorded in message and snapshot_sha256(model / "snapshot") in message
    assert (REGISTRY_SOURCE if registry else STORE_SOURCE) in message


def test_registry_decides_even_when_the_store_metadata_was_rewritten(city, tmp_path, monkeypatch):
    model = copy_model(city, tmp_path)
    tamper_like_an_attacker(model / "snapshot")
    info = model / "model.yaml"
    info.write_text(info.read_text().replace(store_metadata(model)["snapshot_sha256"], "f" * 64))
    monkeypatch.setenv(TRACKING_URI_ENV, copy_registry(city, tmp_path))
    with pytest.raises(NotApproved) as refused:
        startup_bundle(model)
    registry = mlflow.MlflowClient(city.uri, city.uri).get_model_version(MODEL_NAME, "2")
    assert str(refused.value) == MSG_SNAPSHOT_DISAGREE.format(
        name=MODEL_NAME,
        version=2,
        registry=registry.tags[TAG_SNAPSHOT],
        tag=TAG_SNAPSHOT,
        store="f" * 64,
    )


def test_a_version_without_a_recorded_snapshot_is_refused(city, tmp_path, monkeypatch):
    uri = copy_registry(city, tmp_path)
    mlflow.MlflowClient(uri, uri).delete_model_version_tag(MODEL_NAME, "2", TAG_SNAPSHOT)
    monkeypatch.setenv(TRACKING_URI_ENV, uri)
    with pytest.raises(NotApproved) as info:
        startup_bundle(copy_model(city, tmp_path))
    assert str(info.value) == MSG_SNAPSHOT_UNRECORDED.format(
        name=MODEL_NAME, version=2, source=REGISTRY_SOURCE
    )


def test_untouched_snapshot_starts_with_and_without_the_registry(city, tmp_path, monkeypatch):
    model = copy_model(city, tmp_path)
    monkeypatch.setenv(TRACKING_URI_ENV, copy_registry(city, tmp_path))
    monkeypatch.setenv("HARMCAST_ROOT", str(city.root))  # the sealed board and the audit log
    assert startup_bundle(model)[1] is True
    monkeypatch.delenv(TRACKING_URI_ENV)
    bundle, checked = startup_bundle(model)
    assert checked is False and bundle.approval["version"] == 2


def test_store_only_check_refuses_a_model_imported_without_a_hash(tmp_path):
    snap = tmp_path / "snapshot"
    snap.mkdir()
    (snap / SNAPSHOT_FILE).write_bytes(b"x")
    with pytest.raises(NotApproved) as info:
        verify_snapshot(
            snap, name=MODEL_NAME, version=3, registry=None, store=None, registry_reachable=False
        )
    assert str(info.value) == MSG_SNAPSHOT_UNRECORDED.format(
        name=MODEL_NAME, version=3, source=STORE_SOURCE
    )
