"""The feedback loop, measured: whether police recording follows the patrols.

Police records follow patrols: an area flagged as a hotspot gets patrols,
patrols record more, and the record raises the next forecast. A&E sees
assaults whoever patrols. So, per area, the police share of what the two see,
``police_violence / (police_violence + ae_assault)``, should not move with
patrols; a share that rises beyond chance is a sign the forecast may be
feeding itself.

The test, per area: the last ``window_weeks`` weeks against the
``baseline_weeks`` before them, as a 2x2 table (police, A&E) x (window,
baseline). Under no change in recording, given the four margins, the window's
police count is hypergeometric (Fisher's exact test, one-sided: a rise, with
the mid-p value). An area is flagged when its p-value is below ``alpha``: the
false-alarm rate of one area's check, stated with every result (with
``correction="bonferroni"``, ``alpha`` bounds the chance that a check flags
any area). ``tests/training/test_feedback.py`` measures both the false alarms
and the recall against the synthetic city's planted patrols.
Areas with fewer than ``min_records`` in the window or the baseline are not
tested. Weeks missing in either source (outside its coverage) are left out.

``was_hotspot`` says whether the area was among the top ``hotspot_share`` of
areas by the target in any of the ``hotspot_weeks`` weeks before the window
(as a forecast from those weeks would have flagged it), or, when given, in the
published hotspots.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

__all__ = [
    "FeedbackSettings",
    "FEEDBACK_COLUMNS",
    "recording_shift",
    "feedback_summary",
    "rolling_checks",
    "flagged_rows",
    "monitor_accuracy",
    "limitation_counts",
]

FEEDBACK_COLUMNS = [
    "area_code", "window_start", "window_end", "police_window", "ae_window", "police_baseline",
    "ae_baseline", "share_window", "share_baseline", "p_value", "tested", "flagged",
    "was_hotspot",
]  # fmt: skip


@dataclass(frozen=True)
class FeedbackSettings:
    """The monitor's settings; ``alpha`` is the stated false-alarm rate of one check."""

    window_weeks: int = 12
    baseline_weeks: int = 26
    alpha: float = 0.05
    min_records: int = 5
    hotspot_share: float = 0.10
    hotspot_weeks: int = 4
    correction: str = "none"

    def to_dict(self) -> dict:
        """Plain-JSON form."""
        return asdict(self)


def _matrix(panel: pd.DataFrame, column: str) -> pd.DataFrame:
    return panel.pivot(index="week_start", columns="area_code", values=column).sort_index()


def recording_shift(
    panel: pd.DataFrame,
    *,
    end_week: pd.Timestamp | None = None,
    settings: FeedbackSettings = FeedbackSettings(),
    hotspots: set[str] | None = None,
) -> pd.DataFrame:
    """Test each area for a rise of the police share of violence (see the module docstring).

    Parameters
    ----------
    panel : the panel (``area_code``, ``week_start``, ``police_violence``,
        ``ae_assault``, ``violence``).
    end_week : the last week of the window (default the panel's last week).
    settings : window, baseline, false-alarm rate and hotspot rule.
    hotspots : areas flagged as hotspots before the window (default: derived
        from the panel's target, see the module docstring).

    Returns
    -------
    DataFrame
        ``FEEDBACK_COLUMNS``, one row per area.
    """
    police, ae = _matrix(panel, "police_violence"), _matrix(panel, "ae_assault")
    weeks = police.index
    end = weeks[-1] if end_week is None else pd.Timestamp(end_week)
    stop = weeks.get_loc(end) + 1
    window = weeks[max(stop - settings.window_weeks, 0) : stop]
    first = max(stop - settings.window_weeks - settings.baseline_weeks, 0)
    base = weeks[first : stop - len(window)]
    both = police.notna() & ae.notna()

    def _sum(frame: pd.DataFrame, rows: pd.DatetimeIndex) -> np.ndarray:
        return frame.loc[rows].where(both.loc[rows]).sum(axis=0, min_count=0).to_numpy(float)

    pw, aw, pb, ab = _sum(police, window), _sum(ae, window), _sum(police, base), _sum(ae, base)
    tested = (pw + aw >= settings.min_records) & (pb + ab >= settings.min_records) & (ab + aw > 0)
    total = pw + aw + pb + ab
    dist = stats.hypergeom(np.rint(total), np.rint(pw + pb), np.rint(pw + aw))
    # mid-p: P(X > x) + P(X = x) / 2, less conservative than Fisher's P(X >= x)
    p_value = np.where(tested, dist.sf(np.rint(pw)) + 0.5 * dist.pmf(np.rint(pw)), np.nan)
    m = max(int(tested.sum()), 1) if settings.correction == "bonferroni" else 1
    flagged = tested & (p_value < settings.alpha / m)
    with np.errstate(invalid="ignore", divide="ignore"):
        share_w, share_b = pw / (pw + aw), pb / (pb + ab)
    codes = police.columns.astype(str)
    if hotspots is None:
        hotspots = _hotspots_before(panel, window[0], settings)
    return pd.DataFrame(
        {
            "area_code": codes,
            "window_start": window[0],
            "window_end": window[-1],
            "police_window": pw,
            "ae_window": aw,
            "police_baseline": pb,
            "ae_baseline": ab,
            "share_window": share_w,
            "share_baseline": share_b,
            "p_value": p_value,
            "tested": tested,
            "flagged": flagged,
            "was_hotspot": codes.isin(list(hotspots)),
        }
    )[FEEDBACK_COLUMNS]


def _hotspots_before(
    panel: pd.DataFrame, start: pd.Timestamp, settings: FeedbackSettings
) -> set[str]:
    target = _matrix(panel, "violence")
    before = target.loc[target.index < start].tail(settings.hotspot_weeks)
    if before.empty:
        return set()
    k = max(int(round(settings.hotspot_share * target.shape[1])), 1)
    top = set()
    for _, row in before.iterrows():
        top |= set(row.dropna().nlargest(k).index.astype(str))
    return top


def rolling_checks(
    panel: pd.DataFrame, *, every: int, settings: FeedbackSettings = FeedbackSettings()
) -> pd.DataFrame:
    """Run :func:`recording_shift` at every ``every``-th week with a full baseline."""
    weeks = pd.DatetimeIndex(sorted(panel["week_start"].unique()))
    first = settings.window_weeks + settings.baseline_weeks - 1
    ends = weeks[first::every]
    return pd.concat(
        [recording_shift(panel, end_week=w, settings=settings) for w in ends], ignore_index=True
    )


def feedback_summary(checks: pd.DataFrame, settings: FeedbackSettings) -> dict:
    """Return the counts for the monitoring report and the model card's limitations.

    Returns
    -------
    dict
        ``areas_tested``, ``areas_flagged``, ``flagged_after_hotspot`` (flagged
        areas that were hotspots before the window), ``flagged`` (their codes),
        ``window``, ``false_alarm_rate`` (of one check, over all areas) and the
        settings.
    """
    flagged = checks.loc[checks["flagged"]]
    return {
        "areas_tested": int(checks["tested"].sum()),
        "areas_flagged": int(len(flagged)),
        "flagged_after_hotspot": int(flagged["was_hotspot"].sum()),
        "flagged": sorted(flagged["area_code"].astype(str).unique().tolist()),
        "window": (
            [
                str(pd.Timestamp(checks["window_start"].min()).date()),
                str(pd.Timestamp(checks["window_end"].max()).date()),
            ]
            if len(checks)
            else None
        ),  # fmt: skip
        "false_alarm_rate": settings.alpha,
        "settings": settings.to_dict(),
    }


def flagged_rows(checks: pd.DataFrame) -> list[dict]:
    """Return the flagged areas as plain-JSON rows (for the monitoring log and report)."""
    keep = ["area_code", "police_window", "ae_window", "share_window", "share_baseline",
            "p_value", "was_hotspot"]  # fmt: skip
    rows = checks.loc[checks["flagged"], keep].sort_values("p_value")
    return [
        {k: (v.item() if hasattr(v, "item") else v) for k, v in row.items()}
        for row in rows.to_dict("records")
    ]


def monitor_accuracy(checks: pd.DataFrame, truth: pd.DataFrame) -> dict:
    """Score rolling checks against planted patrols (the synthetic city's truth).

    Parameters
    ----------
    checks : from :func:`rolling_checks`.
    truth : ``area_code``, ``week_start`` of every patrolled area-week
        (``oracle/patrols.parquet``).

    Returns
    -------
    dict
        ``recall`` (share of tested checks whose whole window was patrolled
        that flagged the area), ``false_alarm_rate`` (share of tested checks
        with no patrolled week in the window that flagged it), and the counts
        ``positives``, ``negatives``, ``operations_detected``, ``operations``
        (an operation counts as detected when any check ending in its last
        half flagged its area).
    """
    patrolled = set(zip(truth["area_code"].astype(str), pd.to_datetime(truth["week_start"]),
                        strict=True))  # fmt: skip
    tested = checks.loc[checks["tested"]].copy()
    spans = [pd.date_range(s, e, freq="7D") for s, e in
             zip(tested["window_start"], tested["window_end"], strict=True)]  # fmt: skip
    inside = [sum((a, w) in patrolled for w in span) for a, span in
              zip(tested["area_code"].astype(str), spans, strict=True)]  # fmt: skip
    tested["patrolled_weeks"] = inside
    tested["window_weeks"] = [len(s) for s in spans]
    positive = tested["patrolled_weeks"] == tested["window_weeks"]
    negative = tested["patrolled_weeks"] == 0
    detected, operations = 0, 0
    for area, weeks in truth.groupby("area_code")["week_start"]:
        weeks = pd.DatetimeIndex(sorted(pd.to_datetime(weeks)))
        runs = np.split(weeks, np.flatnonzero(np.diff(weeks.asi8) != 7 * 86_400 * 10**9) + 1)
        for run in runs:
            operations += 1
            late = run[len(run) // 2 :]
            hit = tested.loc[(tested["area_code"] == area) & tested["window_end"].isin(late)]
            detected += int(hit["flagged"].any())
    return {
        "recall": float(tested.loc[positive, "flagged"].mean()) if positive.any() else None,
        "false_alarm_rate": float(tested.loc[negative, "flagged"].mean())
        if negative.any()
        else None,
        "positives": int(positive.sum()),
        "negatives": int(negative.sum()),
        "operations": operations,
        "operations_detected": detected,
    }


def limitation_counts(panel_dir: Path, settings: FeedbackSettings = FeedbackSettings()) -> dict:
    """Return the counts a model card states as limitations, from the panel layer.

    Parameters
    ----------
    panel_dir : the panel layer (``panel.parquet``, and ``coverage.json``
        when ``harmcast panel`` wrote it).
    settings : the feedback-loop monitor's settings.

    Returns
    -------
    dict
        ``coverage``: ``{source: {unit, periods, missing, gaps: [{from, to,
        length}]}}`` for sources with gaps inside their span; ``feedback``:
        :func:`feedback_summary` of the check ending at the panel's last week
        (None without A&E data or without a panel).
    """
    panel_dir = Path(panel_dir)
    coverage_file = panel_dir / "coverage.json"
    coverage = json.loads(coverage_file.read_text()) if coverage_file.is_file() else {}
    gaps = {
        source: {
            "unit": entry["unit"],
            "periods": entry["periods"],
            "missing": sum(g["length"] for g in entry["gaps"]),
            "gaps": entry["gaps"],
        }
        for source, entry in coverage.items()
        if entry.get("gaps")
    }
    feedback = None
    panel_file = panel_dir / "panel.parquet"
    if panel_file.is_file():
        panel = pd.read_parquet(panel_file)
        if "ae_assault" in panel and panel["ae_assault"].notna().any():
            checks = recording_shift(panel, settings=settings)
            feedback = feedback_summary(checks, settings)
    return {"coverage": gaps, "feedback": feedback}
