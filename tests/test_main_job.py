"""The main job (`harmcast run`) calls the step functions in order; the first failure stops it."""

from __future__ import annotations

import inspect
from pathlib import Path

from typer.testing import CliRunner

from harmcast.cli import app
from harmcast.commands import pipeline
from harmcast.commands.data import ingest_step
from harmcast.commands.serving import bento_import_step
from harmcast.commands.synth import synth_step

EXPECTED = [
    "synth", "ingest", "panel", "features", "backtest", "train", "audit", "register",
    "card", "review approve --member a", "review approve --member b", "card", "snapshot",
    "bento import",
]  # fmt: skip


def test_the_main_job_is_a_list_of_functions_not_command_names() -> None:
    keys = {"a": Path("a.key"), "b": Path("b.key")}
    steps = pipeline.main_job_steps(synth=True, demo_keys=keys, reviewers=["a", "b"])
    assert [name for name, _ in steps] == EXPECTED
    assert all(callable(step) and not isinstance(step, str) for _, step in steps)
    by_name = dict(steps)
    assert by_name["synth"] is synth_step
    assert by_name["ingest"] is ingest_step
    assert by_name["bento import"] is bento_import_step
    assert [name for name, _ in pipeline.main_job_steps(synth=False)][0] == "ingest"
    # the job no longer dispatches through the CLI app
    assert "harmcast.cli" not in inspect.getsource(pipeline)


def test_a_failing_step_stops_the_job_naming_it(tmp_path: Path) -> None:
    root = tmp_path / "city"
    (root / "data" / "01_raw" / "police").mkdir(parents=True)
    (root / "data" / "01_raw" / "police" / "2024-01-street.csv").write_text("not,a,police,file\n")
    result = CliRunner().invoke(app, ["run", "--root", str(root), "--no-synth", "--no-serve"])
    output = " ".join(result.output.split())
    assert result.exit_code == 1, output
    assert "harmcast ingest failed (step 1 of " in output
    assert "the main job stops here." in output
    assert "harmcast panel" not in output
    assert not (root / "data" / "03_panel").exists()
