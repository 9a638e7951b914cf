"""SHAP audit of the LightGBM forecaster.

All SHAP values are on the booster's raw (log-link) scale, where they add up:
``base value + sum of a row's SHAP values = log mu``. Checks:

- ``shap.sensitive_features``: no feature name starts with ``audit_``.
- ``shap.additivity``: SHAP values plus the base value reproduce the raw score.
- ``shap.crosscheck``: ``shap.TreeExplainer`` agrees with LightGBM's own
  ``predict(pred_contrib=True)`` (TreeSHAP implemented twice).
- ``shap.proxy_share``: the share of total mean |SHAP| carried by declared proxy
  features (which may stand in for a protected characteristic).
- ``shap.monotone.<feature>``: more recent violence must not lower risk. Tested
  as the Spearman correlation between a feature's value and its SHAP value over
  the sample: a negative correlation means higher values push the forecast down
  on average. Features with a negligible share of the attribution
  (``monotone_min_share``) are reported only: the sign of a tiny effect is
  noise. (A partial-dependence check would also catch it but costs a full
  prediction per grid point.)
- ``shap.rank_stability``: the Spearman correlation of mean |SHAP| between the
  backtest folds' boosters (min or mean over pairs), each explained on its own
  fold rows (or on the common sample when a fold has none).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass, field

import lightgbm as lgb
import numpy as np
import pandas as pd
import shap
from scipy.stats import spearmanr

from governance.checks import Check, finite_or_none, in_bounds
from governance.policy import ShapPolicy
from training.errors import SchemaError
from training.features import SENSITIVE_PREFIX

#: ``progress(step, done, total)``, called as the audit advances.
Progress = Callable[[str, int, int], None]

__all__ = [
    "FoldModel",
    "ShapAudit",
    "shap_audit",
    "shap_values",
    "MISSING_FEATURE",
]

MISSING_FEATURE = "feature {name!r} of the model is not a column of the feature frame"


@dataclass(frozen=True)
class FoldModel:
    """A backtest fold's booster and, when known, the feature rows it forecast."""

    fold: int
    booster: lgb.Booster
    rows: pd.DataFrame | None = None


@dataclass(frozen=True)
class ShapAudit:
    """What the SHAP audit found.

    Attributes
    ----------
    importance : features by mean |SHAP| (descending): ``feature``,
        ``mean_abs_shap``, ``share``.
    fold_importance : one column of mean |SHAP| per fold, indexed by feature.
    stability : pairwise Spearman correlations of fold importances.
    checks : one :class:`Check` per rule.
    values, sample : the SHAP matrix and the rows it explains (for plots).
    base_value : the explainer's expected raw score.
    """

    importance: pd.DataFrame
    fold_importance: pd.DataFrame
    stability: list[dict]
    checks: list[Check]
    values: np.ndarray = field(repr=False)
    sample: pd.DataFrame = field(repr=False)
    base_value: float = 0.0


def shap_values(booster: lgb.Booster, x: pd.DataFrame) -> tuple[np.ndarray, float]:
    """Return the TreeSHAP matrix (rows x features, raw scale) and the base value."""
    explainer = shap.TreeExplainer(booster)
    values = np.asarray(explainer.shap_values(x), dtype=float)
    return values, float(np.ravel(explainer.expected_value)[0])


def shap_audit(
    booster: lgb.Booster,
    feature_names: list[str],
    features: pd.DataFrame,
    policy: ShapPolicy,
    *,
    folds: list[FoldModel] = (),
    progress: Progress | None = None,
) -> ShapAudit:
    """Explain the booster on a sample of ``features`` and run every SHAP check.

    Parameters
    ----------
    booster, feature_names : the candidate model and its columns, in order.
    features : rows with at least the feature columns; ``policy.sample_rows``
        rows are drawn (seeded by ``policy.seed``).
    policy : the SHAP thresholds.
    folds : the backtest fold boosters, for the stability check.
    progress : optional ``progress(step, done, total)``: the candidate, then
        each fold, as explained.

    Raises
    ------
    SchemaError
        When a model feature is not a column of ``features``.
    """
    names = list(feature_names)
    for name in names:
        if name not in features:
            raise SchemaError("features", MISSING_FEATURE.format(name=name), field=name)
    n = min(policy.sample_rows, len(features))
    sample = features.sample(n=n, random_state=policy.seed)[names].reset_index(drop=True)
    report = progress or _no_progress
    report("SHAP: candidate", 0, 1)
    values, base = shap_values(booster, sample)
    report("SHAP: candidate", 1, 1)
    mean_abs = np.abs(values).mean(axis=0)
    total = mean_abs.sum()
    importance = pd.DataFrame(
        {
            "feature": names,
            "mean_abs_shap": mean_abs,
            "share": mean_abs / total if total > 0 else np.zeros_like(mean_abs),
        }
    ).sort_values("mean_abs_shap", ascending=False, ignore_index=True)
    fold_importance = _fold_importance(folds, names, sample, policy, report)
    stability = _pairwise_stability(fold_importance)
    checks = [
        _sensitive_check(names),
        _additivity_check(booster, sample, values, base, policy),
        _crosscheck(booster, sample, values, policy),
        _proxy_check(importance, policy),
        *_monotone_checks(sample, values, importance, policy),
        _stability_check(stability, policy),
    ]
    return ShapAudit(importance, fold_importance, stability, checks, values, sample, base)


def _no_progress(step: str, done: int, total: int) -> None:
    return None


def _fold_importance(
    folds: list[FoldModel],
    names: list[str],
    sample: pd.DataFrame,
    policy: ShapPolicy,
    report: Progress = _no_progress,
) -> pd.DataFrame:
    columns = {}
    if folds:
        report("SHAP: backtest folds", 0, len(folds))
    for k, fold in enumerate(folds, start=1):
        if list(fold.booster.feature_name()) != names:
            report("SHAP: backtest folds", k, len(folds))
            continue  # a fold trained on other columns cannot be ranked alongside
        rows = sample
        if fold.rows is not None and len(fold.rows):
            n = min(policy.sample_rows, len(fold.rows))
            rows = fold.rows.sample(n=n, random_state=policy.seed)[names]
        # LightGBM's own TreeSHAP: the values shap.TreeExplainer returns for a
        # LightGBM booster, without building an explainer (parsing every tree)
        # for each fold; the candidate's values are cross-checked against it.
        values = np.asarray(fold.booster.predict(rows, pred_contrib=True), dtype=float)[:, :-1]
        columns[f"fold_{fold.fold}"] = np.abs(values).mean(axis=0)
        report("SHAP: backtest folds", k, len(folds))
    return pd.DataFrame(columns, index=pd.Index(names, name="feature"))


def _pairwise_stability(fold_importance: pd.DataFrame) -> list[dict]:
    out = []
    for a, b in itertools.combinations(fold_importance.columns, 2):
        rho = spearmanr(fold_importance[a], fold_importance[b]).statistic
        out.append({"fold_a": a, "fold_b": b, "spearman": finite_or_none(rho)})
    return out


def _sensitive_check(names: list[str]) -> Check:
    bad = [n for n in names if n.startswith(SENSITIVE_PREFIX)]
    return Check(
        name="shap.sensitive_features",
        category="shap",
        passed=not bad,
        gated=True,
        value=float(len(bad)),
        upper=0.0,
        detail=f"audit-only columns among the features: {bad}"
        if bad
        else f"no feature starts with {SENSITIVE_PREFIX!r}",
    )


def _additivity_check(
    booster: lgb.Booster,
    sample: pd.DataFrame,
    values: np.ndarray,
    base: float,
    policy: ShapPolicy,
) -> Check:
    raw = np.asarray(booster.predict(sample, raw_score=True), dtype=float)
    error = float(np.max(np.abs(values.sum(axis=1) + base - raw))) if len(raw) else 0.0
    return Check(
        name="shap.additivity",
        category="shap",
        gated=True,
        value=error,
        upper=policy.additivity_tolerance,
        passed=error <= policy.additivity_tolerance,
        detail="max |base value + sum of SHAP values - raw (log) score| over the sample",
    )


def _crosscheck(
    booster: lgb.Booster, sample: pd.DataFrame, values: np.ndarray, policy: ShapPolicy
) -> Check:
    n = min(policy.crosscheck_rows, len(sample))
    contrib = np.asarray(booster.predict(sample.iloc[:n], pred_contrib=True), dtype=float)
    error = float(np.max(np.abs(contrib[:, :-1] - values[:n]))) if n else 0.0
    return Check(
        name="shap.crosscheck",
        category="shap",
        gated=True,
        value=error,
        upper=policy.additivity_tolerance,
        passed=error <= policy.additivity_tolerance,
        detail=f"max |TreeExplainer - predict(pred_contrib=True)| on {n} rows",
    )


def _proxy_check(importance: pd.DataFrame, policy: ShapPolicy) -> Check:
    proxies = importance[importance["feature"].isin(policy.proxy_features)]
    share = float(proxies["share"].sum())
    return Check(
        name="shap.proxy_share",
        category="shap",
        gated=True,
        value=share,
        upper=policy.max_proxy_share,
        passed=share <= policy.max_proxy_share,
        detail=f"share of mean |SHAP| on {sorted(policy.proxy_features)}",
    )


def _monotone_checks(
    sample: pd.DataFrame, values: np.ndarray, importance: pd.DataFrame, policy: ShapPolicy
) -> list[Check]:
    names = list(sample.columns)
    shares = importance.set_index("feature")["share"]
    checks = []
    for feature in policy.monotone_increasing:
        if feature not in names:
            checks.append(
                Check(
                    name=f"shap.monotone.{feature}",
                    category="shap",
                    passed=True,
                    gated=False,
                    detail="not a feature of this model",
                )
            )
            continue
        column = sample[feature].to_numpy(float)
        effect = values[:, names.index(feature)]
        constant = np.ptp(column) == 0 or np.ptp(effect) == 0
        rho = float("nan") if constant else float(spearmanr(column, effect).statistic)
        minor = float(shares[feature]) < policy.monotone_min_share
        detail = "Spearman(feature value, its SHAP value)"
        if constant:
            detail = "constant in the sample or without effect"
        elif minor:
            detail += f"; reported only: {shares[feature]:.1%} of the attribution"
        checks.append(
            Check(
                name=f"shap.monotone.{feature}",
                category="shap",
                gated=not (constant or minor),
                passed=constant or in_bounds(rho, policy.monotone_min_correlation, None),
                value=finite_or_none(rho),
                lower=policy.monotone_min_correlation,
                detail=detail,
            )
        )
    return checks


def _stability_check(stability: list[dict], policy: ShapPolicy) -> Check:
    rhos = [s["spearman"] for s in stability if s["spearman"] is not None]
    name = "shap.rank_stability"
    if not rhos:
        return Check(
            name=name,
            category="shap",
            passed=True,
            gated=False,
            lower=policy.min_rank_stability,
            detail="fewer than two comparable fold models",
        )
    value = min(rhos) if policy.rank_stability_statistic == "min" else float(np.mean(rhos))
    return Check(
        name=name,
        category="shap",
        gated=True,
        value=value,
        lower=policy.min_rank_stability,
        passed=value >= policy.min_rank_stability,
        detail=f"{policy.rank_stability_statistic} Spearman of fold importances over "
        f"{len(rhos)} pairs",
    )
