"""The forecaster as it is loaded and used: a booster, its NB dispersion and its intervals.

This module holds what serving needs of a fitted model (:class:`Forecaster`,
``load``, ``predict`` and the negative-binomial summary) and nothing of model
fitting: ``training.model`` fits boosters and wraps them in this class, and
``serving`` imports this module alone.

Counts are over-dispersed, so intervals and the chance of at least one event
come from a negative binomial with variance ``mu + dispersion * mu**2``.

A model directory may also hold ``stack.json`` (:class:`ServedStack`, written
by ``harmcast train`` from the backtest's out-of-sample forecasts): which
forecast is served (the booster, a fitted baseline, or their non-negative
combination) with its weights and dispersion per horizon.
:func:`serve_forecast` applies it to the booster's ``mu`` and the components'
forecasts at the same origin; without ``stack.json`` the booster is served.
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
    "STACK_FILE",
    "ServedStack",
    "combine",
    "serve_forecast",
    "MISSING_COMPONENT",
]

MODEL_FILE = "model.lgb"
META_FILE = "model_meta.json"
MIN_DISPERSION = 1e-6
MAX_DISPERSION = 10.0

MISSING_FEATURE = "missing feature column the model was trained on"
STACK_FILE = "stack.json"
MISSING_COMPONENT = (
    "no forecast of component {method!r} at horizon {horizon} for {n} area(s), first {first}"
)
NO_WEIGHTS = "no served weights for horizon {horizon}"
KEYS = ["area_code", "horizon"]
#: the smallest combined ``mu`` (a combination of zero forecasts is not a forecast of zero)
STACK_MU_FLOOR = 1e-6


@dataclass(frozen=True)
class ServedStack:
    """What is served, per horizon, from ``stack.json``.

    Attributes
    ----------
    served_method : ``"stacked"``, ``"model"`` or a fitted baseline's method name.
    components : the component methods, in weight order (``"model"`` is the booster).
    weights : horizon -> weights of the *served* forecast over ``components``
        (one-hot when a single component is served).
    dispersion : horizon -> NB dispersion of the served forecast.
    stacked_weights : horizon -> the combination's weights (the evidence).
    reason : the choice, in words.
    evidence : the backtest margins the choice rests on.
    """

    served_method: str
    components: tuple[str, ...]
    weights: dict[int, tuple[float, ...]]
    dispersion: dict[int, float]
    stacked_weights: dict[int, tuple[float, ...]] = field(default_factory=dict)
    reason: str = ""
    evidence: tuple[dict, ...] = ()

    def to_json(self) -> dict:
        """Return the ``stack.json`` contents."""
        return {
            "served_method": self.served_method,
            "components": list(self.components),
            "weights": {str(h): list(w) for h, w in sorted(self.weights.items())},
            "dispersion": {str(h): d for h, d in sorted(self.dispersion.items())},
            "stacked_weights": {str(h): list(w) for h, w in sorted(self.stacked_weights.items())},
            "reason": self.reason,
            "evidence": list(self.evidence),
        }

    @classmethod
    def from_json(cls, raw: dict) -> ServedStack:
        """Read ``stack.json`` contents."""
        return cls(
            str(raw["served_method"]),
            tuple(raw["components"]),
            {int(h): tuple(float(v) for v in w) for h, w in raw["weights"].items()},
            {int(h): float(d) for h, d in raw["dispersion"].items()},
            {int(h): tuple(float(v) for v in w) for h, w in raw.get("stacked_weights", {}).items()},
            str(raw.get("reason", "")),
            tuple(raw.get("evidence", ())),
        )

    def components_used(self) -> list[str]:
        """Return the components with a non-zero served weight at some horizon."""
        return [
            c for i, c in enumerate(self.components) if any(w[i] > 0 for w in self.weights.values())
        ]


def combine(mu: np.ndarray, weights: np.ndarray, *, floor: float = STACK_MU_FLOOR) -> np.ndarray:
    """Return ``mu @ weights`` floored at ``floor``: the combined expected counts.

    Examples
    --------
    >>> combine(np.array([[1.0, 3.0]]), np.array([0.5, 0.5])).tolist()
    [2.0]
    """
    return np.maximum(np.asarray(mu, dtype=np.float64) @ np.asarray(weights, np.float64), floor)


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
    stack: ServedStack | None = field(default=None, compare=False)

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
        stack = None
        if (directory / STACK_FILE).is_file():
            try:
                stack = ServedStack.from_json(json.loads((directory / STACK_FILE).read_text()))
            except (ValueError, KeyError, TypeError) as exc:
                raise SchemaError(directory / STACK_FILE, f"not a stack file: {exc}") from exc
        return cls(
            booster,
            tuple(meta["feature_names"]),
            float(meta["dispersion"]),
            tuple(meta["interval"]),
            params,
            stack,
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


def serve_forecast(
    forecaster: Forecaster,
    rows: pd.DataFrame,
    model_mu: np.ndarray,
    components: pd.DataFrame | None,
) -> pd.DataFrame:
    """Return ``mu, q_lo, q_hi, p_any`` of the served forecast for each of ``rows``.

    Parameters
    ----------
    forecaster : the loaded model; without a stack (or serving ``"model"``) the
        booster's forecast is returned as :meth:`Forecaster.predict` does.
    rows : ``area_code`` and ``horizon`` (and ``origin_week``) of each forecast row.
    model_mu : the booster's ``mu`` for each of ``rows``.
    components : ``area_code, horizon, method, mu`` of the other components
        (``training.baselines.predict.predict_baselines``); matched on
        ``origin_week`` too when both frames have it, else at the same origin.

    Raises
    ------
    SchemaError
        When a component the served forecast weighs has no forecast for a row.
    """
    stack = forecaster.stack
    model_mu = np.asarray(model_mu, dtype=np.float64)
    if stack is None or stack.served_method == "model":
        return pd.DataFrame(nb_summary(model_mu, forecaster.dispersion, forecaster.interval))
    keys = pd.DataFrame(
        {
            "area_code": rows["area_code"].astype(str).to_numpy(),
            "horizon": rows["horizon"].astype(int).to_numpy(),
        }
    )
    on = list(KEYS)
    if "origin_week" in rows.columns and components is not None and "origin_week" in components:
        keys["origin_week"] = pd.to_datetime(rows["origin_week"]).to_numpy()
        on.append("origin_week")
    matrix = np.zeros((len(rows), len(stack.components)))
    used = set(stack.components_used())
    for j, method in enumerate(stack.components):
        if method == "model":
            matrix[:, j] = model_mu
            continue
        if method not in used:
            continue
        merged = keys.merge(_component_rows(components, method, on), on=on, how="left")
        missing = merged["mu"].isna().to_numpy()
        if missing.any():
            first = merged.loc[missing].iloc[0]
            raise SchemaError(
                "components",
                MISSING_COMPONENT.format(
                    method=method,
                    horizon=int(first["horizon"]),
                    n=int(missing.sum()),
                    first=first["area_code"],
                ),
                field="mu",
            )
        matrix[:, j] = merged["mu"].to_numpy(dtype=np.float64)
    out = {k: np.empty(len(rows)) for k in ("mu", "q_lo", "q_hi", "p_any")}
    horizons = keys["horizon"].to_numpy()
    for h in np.unique(horizons):
        at = horizons == h
        if int(h) not in stack.weights:
            raise SchemaError(STACK_FILE, NO_WEIGHTS.format(horizon=int(h)), field="weights")
        mu = combine(matrix[at], np.asarray(stack.weights[int(h)]))
        summary = nb_summary(mu, stack.dispersion[int(h)], forecaster.interval)
        for k in out:
            out[k][at] = summary[k]
    return pd.DataFrame(out)


def _component_rows(components: pd.DataFrame | None, method: str, on: list[str]) -> pd.DataFrame:
    if components is None:
        components = pd.DataFrame(columns=["method", *KEYS, "mu"])
    rows = components.loc[components["method"] == method]
    out = pd.DataFrame(
        {
            "area_code": rows["area_code"].astype(str).to_numpy(),
            "horizon": rows["horizon"].astype(int).to_numpy(),
            "mu": rows["mu"].astype(float).to_numpy(),
        }
    )
    if "origin_week" in on:
        out["origin_week"] = pd.to_datetime(rows["origin_week"]).to_numpy()
    return out.drop_duplicates(on, keep="last")
