"""Stacking: a non-negative combination of the model and the fitted baselines.

The weights are learned only from out-of-sample forecasts (the backtest's
rolling-origin forecasts of each component), per horizon, by minimising the
mean Poisson deviance of the combination ``mu @ w`` over ``w >= 0`` (no
intercept; the combined ``mu`` is floored at ``STACK_MU_FLOOR``). The
combination's negative-binomial dispersion is a method-of-moments estimate on
the same rows. :func:`choose_served` decides from the backtest's paired
margins whether the combination or a single component is served.

All functions are pure: arrays and frames in, values out.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.optimize import minimize

from training.errors import HarmcastError
from training.forecaster import (
    MAX_DISPERSION,
    MIN_DISPERSION,
    STACK_FILE,
    STACK_MU_FLOOR,
    ServedStack,
    combine,
)

__all__ = [
    "STACKED",
    "COMPONENTS",
    "HEADLINE",
    "StackingError",
    "ServedChoice",
    "fit_stack_weights",
    "stack_dispersion",
    "combine",
    "fit_stack",
    "choose_served",
    "served_stack",
    "weights_words",
    "final_stack",
    "component_forecasts",
    "write_stack",
    "NO_ROWS",
    "BAD_SHAPE",
]

#: the method name of the combination in the backtest's predictions
STACKED = "stacked"
#: the combined forecasts: the booster and the fitted baselines
#: (``training.baselines.predict.METHODS``)
COMPONENTS = ("model", "poisson_glm", "hawkes", "prospective_hotspot")
#: metric -> greater is better (as ``training.backtest.scoring.HEADLINE_METRICS``)
HEADLINE = {"poisson_deviance": False, "pai_area_5": True, "pai_area_10": True}

NO_ROWS = "no out-of-sample rows with every component's forecast and an observed outcome"
BAD_SHAPE = "forecasts have shape {mu}, outcomes {y}: expected (n, k) and (n,)"
_WORDS = {
    "model": "the model",
    "poisson_glm": "the Poisson GLM",
    "hawkes": "the Hawkes baseline",
    "prospective_hotspot": "the prospective hotspot",
    STACKED: "the combination",
    "poisson_deviance": "deviance",
    "pai_area_5": "PAI at 5%",
    "pai_area_10": "PAI at 10%",
}


class StackingError(HarmcastError, ValueError):
    """The stacker has nothing to learn from."""


def _clean(mu: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    mu, y = np.asarray(mu, dtype=np.float64), np.asarray(y, dtype=np.float64)
    if mu.ndim != 2 or y.shape != (mu.shape[0],):
        raise StackingError(BAD_SHAPE.format(mu=mu.shape, y=y.shape))
    keep = np.isfinite(y) & np.isfinite(mu).all(axis=1)
    if not keep.any():
        raise StackingError(NO_ROWS)
    return mu[keep], y[keep]


def fit_stack_weights(mu: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Non-negative weights minimising the mean Poisson deviance of ``mu @ w``.

    Parameters
    ----------
    mu : (n, k) out-of-sample forecasts of the k components.
    y : (n,) outcomes. Rows with a non-finite value are left out.

    Returns
    -------
    numpy.ndarray
        (k,) weights, each ``>= 0`` (they need not sum to one: no intercept).

    Raises
    ------
    StackingError
        When no row is usable or the shapes disagree.

    Examples
    --------
    >>> mu = np.array([[1.0, 4.0], [2.0, 1.0], [3.0, 2.0]])
    >>> fit_stack_weights(mu, mu[:, 0]).round(3).tolist()
    [1.0, 0.0]
    """
    mu, y = _clean(mu, y)
    n, k = mu.shape

    def deviance(w: np.ndarray) -> tuple[float, np.ndarray]:
        m = mu @ w
        floored = m < STACK_MU_FLOOR
        m = np.where(floored, STACK_MU_FLOOR, m)
        # y log(y/m) - y + m; the y log y term does not depend on w
        value = 2.0 * np.sum(m - y * np.log(m)) / n
        grad_m = np.where(floored, 0.0, 2.0 * (1.0 - y / m) / n)
        return float(value), mu.T @ grad_m

    start = np.full(k, 1.0 / k)
    result = minimize(
        deviance, start, jac=True, method="L-BFGS-B", bounds=[(0.0, None)] * k,
        options={"maxiter": 500, "ftol": 1e-12, "gtol": 1e-9},
    )  # fmt: skip
    return np.clip(result.x, 0.0, None)


def stack_dispersion(mu: np.ndarray, y: np.ndarray) -> float:
    """Method-of-moments NB dispersion of forecasts ``mu`` (1-D) against ``y``.

    ``sum((y - mu)**2 - mu) / sum(mu**2)``, clipped to the forecaster's range,
    as ``training.model.fit_dispersion`` estimates the booster's.
    """
    mu, y = np.asarray(mu, dtype=np.float64), np.asarray(y, dtype=np.float64)
    keep = np.isfinite(mu) & np.isfinite(y)
    mu, y = mu[keep], y[keep]
    alpha = float(np.sum((y - mu) ** 2 - mu) / max(np.sum(mu**2), 1e-12))
    return float(np.clip(alpha, MIN_DISPERSION, MAX_DISPERSION))


def fit_stack(
    forecasts: pd.DataFrame, components: Sequence[str] = COMPONENTS
) -> tuple[dict[int, np.ndarray], dict[int, float], dict[int, int]]:
    """Fit the weights and dispersion per horizon on out-of-sample forecasts.

    Parameters
    ----------
    forecasts : the ``predictions`` frame rows of the components (``method``,
        ``area_code``, ``origin_week``, ``horizon``, ``mu``, ``y``); only rows
        every component forecast and whose ``y`` is observed are used.
    components : the methods combined, in weight order.

    Returns
    -------
    tuple
        ``(weights, dispersion, n_rows)``, each keyed by horizon.
    """
    wide = _wide(forecasts, components)
    weights, dispersion, n_rows = {}, {}, {}
    for h, rows in wide.groupby("horizon"):
        mu, y = rows[list(components)].to_numpy(), rows["y"].to_numpy()
        w = fit_stack_weights(mu, y)
        weights[int(h)] = w
        dispersion[int(h)] = stack_dispersion(combine(mu, w), y)
        n_rows[int(h)] = len(rows)
    return weights, dispersion, n_rows


def _wide(forecasts: pd.DataFrame, components: Sequence[str]) -> pd.DataFrame:
    rows = forecasts.loc[forecasts["method"].isin(components) & forecasts["y"].notna()]
    keys = ["area_code", "origin_week", "horizon"]
    wide = rows.pivot_table(index=keys, columns="method", values="mu", aggfunc="first")
    y = rows.groupby(keys)["y"].first()
    wide = wide.join(y).reset_index()
    missing = [c for c in components if c not in wide.columns]
    if missing or wide.empty:
        raise StackingError(f"{NO_ROWS} (missing: {missing})")
    return wide.dropna(subset=list(components))


@dataclass(frozen=True)
class ServedChoice:
    """Which forecast is served, why, and the margins the choice rests on."""

    method: str
    reason_words: str
    evidence: list[dict] = field(default_factory=list)


def _worse(row) -> bool:
    # significantly worse: the interval lies wholly on the wrong side
    return bool(row["ci_high"] < 0) if HEADLINE[row["metric"]] else bool(row["ci_low"] > 0)


def choose_served(margins: pd.DataFrame, *, horizons: Sequence | None = None) -> ServedChoice:
    """Serve the combination unless the backtest shows a component doing better.

    Parameters
    ----------
    margins : the backtest's margins of ``stacked`` over each component
        (``method == "stacked"`` rows, or a frame with ``metric``, ``horizon``,
        ``comparator``, ``difference``, ``ci_low``, ``ci_high``): the difference
        is ``stacked - component``.
    horizons : the horizons the rule looks at (default: every integer horizon
        present; horizon 1 always when present).

    Returns
    -------
    ServedChoice
        ``stacked`` when, on every headline metric (Poisson deviance, PAI at 5%
        and 10%) and horizon, no component's interval shows the combination
        significantly worse. Otherwise the component with the lowest deviance
        among those that did significantly better than the combination on some
        headline metric.
    """
    rows = margins
    if "method" in rows.columns:
        rows = rows.loc[rows["method"] == STACKED]
    rows = rows.loc[rows["metric"].isin(list(HEADLINE))]
    rows = rows.loc[rows["horizon"].map(lambda h: isinstance(h, int | np.integer))]
    if horizons is not None:
        rows = rows.loc[rows["horizon"].isin(list(horizons))]
    if rows.empty:
        raise StackingError("no margins of the combination over its components to choose by")
    rows = rows.assign(worse=rows.apply(_worse, axis=1))
    evidence = [
        {
            k: _plain(r[k])
            for k in ("metric", "horizon", "comparator", "difference", "ci_low", "ci_high", "worse")
        }  # fmt: skip
        for _, r in rows.iterrows()
    ]
    shown = ", ".join(_WORDS.get(m, m) for m in HEADLINE)
    if not rows["worse"].any():
        words = (
            f"The combination is served: in the backtest it was at least as good as each of "
            f"{_names(sorted(rows['comparator'].unique()))} on {shown} at every horizon scored "
            "(no 95% interval of its margin lies wholly on the worse side)."
        )
        return ServedChoice(STACKED, words, evidence)
    losses = rows.loc[rows["worse"]]
    candidates = list(losses["comparator"].unique())
    deviance = rows.loc[rows["metric"] == "poisson_deviance"].groupby("comparator")["difference"]
    # difference = stacked - component: the largest is the component with the lowest deviance
    best = max(candidates, key=lambda c: deviance.mean().get(c, -np.inf))
    lost = "; ".join(
        f"{_WORDS.get(r['metric'], r['metric'])} at horizon {r['horizon']} against "
        f"{_WORDS.get(r['comparator'], r['comparator'])} ({r['difference']:+.3f}, 95% interval "
        f"{r['ci_low']:+.3f} to {r['ci_high']:+.3f})"
        for _, r in losses.iterrows()
    )
    words = (
        f"{_WORDS.get(best, best)[0].upper()}{_WORDS.get(best, best)[1:]} is served alone: in the "
        f"backtest the combination was significantly worse on {lost}; of the components that "
        "did better than it, this one had the lowest deviance."
    )
    return ServedChoice(best, words, evidence)


def _names(methods: Sequence[str]) -> str:
    words = [_WORDS.get(m, m) for m in methods]
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " and " + words[-1]


def _plain(value):
    if isinstance(value, np.integer | np.bool_):
        return value.item()
    if isinstance(value, np.floating):
        return float(value)
    return value


def served_stack(
    forecasts: pd.DataFrame, choice: ServedChoice, components: Sequence[str] = COMPONENTS
) -> ServedStack:
    """Fit the final weights on ``forecasts`` and return what ``stack.json`` records.

    The served weights are the combination's when ``choice.method`` is
    ``stacked``, else one-hot on the chosen component; the dispersion is that
    of the served forecast on the same rows.
    """
    weights, _, _ = fit_stack(forecasts, components)
    wide = _wide(forecasts, components)
    served, dispersion = {}, {}
    for h, rows in wide.groupby("horizon"):
        h = int(h)
        if choice.method == STACKED:
            served[h] = weights[h]
        else:
            served[h] = np.array([1.0 if c == choice.method else 0.0 for c in components])
        mu = combine(rows[list(components)].to_numpy(), served[h])
        dispersion[h] = stack_dispersion(mu, rows["y"].to_numpy())
    return ServedStack(
        served_method=choice.method,
        components=tuple(components),
        weights={h: tuple(float(v) for v in w) for h, w in served.items()},
        dispersion=dispersion,
        stacked_weights={h: tuple(float(v) for v in w) for h, w in weights.items()},
        reason=choice.reason_words,
        evidence=tuple(choice.evidence),
    )


def weights_words(stack: ServedStack, horizon: int = 1) -> str:
    """Say in words what is served at ``horizon``, e.g. for the card.

    Examples
    --------
    >>> s = ServedStack("stacked", ("model", "poisson_glm"), {1: (0.62, 0.38)}, {1: 0.1})
    >>> weights_words(s)
    'The served 1-week forecast combines the model (weight 0.62) and the Poisson GLM (0.38).'
    """
    weights = stack.weights.get(horizon)
    if weights is None:
        return f"No forecast is served at horizon {horizon}."
    used = [(c, w) for c, w in zip(stack.components, weights, strict=True) if w > 0]
    if stack.served_method != STACKED or len(used) == 1:
        name = _WORDS.get(used[0][0], used[0][0]) if used else "the model"
        return f"The served {horizon}-week forecast is {name} alone."
    parts = [f"{_WORDS.get(c, c)} (weight {w:.2f})" if i == 0 else f"{_WORDS.get(c, c)} ({w:.2f})"
             for i, (c, w) in enumerate(used)]  # fmt: skip
    joined = parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]
    return f"The served {horizon}-week forecast combines {joined}."


def final_stack(forecasts: pd.DataFrame, margins: pd.DataFrame) -> ServedStack:
    """Choose what is served from the backtest's margins and fit its final weights.

    Parameters
    ----------
    forecasts : every out-of-sample component forecast of the backtest (warm-up
        and scored weeks: ``training.backtest.run.STACK_FORECASTS``).
    margins : the backtest's margins table (its ``stacked`` rows are used).
    """
    return served_stack(forecasts, choose_served(margins))


def write_stack(stack: ServedStack | None, directory: str | Path) -> Path | None:
    """Write ``stack.json`` into a model directory; with None, remove a stale one."""
    path = Path(directory) / STACK_FILE
    if stack is None:
        path.unlink(missing_ok=True)
        return None
    path.write_text(json.dumps(stack.to_json(), indent=2, default=_plain) + "\n")
    return path


def component_forecasts(
    stack: ServedStack | None,
    features: pd.DataFrame,
    panel: pd.DataFrame,
    adjacency: pd.DataFrame,
    params,
    *,
    origins: Sequence | None = None,
) -> pd.DataFrame | None:
    """Forecast the served baseline components at the latest origin week, for a snapshot.

    Parameters
    ----------
    stack : the model's ``stack.json`` (None, or serving the booster alone: None is returned).
    features, panel, adjacency : the layers the snapshot is built from.
    params : all settings (``training.config.Params``: features' horizons, baselines).
    origins : the origin weeks to forecast at (default: the latest); each must
        be a panel week.

    Returns
    -------
    pandas.DataFrame or None
        ``method, area_code, origin_week, horizon, mu`` of each component the
        served forecast weighs.
    """
    from training.baselines.predict import predict_baselines
    from training.features import feature_columns

    used = [] if stack is None else [c for c in stack.components_used() if c != "model"]
    if not used:
        return None
    if origins is None:
        origins = [pd.Timestamp(features["origin_week"].max())]
    rows = predict_baselines(
        panel,
        adjacency,
        pd.DatetimeIndex(origins),
        params.features.horizons,
        glm_features=features,
        glm_columns=feature_columns(features, spatial=False),
        params=params.baselines,
        methods=used,
    )
    return rows[["method", "area_code", "origin_week", "horizon", "mu"]].reset_index(drop=True)
