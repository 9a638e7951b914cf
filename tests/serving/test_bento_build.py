"""`bentoml build -f serving/bentofile.yaml` then `bentoml serve <bento>`: the bento
pins the approved model through serving/model_tag.txt and answers on loopback."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys

import httpx
import pytest
import yaml
from conftest import REPO, Server, free_port, wait_ready

pytestmark = pytest.mark.slow

TOKEN = "bento-build-token"
# what serving/bentofile.yaml includes, plus the bentofile and requirements themselves
SOURCES = (
    "serving",
    "training/__init__.py",
    "training/config.py",
    "training/errors.py",
    "governance/__init__.py",
    "governance/evidence.py",
)


def build_context(tmp_path, tag):
    """A copy of the project files the bento needs, with ``tag`` pinned as
    `harmcast bento import` pins it (the repository itself is left untouched)."""
    ctx = tmp_path / "project"
    for name in SOURCES:
        src, dst = REPO / name, ctx / name
        if src.is_dir():
            shutil.copytree(src, dst, ignore=shutil.ignore_patterns("__pycache__", "*.txt"))
            shutil.copy2(src / "requirements.txt", dst / "requirements.txt")
        else:
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dst)
    (ctx / "serving" / "model_tag.txt").write_text(tag + "\n")
    return ctx


def build_bento(ctx, env) -> str:
    command = ["bentoml", "build", "-f", "serving/bentofile.yaml", "--output", "tag"]
    build = subprocess.run(
        [sys.executable, "-m", *command],
        cwd=ctx,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert build.returncode == 0, build.stdout + build.stderr
    return re.search(r"__tag__:(\S+)", build.stdout)[1]


def test_bento_builds_pins_the_model_and_serves(city, tmp_path):
    home = tmp_path / "bentoml"
    shutil.copytree(city.bentoml_home, home)
    # no HARMCAST_BENTO_MODEL: the served tag must come from the bento's model_tag.txt
    env = {k: v for k, v in os.environ.items() if not k.startswith("HARMCAST_")}
    env |= {"BENTOML_HOME": str(home), "BENTOML_DO_NOT_TRACK": "true"}
    bento_tag = build_bento(build_context(tmp_path, city.bento_tags[2]), env)
    name, version = bento_tag.split(":")
    bento_dir = home / "bentos" / name / version
    manifest = yaml.safe_load((bento_dir / "bento.yaml").read_text())
    (service,) = manifest["services"]
    assert [m["tag"] for m in service["models"]] == [city.bento_tags[2]]
    assert service["config"]["workers"] == 2
    src = bento_dir / "src"
    assert (src / "serving" / "model_tag.txt").read_text().strip() == city.bento_tags[2]
    assert (src / "training" / "errors.py").is_file() and (src / "serving" / "bundle.py").is_file()
    assert "httptools" in (bento_dir / "env" / "python" / "requirements.txt").read_text()

    port = free_port()
    log = tmp_path / "bento.log"
    process = subprocess.Popen(
        [sys.executable, "-m", "bentoml", "serve", bento_tag, "--host", "127.0.0.1"]
        + ["--port", str(port)],
        cwd=tmp_path,
        env=env | {"HARMCAST_PLANNER_TOKENS": TOKEN, "HARMCAST_TRACKING_URI": city.uri},
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
    )
    server = Server(process, f"http://127.0.0.1:{port}", log)
    try:
        assert wait_ready(server, timeout=120), server.output()
        body = httpx.post(
            f"{server.url}/forecast",
            json={"top_k": 3},
            headers={"Authorization": f"Bearer {TOKEN}"},
            timeout=30,
        )
    finally:
        server.stop()
    assert body.status_code == 200, body.text
    answer = body.json()
    assert answer["model"] == {"name": "harmcast-violence", "version": "2"}
    assert [f["rank"] for f in answer["forecasts"]] == [1, 2, 3]
    assert "registry check: passed" in server.output()
