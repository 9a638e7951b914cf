"""The serving commands on a project root: `harmcast snapshot` and `harmcast bento import`
record the snapshot's hash, the import goes to the root's own BentoML store, and
`harmcast serve --root R --host --port` serves with R's params.yaml."""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys

import httpx
import mlflow
import pytest
from conftest import MODEL_NAME, Server, free_port, wait_ready
from test_integrity import tamper_like_an_attacker
from typer.testing import CliRunner

from governance.auditlog import read_log
from governance.provenance import TAG_SNAPSHOT
from governance.servable import MSG_SNAPSHOT
from harmcast.cli import app
from serving.snapshot import snapshot_sha256
from serving.store import MODEL_TAG_ENV, MODEL_TAG_FILE_ENV

pytestmark = pytest.mark.slow


def project_root(city, tmp_path):
    """A root as the pipeline leaves it before `harmcast snapshot`: registry, cards, frames."""
    root = tmp_path / "project"
    (root / "mlruns").mkdir(parents=True)
    src = city.uri.removeprefix("sqlite:///")
    with sqlite3.connect(src) as s, sqlite3.connect(root / "mlruns" / "mlflow.db") as d:
        s.backup(d)
    shutil.copytree(city.cards_root, root / "model_cards")
    for name in ("governance", "governance_log", ".harmcast"):  # the sealed board, keys, log
        shutil.copytree(city.root / name, root / name)
    for layer, name, frame in (
        ("04_features", "features.parquet", city.features),
        ("03_panel", "areas.parquet", city.areas),
    ):
        (root / "data" / layer).mkdir(parents=True)
        frame.to_parquet(root / "data" / layer / name)
    return root


def registry_tag(root, version="2"):
    uri = f"sqlite:///{root}/mlruns/mlflow.db"
    return (
        mlflow.MlflowClient(uri, uri).get_model_version(MODEL_NAME, version).tags.get(TAG_SNAPSHOT)
    )


@pytest.fixture
def root(city, tmp_path, monkeypatch):
    monkeypatch.setenv(MODEL_TAG_FILE_ENV, str(tmp_path / "model_tag.txt"))
    return project_root(city, tmp_path)


def test_snapshot_records_its_hash_in_the_registry_and_the_audit_log(root):
    result = CliRunner().invoke(app, ["snapshot", "--root", str(root)])
    assert result.exit_code == 0, result.output
    digest = snapshot_sha256(root / "data" / "09_snapshot")
    assert registry_tag(root) == digest
    entry = read_log(root / "governance_log" / "audit.jsonl")[-1]
    assert (entry["action"], entry["version"]) == ("snapshot", "2")
    assert entry["details"]["snapshot_sha256"] == digest


def test_bento_import_refuses_a_snapshot_changed_after_it_was_recorded(root):
    runner = CliRunner()
    assert runner.invoke(app, ["snapshot", "--root", str(root)]).exit_code == 0
    folder = root / "data" / "09_snapshot"
    recorded = snapshot_sha256(folder)
    tamper_like_an_attacker(folder)
    result = runner.invoke(app, ["bento", "import", "--root", str(root)])
    assert result.exit_code == 1
    expected = MSG_SNAPSHOT.format(
        model=MODEL_NAME, version=2, actual=snapshot_sha256(folder), recorded="RECORDED"
    ).split("RECORDED")[0]
    # the console wraps long lines: compare without whitespace
    output = "".join(result.output.split())
    assert "".join(expected.split()) in output and recorded in output


def test_bento_import_records_the_import_in_the_audit_log(root):
    runner = CliRunner()
    assert runner.invoke(app, ["snapshot", "--root", str(root)]).exit_code == 0
    result = runner.invoke(app, ["bento", "import", "--root", str(root)])
    assert result.exit_code == 0, result.output
    entry = read_log(root / "governance_log" / "audit.jsonl")[-1]
    assert entry["action"] == "bento_import"
    assert entry["details"]["snapshot_sha256"] == registry_tag(root)
    assert entry["details"]["bento_tag"].startswith(MODEL_NAME + ":v2-")


def test_import_and_serve_use_the_roots_store_and_params(root, tmp_path):
    """The README's promise: the store is <root>/bentoml; the root's params.yaml applies."""
    (root / "params.yaml").write_text("serving:\n  public_cards: false\n  port: 1\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HARMCAST_", "BENTOML_"))}
    env |= {
        "BENTOML_DO_NOT_TRACK": "true",
        MODEL_TAG_FILE_ENV: str(tmp_path / "model_tag.txt"),
        "HARMCAST_PLANNER_TOKENS": "pl4nner",
        "HOME": str(tmp_path / "home"),  # BentoML's default store is ~/bentoml
    }
    for step in (["snapshot"], ["bento", "import"]):
        run = subprocess.run(
            [sys.executable, "-m", "harmcast.cli", *step, "--root", str(root)],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert run.returncode == 0, run.stdout + run.stderr
    tag = (tmp_path / "model_tag.txt").read_text().strip()
    assert (root / "bentoml" / "models" / tag.replace(":", "/") / "model.yaml").is_file()
    assert not (tmp_path / "home" / "bentoml").exists()  # nothing of the store (client id...)

    port = free_port()
    log = tmp_path / "serve.log"
    process = subprocess.Popen(
        [sys.executable, "-m", "harmcast.cli", "serve", "--root", str(root)]
        + ["--host", "127.0.0.1", "--port", str(port)],
        cwd=tmp_path,
        env={k: v for k, v in env.items() if k != MODEL_TAG_ENV},
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    server = Server(process, f"http://127.0.0.1:{port}", log)
    try:
        assert wait_ready(server, timeout=120), server.output()
        anonymous = httpx.get(f"{server.url}/model_card", timeout=10)
        planner = httpx.get(
            f"{server.url}/model_card", headers={"Authorization": "Bearer pl4nner"}, timeout=10
        )
    finally:
        os.killpg(process.pid, 15)
        server.stop()
    assert anonymous.status_code == 401, anonymous.text
    assert planner.status_code == 200 and planner.json()["version"] == 2
    assert "registry check: passed" in server.output()


def test_bento_import_in_one_process_uses_each_roots_own_store(city, tmp_path, monkeypatch):
    """BentoML resolves its home once per process: the import names the root's store."""
    monkeypatch.delenv("BENTOML_HOME", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    tags = {}
    for name in ("first", "second"):
        (tmp_path / name).mkdir()
        root = project_root(city, tmp_path / name)
        monkeypatch.setenv(MODEL_TAG_FILE_ENV, str(tmp_path / name / "model_tag.txt"))
        for step in (["snapshot"], ["bento", "import"]):
            result = CliRunner().invoke(app, [*step, "--root", str(root)])
            assert result.exit_code == 0, result.output
        tags[name] = (tmp_path / name / "model_tag.txt").read_text().strip()
        model = root / "bentoml" / "models" / tags[name].replace(":", "/") / "model.yaml"
        assert model.is_file(), result.output
    assert not list((tmp_path / "home").glob("bentoml/models/*/*"))
    assert "BENTOML_HOME" not in os.environ
