"""Area-level fairness audit of backtest forecasts (fairlearn ``MetricFrame``).

The harm at stake is over-forecasting, and so over-policing, some communities,
or under-serving others. Areas are grouped by audit-only attributes (IMD
quintile, ethnic band, district); each backtest row (an area-week) belongs to
its area's group. Every metric below is a ratio of sums over rows, so it is
computed from per-group sums:

- ``calibration_ratio``: sum mu / sum y.
- ``calibration_ratio_ae``: the same against A&E assaults alone. The model
  forecasts police violence plus A&E assaults, so mu is scaled by the share
  ``sum y_ae / sum y`` within the area's deprivation decile (city-wide
  ``ae_scale`` when the areas carry no ``imd_decile``): what the forecast implies
  for A&E if recording were the same everywhere. Within deciles, because A&E
  sees a larger share of assaults where weapon injuries are commoner, which
  would otherwise read as a gap for a calibrated model. A&E records assaults whoever patrols,
  so a group over-forecast against A&E while calibrated against the target is
  recorded more by the police and the model has learnt that (``recording_gap``
  = calibration_ratio - calibration_ratio_ae). It is gated only where the
  group and its reference hold ``min_ae_count`` A&E attendances.
- ``fpr_top_k`` / ``fdr_top_k``: among area-weeks with no incident, the share
  flagged; among flagged area-weeks, the share with no incident (as Aequitas
  computes them for a ``rank_pct`` threshold). Reported, not gated.
- ``fpr_top_k_adjusted`` / ``fdr_top_k_adjusted``: the same rates against the
  rates the model itself predicts. With ``p0 = 1 - p_any`` the model's
  P(no incident) for an area-week (``exp(-mu)`` when ``p_any`` is absent),
  a group's expected false alarms are the sum of p0 over its flagged
  area-weeks and its expected negatives the sum of p0 over all its area-weeks;
  ``fpr_excess = (FP / negatives) / (E[FP] / E[negatives])`` and
  ``fdr_excess = (FP / flagged) / mean(p0 over flagged) = FP / E[FP]``. A group
  never flagged has an excess of 1 (nothing observed, nothing expected).
- ``selection_vs_harm``: the group's share of hotspot flags over its share of
  observed harm, read against 1 (parity with harm), not against a reference
  group, and never gated: a top-k cut concentrates flags on the riskiest
  areas, so even a perfect ranking gives high-harm groups more than their
  share of harm.
- ``false_alarm_share``: the group's share of all false alarms over its share
  of area-weeks; ``miss_share``: its share of all harm outside the flags over
  its share of harm (1: proportional).
- ``poisson_deviance``: the mean Poisson deviance.

Why false-alarm parity is risk-adjusted: hotspot flags direct patrols, a
punitive intervention on a small fraction of areas, for which the Aequitas
fairness tree asks for FDR/FPR parity. But where base rates differ between
groups (deprivation truly drives violence), a calibrated forecast cannot also
equalise FPR or FDR (Chouldechova 2017; Kleinberg, Mullainathan and Raghavan
2016): the quiet weeks of high-risk areas are flagged more often, and raw
ratios fail every accurate model for the base rates themselves. The adjusted
metrics ask instead whether a group's flags are false alarms more often than
the model's own predictive distribution says: a group whose forecasts are
inflated gets flags its harm does not support, and its excess rises above the
reference group's, while a calibrated model on unequal base rates has an
excess near 1 everywhere. The raw rates stay in the report.

A hotspot flag marks the top ``hotspot_coverage`` of areas by mu within each
forecast (target week and horizon). Each group is compared with a reference
group by the ratio of their metrics (``selection_vs_harm`` with 1); bootstrap
intervals come from ``MetricFrame(n_boot=..., ci_quantiles=...)`` over areas,
a cluster bootstrap that keeps an area's weeks together. With ``gate_on: ci``
a gated disparity fails when its whole interval lies outside the band.
See docs/fairness-audit.md.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from governance._fairness_checks import judge_ratios, ratio_checks
from governance._fairness_frames import (
    ADJUSTED_METRICS,
    METRIC_FUNCTIONS,
    PARITY_METRICS,
    area_sums,
    group_table,
    ratio_table,
)
from governance.checks import Check
from governance.policy import FairnessPolicy
from training.errors import ConfigError, SchemaError
from training.predictions import prediction_columns

__all__ = [
    "METRICS",
    "FairnessAudit",
    "fairness_audit",
    "flag_hotspots",
    "area_groups",
    "MISSING_COLUMN",
    "UNKNOWN_GROUPING",
    "UNKNOWN_METRIC",
    "PARITY_NOT_GATED",
    "UNKNOWN_REFERENCE",
    "NO_OBSERVED_ROWS",
]

MISSING_COLUMN = "missing column; expected {expected}"
UNKNOWN_GROUPING = "grouping {name!r} is neither a column of the areas table nor audit_{name}"
UNKNOWN_METRIC = "unknown fairness metric {name!r}; expected one of {expected}"
UNKNOWN_REFERENCE = "reference group {reference!r} of {grouping!r} is not among {groups}"
NO_OBSERVED_ROWS = "no backtest rows with an observed y"
PARITY_NOT_GATED = (
    "fairness metric {name!r} is read against parity with harm, not a reference group: "
    "it can be reported, not gated"
)

PREDICTION_COLUMNS = prediction_columns("area_code", "target_week", "horizon", "mu", "y", "y_ae")

METRICS = tuple(METRIC_FUNCTIONS)


@dataclass(frozen=True)
class FairnessAudit:
    """What the fairness audit found.

    Attributes
    ----------
    groups : one row per (grouping, group): ``n_areas``, ``n_rows``, each metric
        and ``recording_gap`` (calibration_ratio - calibration_ratio_ae).
    ratios : one row per (grouping, metric, group): ``reference``, ``ratio``,
        ``ci_low``, ``ci_high``, ``gated``, ``passed``.
    checks : one :class:`Check` per ratio row.
    ae_scale : the city-wide share of A&E assaults in the target.
    references : the reference group of each grouping.
    """

    groups: pd.DataFrame
    ratios: pd.DataFrame
    checks: list[Check]
    ae_scale: float
    references: dict[str, str] = field(default_factory=dict)


def flag_hotspots(predictions: pd.DataFrame, *, coverage: float) -> pd.DataFrame:
    """Return a copy with a boolean ``flag``: the top ``coverage`` of areas by mu per forecast.

    Each forecast (``target_week``, ``horizon``) flags ``ceil(coverage * n_areas)``
    areas; ties are broken by area code so the result is reproducible.
    """
    keyed = predictions.reset_index(drop=True)
    ordered = keyed.sort_values(
        ["target_week", "horizon", "mu", "area_code"], ascending=[True, True, False, True]
    )
    keys = [ordered["target_week"], ordered["horizon"]]
    rank = ordered.groupby(keys, sort=False).cumcount() + 1
    size = ordered.groupby(keys, sort=False)["mu"].transform("size")
    flag = (rank <= np.ceil(coverage * size)).sort_index().to_numpy(bool)
    return predictions.assign(flag=flag)


def area_groups(areas: pd.DataFrame, groupings: Iterable[str]) -> pd.DataFrame:
    """Return ``area_code`` plus one string column per grouping.

    ``imd_quintile`` is derived from ``imd_decile`` (deciles 1-2 -> ``Q1``, the
    most deprived); any other grouping is the areas column of that name, or
    ``audit_<name>`` (so ``ethnic_band`` reads ``audit_ethnic_band``).
    """
    out = pd.DataFrame({"area_code": areas["area_code"].astype(str).to_numpy()})
    for name in groupings:
        if name == "imd_quintile" and "imd_decile" in areas:
            quintile = np.ceil(areas["imd_decile"].to_numpy(float) / 2).astype(int)
            out[name] = [f"Q{q}" for q in quintile]
        elif name in areas:
            out[name] = areas[name].astype(str).to_numpy()
        elif f"audit_{name}" in areas:
            out[name] = areas[f"audit_{name}"].astype(str).to_numpy()
        else:
            raise SchemaError("areas", UNKNOWN_GROUPING.format(name=name), field=name)
    return out


def fairness_audit(
    predictions: pd.DataFrame,
    areas: pd.DataFrame,
    policy: FairnessPolicy,
    *,
    progress: Callable[[str, int, int], None] | None = None,
) -> FairnessAudit:
    """Compare every audit group with its reference group on each fairness metric.

    Parameters
    ----------
    predictions : backtest rows of one method (``area_code``, ``target_week``,
        ``horizon``, ``mu``, ``y``, ``y_ae``); rows without ``y`` are ignored.
    areas : the areas table with the grouping columns.
    policy : thresholds, groupings, gated metrics and bootstrap settings.
    progress : optional ``progress(step, done, total)``, once per grouping bootstrapped.

    Raises
    ------
    SchemaError
        When a column or grouping is missing, or no row has an observed ``y``.
    ConfigError
        When the policy names an unknown metric or reference group.
    """
    for name in PREDICTION_COLUMNS:
        if name not in predictions:
            raise SchemaError(
                "predictions", MISSING_COLUMN.format(expected=PREDICTION_COLUMNS), field=name
            )
    for name in [*policy.gated, *policy.reported]:
        if name not in METRIC_FUNCTIONS:
            raise ConfigError(UNKNOWN_METRIC.format(name=name, expected=METRICS))
        if name in PARITY_METRICS and name in policy.gated:
            raise ConfigError(PARITY_NOT_GATED.format(name=name))
    rows = flag_hotspots(predictions, coverage=policy.hotspot_coverage)
    rows = rows[rows["y"].notna()]
    if "imd_decile" in areas:
        decile = areas.drop_duplicates("area_code").set_index("area_code")["imd_decile"]
        rows = rows.assign(ae_stratum=rows["area_code"].map(decile).fillna(-1).to_numpy())
    if rows.empty:
        raise SchemaError("predictions", NO_OBSERVED_ROWS, field="y")
    sums, ae_scale = area_sums(rows)
    groups = area_groups(areas, policy.groupings).set_index("area_code")
    metrics = [*policy.gated, *[m for m in policy.reported if m not in policy.gated]]
    boot_metrics = metrics if policy.ci_for_reported else list(policy.gated)
    tables, ratio_tables, checks, references = [], [], [], {}
    n_groupings = len(policy.groupings)
    if progress is not None:
        progress("fairness: groupings bootstrapped", 0, n_groupings)
    for done, (grouping, spec) in enumerate(policy.groupings.items(), start=1):
        labels = groups[grouping].reindex(sums["area_code"]).fillna("unknown").to_numpy(str)
        table = group_table(sums, labels, grouping)
        reference = _reference(table, spec.reference, grouping)
        expected_fa = table.set_index("group").loc[reference, "expected_false_alarms"]
        # A reference group (almost) never flagged gives no evidence to compare
        # with: the adjusted metrics are then compared with the city's flags.
        city = ADJUSTED_METRICS if expected_fa < policy.min_expected_false_alarms else frozenset()
        ratios = ratio_table(
            sums,
            labels,
            table["group"].tolist(),
            reference,
            metrics=metrics,
            boot_metrics=boot_metrics,
            n_boot=policy.n_boot,
            ci_level=policy.ci_level,
            seed=policy.seed,
            city_metrics=frozenset(city),
        )
        ratios = judge_ratios(ratios, table, grouping, policy)
        tables.append(table)
        ratio_tables.append(ratios)
        checks.extend(ratio_checks(ratios, policy))
        references[grouping] = reference
        if progress is not None:
            progress("fairness: groupings bootstrapped", done, n_groupings)
    return FairnessAudit(
        groups=pd.concat(tables, ignore_index=True),
        ratios=pd.concat(ratio_tables, ignore_index=True),
        checks=checks,
        ae_scale=ae_scale,
        references=references,
    )


def _reference(table: pd.DataFrame, reference: str, grouping: str) -> str:
    groups = table["group"].tolist()
    if reference == "largest":
        ordered = table.sort_values(["n_areas", "n_rows", "group"], ascending=[False, False, True])
        return str(ordered["group"].iloc[0])
    if reference not in groups:
        raise ConfigError(
            UNKNOWN_REFERENCE.format(reference=reference, grouping=grouping, groups=groups)
        )
    return reference
