"""The shared fixture: one small synthetic city, generated once per session."""

from __future__ import annotations

from pathlib import Path

import pytest

from training.config import SynthParams
from training.synth.city import generate_city

#: The parameters of the shared city (the ``tiny`` preset: 60 areas x 80 weeks).
SYNTHETIC_CITY_PARAMS = SynthParams(preset="tiny", seed=20240601)


@pytest.fixture(scope="session")
def synthetic_city(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Return the raw-layer folder of a tiny synthetic city (read it, never write to it)."""
    raw = tmp_path_factory.mktemp("synthetic_city") / "01_raw"
    generate_city(SYNTHETIC_CITY_PARAMS, raw)
    return raw
