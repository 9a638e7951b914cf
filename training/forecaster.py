"""The forecaster as it is loaded and used: a booster, its NB dispersion and its intervals.

This module holds what serving needs of a fitted model (:class:`Forecaster`,
``load``, ``predict`` and the negative-binomial summary) and nothing of model
fitting: ``training.model`` fits boosters and wraps them in this class, and
``serving`` imports this module alone.

Counts are over-dispersed, so intervals and the chance of at least one event
come from a negative binomial with variance ``mu + dispersion * mu**2``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import lightgbm as lgb
import numpy as np
import pandas as pd
from scipy import stats

from training.config import ModelParams
from training.errors import SchemaError

__all__ = [
    "Forecaster",
    "nb_summary",
    "MODEL_FILE",
    "META_FILE",
    "MIN_DISPERSION",
    "MAX_DISPERSION",
    "MISSING_FEATURE",
]

MODEL_FILE = "model.lgb"
META_FILE = "model_meta.json"
MIN_DISPERSION = 1e-6
MAX_DISPERSION = 10.0

MISSING_FEATURE = "missing feature column the model was trained on"


@dataclass(frozen=True)
class Forecaster:
    """A fitted booster plus the negative-binomial dispersion of its errors.

    Attributes
    ----------
    booster : the LightGBM booster (Poisson objective; predicts ``mu``).
    feature_names : the columns ``predict`` reads, in training order.
    dispersion : NB dispersion ``alpha`` (variance ``mu + alpha * mu**2``).
    interval : lower and upper quantile levels of the prediction interval.
    params : the settings it was trained with (None when rebuilt from a booster).
    """

    booster: lgb.Booster
    feature_names: tuple[str, ...]
    dispersion: float
    interval: tuple[float, float] = (0.1, 0.9)
    params: ModelParams | None = field(default=None, compare=False)

    @classmethod
    def from_booster(
        cls,
        booster: lgb.Booster,
        dispersion: float,
        *,
        interval: tuple[float, float] = (0.1, 0.9),
        feature_names: list[str] | None = None,
    ) -> Forecaster:
        """Rebuild a forecaster from a booster (e.g. one logged to MLflow)."""
        names = tuple(feature_names or booster.feature_name())
        return cls(booster, names, float(dispersion), tuple(interval))

    def predict_mu(self, frame: pd.DataFrame) -> np.ndarray:
        """Return the expected counts for each row of ``frame``."""
        for name in self.feature_names:
            if name not in frame.columns:
                raise SchemaError("features", MISSING_FEATURE, field=name)
        x = frame[list(self.feature_names)].to_numpy(np.float32)
        return np.asarray(self.booster.predict(x), dtype=np.float64)

    def predict(self, frame: pd.DataFrame) -> pd.DataFrame:
        """Return ``mu, q_lo, q_hi, p_any`` for each row, aligned on ``frame.index``."""
        mu = self.predict_mu(frame)
        summary = nb_summary(mu, self.dispersion, self.interval)
        return pd.DataFrame(summary, index=frame.index)

    def save(self, directory: str | Path) -> Path:
        """Write ``model.lgb`` and ``model_meta.json`` into ``directory``.

        Keys other processes added to an existing ``model_meta.json`` (such as
        the MLflow run id) are dropped: a new model starts a new record.
        """
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        self.booster.save_model(str(directory / MODEL_FILE))
        meta = {
            "feature_names": list(self.feature_names),
            "dispersion": self.dispersion,
            "interval": list(self.interval),
            "num_trees": self.booster.num_trees(),
            "params": None if self.params is None else self.params.model_dump(mode="json"),
        }
        (directory / META_FILE).write_text(json.dumps(meta, indent=2))
        return directory

    @classmethod
    def load(cls, directory: str | Path) -> Forecaster:
        """Read a forecaster written by :meth:`save`."""
        directory = Path(directory)
        for name in (MODEL_FILE, META_FILE):
            if not (directory / name).is_file():
                raise SchemaError(directory / name, "model file not found")
        meta = json.loads((directory / META_FILE).read_text())
        booster = lgb.Booster(model_file=str(directory / MODEL_FILE))
        params = None if meta.get("params") is None else ModelParams(**meta["params"])
        return cls(
            booster,
            tuple(meta["feature_names"]),
            float(meta["dispersion"]),
            tuple(meta["interval"]),
            params,
        )


def nb_summary(
    mu: np.ndarray, dispersion: float, interval: tuple[float, float] = (0.1, 0.9)
) -> dict[str, np.ndarray]:
    """Quantiles and ``P(y >= 1)`` of NB(mu, dispersion) counts.

    ``dispersion`` near zero gives the Poisson limit.
    """
    mu = np.clip(np.asarray(mu, dtype=np.float64), 1e-9, None)
    if dispersion <= MIN_DISPERSION:
        dist = stats.poisson(mu)
        p_zero = np.exp(-mu)
    else:
        size = 1.0 / dispersion
        prob = size / (size + mu)
        dist = stats.nbinom(size, prob)
        p_zero = prob**size
    return {
        "mu": mu,
        "q_lo": dist.ppf(interval[0]).astype(np.float64),
        "q_hi": dist.ppf(interval[1]).astype(np.float64),
        "p_any": 1.0 - p_zero,
    }
