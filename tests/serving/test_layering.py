"""Serving loads and predicts with the forecaster without importing model fitting."""

from __future__ import annotations

import subprocess
import sys

FITTING = ("training.model", "training.backtest", "training.baselines", "training.scale")

PROBE = """
import sys
import serving.bundle, serving.snapshot, serving.store, serving.query
import training.forecaster
fitting = {fitting!r}
loaded = sorted(m for m in sys.modules if m.startswith(fitting))
print(",".join(loaded))
"""


def test_serving_and_forecaster_import_no_model_fitting():
    probe = PROBE.format(fitting=FITTING)
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=120
    )
    assert out.stdout.strip() == ""


def test_forecaster_moved_but_model_still_exports_it():
    from training import forecaster, model

    assert model.Forecaster is forecaster.Forecaster
    assert model.nb_summary is forecaster.nb_summary
