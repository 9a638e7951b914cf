"""Long steps report their progress: plain timed lines off a terminal; MLflow stays quiet."""

from __future__ import annotations

import io
import os
import re

import numpy as np
import pandas as pd
from rich.console import Console
from typer.testing import CliRunner

from harmcast.cli import app
from harmcast.commands._progress import LineProgress, describe_eta, step_progress
from training.config import ModelParams
from training.model import fit_forecaster


def test_describe_eta_estimates_the_time_left_from_the_pace_so_far():
    assert describe_eta(0, 8, 3.0) == "3 s elapsed"
    assert describe_eta(2, 8, 10.0) == "10 s elapsed, about 30 s left"
    assert describe_eta(8, 8, 40.0) == "40 s elapsed"


def test_off_a_terminal_each_step_is_one_line_with_done_total_and_estimate():
    out = io.StringIO()
    console = Console(file=out, force_terminal=False, width=200)
    with step_progress(console) as progress:
        assert isinstance(progress, LineProgress)
        task = progress.add_task("backtest", total=4)
        progress.update(task, advance=1, description="backtest: fold 1 of 2: model")
        progress.update(task, advance=1, description="backtest: fold 2 of 2: model")
    lines = out.getvalue().splitlines()
    assert len(lines) == 2
    assert lines[0].startswith("backtest: fold 1 of 2: model [1/4] ")
    assert re.search(r"\[2/4\] \d+ s elapsed, about \d+ s left$", lines[1])


def test_every_thins_the_lines_but_keeps_the_last():
    out = io.StringIO()
    progress = LineProgress(Console(file=out, force_terminal=False, width=200), every=10)
    task = progress.add_task("train", total=25)
    for _ in range(25):
        progress.update(task, advance=1)
    lines = out.getvalue().splitlines()
    assert [line.split(" ")[1] for line in lines] == ["[10/25]", "[20/25]", "[25/25]"]


def test_fit_forecaster_reports_every_boosting_round():
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"a": rng.normal(size=300), "horizon": 1})
    frame["y"] = rng.poisson(np.exp(frame["a"]))
    seen = []
    params = ModelParams(num_boost_round=7, min_data_in_leaf=5)
    fit_forecaster(frame, ["a"], params, on_round=lambda d, t: seen.append((d, t)))
    assert seen == [(i, 7) for i in range(1, 8)]


def test_the_cli_switches_off_mlflow_artifact_progress_bars(monkeypatch, tmp_path):
    monkeypatch.delenv("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", raising=False)
    # a command that fails at once (no panel layer): the switch is set before any command
    result = CliRunner().invoke(app, ["features", "--root", str(tmp_path)])
    assert result.exit_code == 1
    assert os.environ["MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"] == "false"
    from mlflow.environment_variables import MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR

    assert MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR.get() is False
