"""Fast checks of the monitoring pieces: drift tail test, review rule, metrics, CLI errors."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
from typer.testing import CliRunner

from harmcast.cli import app
from monitoring.drift import count_p_value
from monitoring.monitoring import review_reasons
from monitoring.weekly import MSG_WEEK_GAP, append_week
from monitoring.weekly_cycle import MSG_NO_PANEL
from training.config import load_params
from training.errors import LinkageError
from training.metrics.export import export_metrics
from training.panel import PANEL_COLUMNS


def test_a_stopped_feed_is_improbable_and_an_ordinary_week_is_not():
    assert count_p_value(0, 13.0, 16.0) < 1e-4
    assert count_p_value(200, 100.0, 120.0) < 1e-4  # a doubled feed
    assert count_p_value(11, 13.0, 16.0) > 0.3


def test_review_needs_the_same_check_in_consecutive_weeks():
    weeks = [{"breaches": ["a"]}, {"breaches": ["a", "b"]}, {"breaches": ["b"]}]
    assert review_reasons(weeks, 3) == []
    assert review_reasons(weeks, 2) == ["b"]
    assert review_reasons([*weeks, {"breaches": ["b"]}], 3) == ["b"]


def test_append_week_refuses_a_gap():
    areas = pd.DataFrame({"area_code": ["SYN00001", "SYN00002"]})
    panel = pd.DataFrame({c: [0.0, 0.0] for c in PANEL_COLUMNS})
    panel = panel.assign(area_code=areas["area_code"], week_start=pd.Timestamp("2024-01-01"))
    records = pd.DataFrame({"record_id": [], "week_start": pd.Series([], dtype="datetime64[ns]")})
    try:
        append_week(panel, records, areas, week=pd.Timestamp("2024-01-15"))
    except LinkageError as exc:
        message = str(exc)
    assert message == MSG_WEEK_GAP.format(week="2024-01-15", last="2024-01-01",
                                          expected="2024-01-08")  # fmt: skip
    grown = append_week(panel, records, areas, week=pd.Timestamp("2024-01-08"))
    assert len(grown) == 4 and grown["violence"].sum() == 0.0


def test_export_metrics_flattens_the_backtest_summary(tmp_path: Path):
    params = load_params(None, root=tmp_path)
    out = params.paths.resolve("backtest")
    out.mkdir(parents=True)
    summary = {"headline": {"h1.pai": 2.0, "h1.nan": float("nan")},
               "acceptance": {"all": True}, "beats_every_baseline": {"pai@1": False}}  # fmt: skip
    (out / "results.json").write_text(json.dumps({"summary": summary}))
    written = json.loads(export_metrics(params, step="backtest").read_text())
    assert written == {"h1.pai": 2.0, "acceptance.all": 1, "beats_every_baseline.pai@1": 0}


def test_weekly_without_a_panel_exits_1_with_a_clear_message(tmp_path: Path):
    week = tmp_path / "week"
    week.mkdir()
    result = CliRunner().invoke(app, ["weekly", "--data", str(week), "--root", str(tmp_path)])
    assert result.exit_code == 1
    assert MSG_NO_PANEL in result.output.replace("\n", "")
    assert "Traceback" not in result.output


def _weeks_of_records(weeks: pd.DatetimeIndex, *, istv: bool) -> pd.DataFrame:
    rows = []
    for week in weeks:
        for area in ("SYN00001", "SYN00002"):
            rows += [("police", area, week, "Violence and sexual offences")] * 8
            rows += [("istv", area, week, "body part")] * (6 if istv else 0)
    records = pd.DataFrame(rows, columns=["source", "area_code", "date", "category"])
    return records.assign(
        grain="day", is_violence=True, week_start=records["date"],
        record_id=[str(i) for i in range(len(records))],
    )  # fmt: skip


def test_a_source_that_delivered_nothing_is_a_gap_and_drift_still_flags_it():
    from governance.policy import DriftPolicy
    from monitoring.drift import source_drift
    from monitoring.weekly import week_gaps
    from training.panel import build_panel

    areas = pd.DataFrame({"area_code": ["SYN00001", "SYN00002"]})
    weeks = pd.date_range("2024-01-01", periods=12, freq="7D")
    panel = build_panel(_weeks_of_records(weeks, istv=True), areas)
    week = weeks[-1] + pd.Timedelta(days=7)
    records = _weeks_of_records(pd.DatetimeIndex([week]), istv=False)
    assert week_gaps(panel, records, {"police": 16}) == ["istv"]
    grown = append_week(panel, records, areas, week=week, delivered={"police": 16})
    new = grown.loc[grown["week_start"] == week]
    assert new[["ae_assault", "ae_weapon", "violence"]].isna().all().all()
    assert (new["police_violence"] == 8).all()
    assert grown.loc[grown["week_start"] < week, "violence"].notna().all()
    drift = source_drift(grown, week, match_rates={}, baseline_rates={},
                         policy=DriftPolicy(min_trailing_weeks=8))  # fmt: skip
    by_source = {d["source"]: d for d in drift}
    assert by_source["istv"]["gap"] and "count" in by_source["istv"]["breaches"]
    assert not by_source["police"]["gap"] and by_source["police"]["breaches"] == []
    # the week after, a delivered A&E week is judged against covered weeks only
    later = week + pd.Timedelta(days=7)
    after = append_week(grown, _weeks_of_records(pd.DatetimeIndex([later]), istv=True), areas,
                        week=later, delivered={"police": 16, "istv": 12})  # fmt: skip
    drift = source_drift(after, later, match_rates={}, baseline_rates={},
                         policy=DriftPolicy(min_trailing_weeks=8))  # fmt: skip
    istv = next(d for d in drift if d["source"] == "istv")
    assert istv["trailing_mean"] == 12 and istv["breaches"] == []


def test_the_report_of_a_week_with_no_forecast_to_score_renders(tmp_path: Path):
    """An approved version but no snapshot yet: nothing scored, the window is empty."""
    from governance.policy import DEFAULT_POLICY_PATH, load_policy
    from monitoring.monitoring_report import render_report

    entry = {
        "week": "2024-06-03", "records": 10, "quarantined": 0, "outside_week": 0,
        "score": None, "window": {}, "drift": [], "breaches": [], "feedback": None,
        "gaps": [], "review_reasons": [], "review_required": False,
        "snapshot_refreshed": True, "snapshot_model": "harmcast-violence",
        "snapshot_model_version": "1", "snapshot_origin": "2024-06-03", "snapshot_reason": None,
    }  # fmt: skip
    html = render_report([entry], load_policy(DEFAULT_POLICY_PATH), log_path=tmp_path / "log")
    assert "not scored" in html
    assert "Refreshed with harmcast-violence version 1" in html
