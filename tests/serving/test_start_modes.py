"""A corrupted snapshot (one flipped bit) is refused with its real cause, whichever way
the service is started: module path, built bento directory, bento tag."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest
from conftest import REPO, free_port
from test_bento_build import build_bento, build_context

from serving.snapshot import META_FILE, SNAPSHOT_FILE, snapshot_sha256

pytestmark = pytest.mark.slow

MISLEADING = "No module named"
REFUSED = "harmcast-forecast refused to start: "


def final_error(output: str) -> str:
    """The last exception line of a traceback (earlier ones are only its context)."""
    return [line for line in output.splitlines() if line and not line.startswith(" ")][-1]


@pytest.fixture(scope="module")
def built(city, tmp_path_factory):
    """A copy of the store with a bento built from the untouched model."""
    tmp = tmp_path_factory.mktemp("start-modes")
    home = tmp / "bentoml"
    shutil.copytree(city.bentoml_home, home)
    env = {k: v for k, v in os.environ.items() if not k.startswith("HARMCAST_")}
    env |= {"BENTOML_HOME": str(home), "BENTOML_DO_NOT_TRACK": "true"}
    bento_tag = build_bento(build_context(tmp, city.bento_tags[2]), env)
    name, version = bento_tag.split(":")
    return home, env, bento_tag, home / "bentos" / name / version


def flip_one_bit(path, offset):
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x01
    path.write_bytes(bytes(data))


def serve_once(target, env, cwd, timeout=120) -> tuple[int, str]:
    command = [sys.executable, "-m", "bentoml", "serve", target, "--host", "127.0.0.1"]
    try:
        run = subprocess.run(
            [*command, "--port", str(free_port())],
            cwd=cwd,
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
    except subprocess.TimeoutExpired as exc:  # it started: the corruption went unseen
        pytest.fail(f"{target} started with a corrupted snapshot: {exc.stdout}{exc.stderr}")
    return run.returncode, run.stdout + run.stderr


@pytest.mark.parametrize("corrupted", [SNAPSHOT_FILE, META_FILE])
def test_a_flipped_bit_is_refused_with_its_cause_in_every_start_mode(
    city, built, tmp_path, corrupted
):
    home, env, bento_tag, bento_dir = built
    model = home / "models" / city.bento_tags[2].replace(":", "/")
    original = (model / "snapshot" / corrupted).read_bytes()
    recorded = snapshot_sha256(model / "snapshot")
    # a byte inside the data (parquet) or the first brace (JSON): both break the file
    flip_one_bit(
        model / "snapshot" / corrupted, len(original) // 2 if corrupted == SNAPSHOT_FILE else 0
    )
    env = env | {"HARMCAST_PLANNER_TOKENS": "t0k3n"}
    modes = {
        "module path": (
            "serving.service:HarmcastForecast",
            REPO,
            {"HARMCAST_BENTO_MODEL": city.bento_tags[2]},
        ),
        "bento directory": (str(bento_dir), tmp_path, {}),
        "bento tag": (bento_tag, tmp_path, {}),
    }
    try:
        for mode, (target, cwd, extra) in modes.items():
            code, output = serve_once(target, env | extra, cwd)
            assert code != 0, f"{mode}: {output}"
            last = final_error(output)
            assert MISLEADING not in last, f"{mode}: {output}"
            if corrupted == SNAPSHOT_FILE:
                assert last.startswith("training.errors.NotApproved: "), f"{mode}: {output}"
                assert recorded in last and snapshot_sha256(model / "snapshot") in last, mode
            else:
                assert last.startswith("serving.store.StartupRefused: "), f"{mode}: {output}"
                assert f"{model / 'snapshot' / META_FILE}: not a snapshot's metadata" in last
            assert REFUSED in output, f"{mode}: {output}"
    finally:
        (model / "snapshot" / corrupted).write_bytes(original)
