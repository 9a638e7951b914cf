"""``dvc repro`` of the repository's dvc.yaml on the tiny city, in a fresh folder.

The folder gets the repository's dvc.yaml, the code the stages depend on and a
params.yaml that keeps every default of ``Params`` except a tiny city and a
small backtest. DVC runs without git (``dvc init --no-scm``) and without a
remote: the first repro runs every stage, the second none, and a changed
features parameter reruns features and the stages downstream of it only.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from training.config import Params, load_params

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1]
STAGES = ("synth", "ingest", "panel", "features", "backtest", "train", "audit")
TINY = {
    "synth": {"preset": "tiny"},
    "model": {"num_boost_round": 40, "min_data_in_leaf": 20},
    "backtest": {
        "weeks": 8,
        "retrain_every": 4,
        "n_boot": 50,
        "n_jobs": 1,
        "ablation_rounds": 20,
    },  # fmt: skip
    "baselines": {"hawkes_max_iter": 50},
}


def _dvc(workdir: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    done = subprocess.run(
        [sys.executable, "-m", "dvc", *args], cwd=workdir, env=env, capture_output=True,
        text=True, timeout=1800,
    )  # fmt: skip
    assert done.returncode == 0, f"dvc {' '.join(args)}:\n{done.stdout}\n{done.stderr}"
    return done


def _ran(output: str) -> set[str]:
    return {s for s in STAGES if f"Running stage '{s}'" in output}


def _write_params(workdir: Path, overrides: dict) -> None:
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    for section, values in overrides.items():
        params[section] = {**params[section], **values}
    (workdir / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh project folder: dvc.yaml, code the stages hash, tiny params, small policy."""
    workdir = tmp_path_factory.mktemp("dvc_project")
    shutil.copy2(REPO / "dvc.yaml", workdir / "dvc.yaml")
    for package in ("harmcast", "training", "governance", "serving"):
        shutil.copytree(REPO / package, workdir / package,
                        ignore=shutil.ignore_patterns("__pycache__"))  # fmt: skip
    policy = yaml.safe_load((REPO / "governance" / "policy.yaml").read_text())
    policy["fairness"]["n_boot"] = 50
    policy["shap"]["sample_rows"] = 200
    (workdir / "governance" / "policy.yaml").write_text(yaml.safe_dump(policy, sort_keys=False))
    _write_params(workdir, TINY)
    _dvc(workdir, "init", "--no-scm")
    return workdir


def test_params_yaml_holds_the_defaults():
    assert load_params(REPO / "params.yaml") == Params()


def test_repro_runs_everything_then_nothing_then_only_what_changed(project: Path):
    first = _dvc(project, "repro")
    assert _ran(first.stdout) == set(STAGES), first.stdout
    for path in ("data/03_panel/panel.parquet", "data/05_models/model.lgb",
                 "data/07_audit/gate_report.json"):  # fmt: skip
        assert (project / path).is_file(), path
    metrics = json.loads((project / "data/08_reporting/backtest_metrics.json").read_text())
    assert metrics and all(isinstance(v, int | float) for v in metrics.values())
    audit = json.loads((project / "data/08_reporting/audit_metrics.json").read_text())
    assert audit["gate.passed"] in (0, 1)
    shown = _dvc(project, "metrics", "show", "--json")
    assert "backtest_metrics.json" in shown.stdout

    assert "up to date" in _dvc(project, "status").stdout
    again = _dvc(project, "repro")
    assert _ran(again.stdout) == set(), again.stdout

    _write_params(project, {**TINY, "features": {"lags": [1, 2, 3]}})
    status = _dvc(project, "status").stdout
    assert "features" in status and "ingest" not in status
    changed = _dvc(project, "repro")
    assert _ran(changed.stdout) == {"features", "backtest", "train", "audit"}, changed.stdout
