"""Hold the candidate against the production model on the same backtest rows.

The champion is the version holding the registry alias ``policy.alias``
(``production``). Both are scored with ``mlflow.models.evaluate`` (no model:
the frame carries the predictions) and compared with
``mlflow.validate_evaluation_results``. MLflow's ``MetricThreshold`` can only
demand an improvement (``min_relative_change`` is in [0, 1]), so a tolerated
worsening becomes an absolute ``threshold`` derived from the champion's value:
``champion * (1 + max_relative_worsening)`` for a metric where lower is
better, ``champion * (1 - max_relative_worsening)`` where higher is better
(or the champion's value -/+ ``max_absolute_worsening`` when that allows more).

The candidate's backtest forecasts are out of sample; the champion was
trained once and may have seen some backtest weeks, which favours it: the
comparison can only be stricter than fair, never laxer.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import mlflow
import numpy as np
import pandas as pd
from mlflow.exceptions import MlflowException
from mlflow.models import MetricThreshold, make_metric
from mlflow.models.evaluation.validation import ModelValidationFailedException

from governance.checks import Check, finite_or_none
from governance.policy import ChampionPolicy, MetricTolerance

__all__ = ["ChampionResult", "compare_to_champion", "evaluate_forecasts", "champion_metrics"]

KEYS = ["area_code", "origin_week", "horizon"]


@dataclass(frozen=True)
class ChampionResult:
    """The comparison: ``status`` is ``compared``, ``no_champion`` or ``not_comparable``."""

    status: str
    production_version: str | None
    candidate: dict[str, float] = field(default_factory=dict)
    champion: dict[str, float] = field(default_factory=dict)
    thresholds: dict[str, float] = field(default_factory=dict)
    checks: list[Check] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        """Whether every gated champion check passed."""
        return all(c.passed for c in self.checks if c.gated)


def champion_metrics(coverage: float) -> list:
    """Build the extra MLflow metrics: Poisson deviance, PAI, calibration gap.

    ``pai_area_10``: the share of harm in the top ``coverage`` of areas of each
    forecast (``slice_id``), over ``coverage``. ``calibration_gap``: the worst
    |log(sum mu / sum y)| over the audit groups (``group_id``).
    """

    def poisson_deviance(predictions: pd.Series, targets: pd.Series) -> float:
        mu = np.maximum(predictions.to_numpy(float), 1e-12)
        y = targets.to_numpy(float)
        with np.errstate(divide="ignore", invalid="ignore"):
            ylogy = np.where(y > 0, y * np.log(y / mu), 0.0)
        return float(np.mean(2.0 * (ylogy - (y - mu))))

    def pai_area_10(predictions: pd.Series, targets: pd.Series, slice_id: pd.Series) -> float:
        frame = pd.DataFrame(
            {"mu": predictions.to_numpy(), "y": targets.to_numpy(), "s": slice_id.to_numpy()}
        )
        rank = frame.groupby("s")["mu"].rank(method="first", ascending=False)
        k = np.ceil(coverage * frame.groupby("s")["mu"].transform("size"))
        captured, total = frame["y"][rank <= k].sum(), frame["y"].sum()
        share = (rank <= k).sum() / len(frame)
        return float(captured / total / share) if total > 0 else float("nan")

    def calibration_gap(predictions: pd.Series, targets: pd.Series, group_id: pd.Series) -> float:
        sums = (
            pd.DataFrame({"mu": predictions.to_numpy(), "y": targets.to_numpy()})
            .groupby(group_id.to_numpy())
            .sum()
        )
        sums = sums[sums["y"] > 0]
        return float(np.abs(np.log(sums["mu"] / sums["y"])).max()) if len(sums) else float("nan")

    return [
        make_metric(eval_fn=poisson_deviance, greater_is_better=False, name="poisson_deviance"),
        make_metric(eval_fn=pai_area_10, greater_is_better=True, name="pai_area_10"),
        make_metric(eval_fn=calibration_gap, greater_is_better=False, name="calibration_gap"),
    ]


def evaluate_forecasts(frame: pd.DataFrame, *, coverage: float, run_name: str):
    """Run ``mlflow.models.evaluate`` on ``mu, y, slice_id, group_id`` in its own run."""
    data = frame[["mu", "y", "slice_id", "group_id"]].astype(
        {"slice_id": "int64", "group_id": "int64"}
    )
    with mlflow.start_run(run_name=run_name, tags={"harmcast.stage": "audit"}):
        return mlflow.models.evaluate(
            data=data,
            predictions="mu",
            targets="y",
            model_type="regressor",
            extra_metrics=champion_metrics(coverage),
            evaluators="default",
            evaluator_config={"log_model_explainability": False},
        )


def compare_to_champion(
    rows: pd.DataFrame,
    policy: ChampionPolicy,
    *,
    tracking_uri: str,
    model_name: str,
    experiment: str = "harmcast",
) -> ChampionResult:
    """Compare the candidate's forecasts with the champion's on the same rows.

    Parameters
    ----------
    rows : backtest rows with the candidate's ``mu``, the outcome ``y``,
        ``target_week``, ``horizon``, ``group`` (an audit group label) and the
        feature columns the champion may need.
    policy : tolerances per metric and the registry alias of the champion.
    tracking_uri, model_name : the MLflow registry and registered model.
    experiment : where the two evaluation runs are logged.
    """
    # mlflow.models.evaluate logs through the fluent API, which reads the
    # process-wide tracking URI; restore the caller's afterwards. The registry is
    # only read through an explicit client, so its global URI is left alone.
    previous = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(tracking_uri)
    try:
        return _compare(
            rows, policy, tracking_uri=tracking_uri, model_name=model_name, experiment=experiment
        )
    finally:
        mlflow.set_tracking_uri(previous)


def _compare(
    rows: pd.DataFrame,
    policy: ChampionPolicy,
    *,
    tracking_uri: str,
    model_name: str,
    experiment: str,
) -> ChampionResult:
    client = mlflow.MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
    try:
        version = client.get_model_version_by_alias(model_name, policy.alias)
    except MlflowException:
        return _skip("no_champion", None, f"no version of {model_name!r} holds @{policy.alias}")
    booster = mlflow.lightgbm.load_model(version.source)
    missing = [f for f in booster.feature_name() if f not in rows]
    if missing:
        return _skip(
            "not_comparable",
            str(version.version),
            f"champion v{version.version} needs features absent here: {missing}",
        )
    observed = rows[rows["y"].notna()].reset_index(drop=True)
    x = observed[booster.feature_name()].to_numpy(np.float32)
    slices = observed.groupby(["target_week", "horizon"], sort=True).ngroup()
    frame = observed.assign(
        slice_id=slices.to_numpy(), group_id=pd.factorize(observed["group"].astype(str))[0]
    )
    mlflow.set_experiment(experiment)
    cand = evaluate_forecasts(frame, coverage=policy.pai_coverage, run_name="audit-candidate")
    champ = evaluate_forecasts(
        frame.assign(mu=booster.predict(x)),
        coverage=policy.pai_coverage,
        run_name=f"audit-champion-v{version.version}",
    )
    checks, limits = [], {}
    for name, tolerance in policy.thresholds.items():
        threshold = _threshold(tolerance, champ.metrics.get(name))
        limits[name] = threshold.threshold
        checks.append(_validate(name, threshold, cand, champ, version.version))
    return ChampionResult(
        status="compared",
        production_version=str(version.version),
        candidate={k: float(v) for k, v in cand.metrics.items()},
        champion={k: float(v) for k, v in champ.metrics.items()},
        thresholds=limits,
        checks=checks,
    )


def _threshold(tolerance: MetricTolerance, baseline: float | None) -> MetricThreshold:
    base = float(baseline) if baseline is not None else float("nan")
    slack = abs(base) * tolerance.max_relative_worsening
    if tolerance.max_absolute_worsening is not None:
        slack = max(slack, tolerance.max_absolute_worsening)
    limit = base - slack if tolerance.greater_is_better else base + slack
    return MetricThreshold(
        threshold=limit,
        greater_is_better=tolerance.greater_is_better,
        min_relative_change=tolerance.min_relative_change,
    )


def _validate(name, threshold: MetricThreshold, cand, champ, version: str) -> Check:
    try:
        mlflow.validate_evaluation_results(
            validation_thresholds={name: threshold},
            candidate_result=cand,
            baseline_result=champ,
        )
        passed, why = True, ""
    except ModelValidationFailedException as exc:
        passed, why = False, f": {exc.message}"
    better = "higher" if threshold.greater_is_better else "lower"
    bound = finite_or_none(threshold.threshold)
    return Check(
        name=f"champion.{name}",
        category="champion",
        passed=passed,
        gated=True,
        value=finite_or_none(cand.metrics.get(name)),
        lower=bound if threshold.greater_is_better else None,
        upper=None if threshold.greater_is_better else bound,
        detail=f"candidate vs production v{version} ({champ.metrics.get(name):.4g}; "
        f"{better} is better){why}",
    )


def _skip(status: str, version: str | None, why: str) -> ChampionResult:
    check = Check(
        name="champion.comparison", category="champion", passed=True, gated=True, detail=why
    )
    return ChampionResult(status=status, production_version=version, checks=[check])
