"""Scoring published forecasts, judging them against policy, and the monitoring log.

Each week the horizon-1 forecast published the week before is scored against
what happened. One week of a small city is noisy, so the log keeps each week's
sums (forecast, outcome, outcome inside hotspots, per audit group) and policy
is judged on the last ``monitoring.window_weeks`` weeks pooled:

- ``accuracy.pai``: hit rate / share of the city's area flagged, at least
  ``monitoring.min_pai``;
- ``accuracy.calibration``: sum of forecasts / sum of outcomes inside
  ``monitoring.calibration_band``;
- ``fairness.<grouping>.<group>``: a group's calibration relative to the
  reference group's inside ``fairness.band``.

Calibration checks breach only when the whole interval (quasi-Poisson, on
the log scale, dispersion from the window's Pearson residuals) lies outside
the band. A check that breaches ``monitoring.breach_weeks``
weeks in a row (drift checks included) puts the model up for review.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from governance.fairness import area_groups
from governance.policy import Policy
from training.errors import SchemaError

__all__ = [
    "LOG_FILE",
    "score_forecast",
    "judge_window",
    "review_reasons",
    "read_log",
    "log_line",
    "clean_json",
    "MSG_BAD_LOG",
]

LOG_FILE = "monitoring.jsonl"
MSG_BAD_LOG = "not a JSON line of the monitoring log"
_NEEDED = ("area_code", "horizon", "mu", "hotspot", "target_week")


def score_forecast(
    snapshot: pd.DataFrame,
    panel: pd.DataFrame,
    areas: pd.DataFrame,
    *,
    week: pd.Timestamp,
    groupings: list[str],
) -> dict | None:
    """Sum last week's horizon-1 forecast against the week's outcomes.

    Parameters
    ----------
    snapshot : the published snapshot (``area_code, horizon, mu, hotspot,
        target_week``).
    panel : the panel including ``week`` (``violence`` is the outcome).
    areas : the areas frame (``area_km2``, grouping columns).
    week : the week that just happened.
    groupings : audit groupings (``governance.fairness.area_groups`` names).

    Returns
    -------
    dict or None
        ``origin_week, n_areas, sum_mu, sum_y, hot_y, hot_km2_share,
        pearson`` (sum of squared Pearson residuals), ``hit_rate, pai,
        calibration`` and ``groups: {grouping: {label: {n_areas,
        sum_mu, sum_y}}}``; None when the snapshot has no horizon-1 row for
        ``week``, or the week's target is missing (a source delivered nothing).
    """
    missing = [c for c in _NEEDED if c not in snapshot.columns]
    if missing:
        raise SchemaError("snapshot", f"missing columns {missing}")
    week = pd.Timestamp(week)
    rows = snapshot.loc[
        (snapshot["horizon"] == 1) & (pd.to_datetime(snapshot["target_week"]) == week)
    ]
    if rows.empty:
        return None
    outcome = panel.loc[panel["week_start"] == week, ["area_code", "violence"]]
    # a week whose target a source did not cover is missing, never scored as zeros
    outcome = outcome.loc[outcome["violence"].notna()]
    if outcome.empty:
        return None
    scored = rows[["area_code", "mu", "hotspot"]].merge(outcome, on="area_code", how="inner")
    km2 = areas.set_index("area_code")["area_km2"].astype(float)
    scored = scored.assign(km2=scored["area_code"].map(km2).fillna(0.0).to_numpy())
    hot = scored["hotspot"].astype(bool)
    sum_y, sum_mu = float(scored["violence"].sum()), float(scored["mu"].sum())
    hot_y = float(scored.loc[hot, "violence"].sum())
    share = float(scored.loc[hot, "km2"].sum() / max(scored["km2"].sum(), 1e-12))
    labels = area_groups(areas, groupings).merge(scored, on="area_code", how="inner")
    groups = {
        g: {
            str(label): {
                "n_areas": int(len(part)),
                "sum_mu": float(part["mu"].sum()),
                "sum_y": float(part["violence"].sum()),
            }  # fmt: skip
            for label, part in labels.groupby(g)
        }
        for g in groupings
    }
    origin = rows["origin_week"].iat[0] if "origin_week" in rows else week - pd.Timedelta(days=7)
    return {
        "origin_week": f"{pd.Timestamp(origin):%Y-%m-%d}",
        "n_areas": int(len(scored)),
        "sum_mu": sum_mu,
        "sum_y": sum_y,
        "hot_y": hot_y,
        "hot_km2_share": share,
        "pearson": float(
            ((scored["violence"] - scored["mu"]) ** 2 / scored["mu"].clip(lower=1e-6)).sum()
        ),
        "hit_rate": hot_y / sum_y if sum_y > 0 else None,
        "pai": (hot_y / sum_y) / share if sum_y > 0 and share > 0 else None,
        "calibration": sum_mu / sum_y if sum_y > 0 else None,
        "groups": groups,
    }


def _interval_outside(
    mu: float, y: float, band: tuple[float, float], z: float, *, phi: float, extra: float = 0
):
    """Ratio mu/y, and whether its whole log-scale interval lies outside ``band``.

    The variance of ``log(y)`` is ``phi / y`` (quasi-Poisson): area shocks make
    weekly counts overdispersed, and Poisson intervals would be too narrow.
    """
    if y <= 0 or mu <= 0:
        return None, False
    log_ratio = math.log(mu / y)
    half = z * math.sqrt(phi * (1.0 / y + extra))
    low, high = log_ratio - half, log_ratio + half
    outside = high < math.log(band[0]) or low > math.log(band[1])
    return math.exp(log_ratio), outside


def _reference(groups: dict, reference: str) -> str | None:
    if reference != "largest":
        return reference if reference in groups else None
    return max(groups, key=lambda g: (groups[g]["n_areas"], g), default=None)


def judge_window(scores: list[dict], policy: Policy) -> tuple[dict, list[str]]:
    """Pool the scores of the last weeks and judge them against policy.

    Parameters
    ----------
    scores : the ``score_forecast`` results of the window (oldest first).
    policy : the governance policy (``monitoring`` and ``fairness``).

    Returns
    -------
    tuple
        The pooled figures (``pai``, ``calibration``, ``hit_rate``,
        ``group_ratios``) and the names of the checks that breach.
    """
    mon, fair = policy.monitoring, policy.fairness
    if not scores:
        return {}, []
    z = float(stats.norm.ppf(0.5 + mon.ci_level / 2))
    sum_y = sum(s["sum_y"] for s in scores)
    sum_mu = sum(s["sum_mu"] for s in scores)
    hot_y = sum(s["hot_y"] for s in scores)
    share = float(np.mean([s["hot_km2_share"] for s in scores]))
    n_rows = sum(s["n_areas"] for s in scores)
    phi = max(1.0, sum(s.get("pearson", 0.0) for s in scores) / max(n_rows - 1, 1))
    pooled: dict = {"weeks": len(scores), "sum_y": sum_y, "sum_mu": sum_mu, "dispersion": phi}
    pooled["hit_rate"] = hot_y / sum_y if sum_y > 0 else None
    pooled["pai"] = pooled["hit_rate"] / share if sum_y > 0 and share > 0 else None
    breaches = []
    if pooled["pai"] is not None and pooled["pai"] < mon.min_pai:
        breaches.append("accuracy.pai")
    pooled["calibration"], outside = _interval_outside(
        sum_mu, sum_y, mon.calibration_band, z, phi=phi
    )
    if outside:
        breaches.append("accuracy.calibration")
    ratios: dict[str, dict[str, float]] = {}
    for grouping, spec in fair.groupings.items():
        totals: dict[str, dict[str, float]] = {}
        for s in scores:
            for label, g in s["groups"].get(grouping, {}).items():
                t = totals.setdefault(label, {"n_areas": 0, "sum_mu": 0.0, "sum_y": 0.0})
                t["n_areas"] = max(t["n_areas"], g["n_areas"])
                t["sum_mu"] += g["sum_mu"]
                t["sum_y"] += g["sum_y"]
        ref = _reference(totals, spec.reference)
        if ref is None or totals[ref]["sum_y"] <= 0 or totals[ref]["sum_mu"] <= 0:
            continue
        ref_cal = totals[ref]["sum_mu"] / totals[ref]["sum_y"]
        ratios[grouping] = {}
        for label, t in totals.items():
            if label == ref or t["n_areas"] < fair.min_group_areas:
                continue
            ratio, outside = _interval_outside(
                t["sum_mu"] / ref_cal,
                t["sum_y"],
                fair.band,
                z,
                phi=phi,
                extra=1.0 / totals[ref]["sum_y"],
            )
            if ratio is not None:
                ratios[grouping][label] = ratio
            if outside:
                breaches.append(f"fairness.{grouping}.{label}")
    pooled["group_ratios"] = ratios
    return pooled, breaches


def review_reasons(entries: list[dict], breach_weeks: int) -> list[str]:
    """Return the checks that breached in each of the last ``breach_weeks`` log entries."""
    if len(entries) < breach_weeks:
        return []
    last = [set(e.get("breaches", [])) for e in entries[-breach_weeks:]]
    return sorted(set.intersection(*last))


def clean_json(value):
    """Replace non-finite floats (and numpy scalars) so the value is strict JSON."""
    if isinstance(value, dict):
        return {str(k): clean_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [clean_json(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def read_log(path: Path) -> list[dict]:
    """Read the monitoring log (empty when absent).

    Raises
    ------
    SchemaError
        When a line is not JSON (the file, line number and ``MSG_BAD_LOG``).
    """
    path = Path(path)
    if not path.is_file():
        return []
    entries = []
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        try:
            entries.append(json.loads(line))
        except json.JSONDecodeError as exc:
            raise SchemaError(path, MSG_BAD_LOG, row=number) from exc
    return entries


def log_line(entry: dict) -> str:
    """Return one entry as the log's JSON line (strict JSON, sorted keys, newline)."""
    return json.dumps(clean_json(entry), sort_keys=True) + "\n"
