"""The layers hold: import-linter contracts (`.importlinter`), imports inside functions too."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LINT = Path(sys.executable).with_name("lint-imports")


def _lint(cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(LINT), "--no-cache", ".importlinter"],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        env={"PYTHONPATH": str(cwd), "PATH": "/usr/bin:/bin"},
    )


def test_the_project_keeps_its_layers() -> None:
    done = _lint(ROOT)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "0 broken" in done.stdout


def test_a_function_level_import_that_reaches_up_is_caught(tmp_path: Path) -> None:
    for package in ("training", "governance", "serving", "monitoring", "harmcast"):
        (tmp_path / package).mkdir()
        (tmp_path / package / "__init__.py").write_text("")
    for module in ("model", "backtest", "baselines"):
        (tmp_path / "training" / f"{module}.py").write_text("X = 1\n")
    (tmp_path / "training" / "scale").mkdir()
    (tmp_path / "training" / "scale" / "__init__.py").write_text("")
    (tmp_path / "training" / "panel.py").write_text(
        "def build():\n    from governance import policy  # noqa\n"
    )
    (tmp_path / "governance" / "policy.py").write_text("Y = 2\n")
    (tmp_path / "serving" / "bundle.py").write_text(
        "def load():\n    import training.model  # noqa\n"
    )
    shutil.copy(ROOT / ".importlinter", tmp_path / ".importlinter")
    done = _lint(tmp_path)
    assert done.returncode != 0
    assert "training.panel -> governance.policy" in done.stdout
    assert "serving.bundle -> training.model" in done.stdout
