"""The weekly-cycle tests build their layers with the training tests' helpers."""

from __future__ import annotations

import sys
from pathlib import Path

# registry_setup and rawfiles live beside the training tests; pytest's default
# import mode puts only this folder on sys.path.
_TRAINING_TESTS = str(Path(__file__).resolve().parents[1] / "training")
if _TRAINING_TESTS not in sys.path:
    sys.path.insert(0, _TRAINING_TESTS)
