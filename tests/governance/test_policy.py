"""Which policy governs a project root, and ``harmcast run`` on a root without one."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from governance.policy import DEFAULT_POLICY_PATH, MSG_NO_POLICY, project_policy_path
from harmcast.cli import app
from training.config import load_params
from training.errors import ConfigError


def test_a_root_without_a_policy_is_governed_by_the_packaged_one(tmp_path: Path):
    paths = load_params(None, root=tmp_path).paths
    assert project_policy_path(paths) == DEFAULT_POLICY_PATH
    own = tmp_path / "governance" / "policy.yaml"
    own.parent.mkdir()
    own.write_text(DEFAULT_POLICY_PATH.read_text())
    assert project_policy_path(paths) == own.resolve()


def test_a_configured_policy_that_is_missing_is_an_error_naming_it(tmp_path: Path):
    (tmp_path / "params.yaml").write_text("paths: {policy: board/policy.yaml}\n")
    paths = load_params(tmp_path / "params.yaml", root=tmp_path).paths
    with pytest.raises(ConfigError) as caught:
        project_policy_path(paths)
    missing = (tmp_path / "board" / "policy.yaml").resolve()
    assert str(caught.value) == MSG_NO_POLICY.format(path=missing, default=DEFAULT_POLICY_PATH)


def test_run_on_a_root_without_a_policy_reads_the_packaged_one_first(tmp_path: Path):
    result = CliRunner().invoke(app, ["run", "--root", str(tmp_path), "--no-synth", "--no-serve"])
    output = "".join(result.output.split())  # rich wraps long paths anywhere
    # The demo board is sealed from the packaged policy, which then governs the root.
    assert f"demoboardsealedfrom{DEFAULT_POLICY_PATH}" in output
    assert f"policy:{tmp_path / 'governance' / 'policy.yaml'}" in output
    # the root has no raw files either: the job stops at ingest, not at the policy
    assert result.exit_code == 1 and "policyfilenotfound" not in output
    assert "Traceback" not in result.output


def test_run_with_a_missing_configured_policy_stops_before_any_step(tmp_path: Path):
    (tmp_path / "params.yaml").write_text("paths: {policy: board/policy.yaml}\n")
    result = CliRunner().invoke(app, ["run", "--root", str(tmp_path), "--no-serve"])
    assert result.exit_code == 1
    missing = (tmp_path / "board" / "policy.yaml").resolve()
    expected = MSG_NO_POLICY.format(path=missing, default=DEFAULT_POLICY_PATH)
    assert "".join(expected.split()) in "".join(result.output.split())
    assert "Traceback" not in result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["params.yaml"]  # synth never ran
