"""The feedback-loop monitor against the synthetic city's planted patrol operations."""

from __future__ import annotations

import pandas as pd
import pytest

from governance.cards.sections import data_limitations
from training.config import LinkParams, SourceParams, SynthParams
from training.feedback import (
    FeedbackSettings,
    limitation_counts,
    monitor_accuracy,
    recording_shift,
    rolling_checks,
)
from training.link.linker import link_sources
from training.panel import build_panel, write_panel
from training.synth.city import PATROL_FILE, generate_city

SETTINGS = FeedbackSettings()  # 12 weeks against the 26 before, alpha 0.05 per area


def _panel(raw):
    result = link_sources(raw, SourceParams(), LinkParams())
    return build_panel(result.records, result.areas)


@pytest.fixture(scope="module")
def patrolled_city(tmp_path_factory):
    raw = tmp_path_factory.mktemp("patrols") / "01_raw"
    params = SynthParams(preset="tiny", seed=20240601, patrol_operations=8,
                         patrol_recording_uplift=1.0)  # fmt: skip
    generate_city(params, raw)
    return raw, _panel(raw), pd.read_parquet(raw / "oracle" / PATROL_FILE)


def test_patrols_are_written_with_the_oracle_and_raise_only_police_records(patrolled_city):
    raw, panel, truth = patrolled_city
    assert set(truth.columns) == {"area_code", "week_start", "recording_uplift"}
    assert truth["recording_uplift"].eq(1.0).all() and truth["area_code"].nunique() >= 6
    on = panel.set_index(["area_code", "week_start"]).index.isin(
        pd.MultiIndex.from_frame(truth[["area_code", "week_start"]])
    )
    share = panel["police_violence"] / (panel["police_violence"] + panel["ae_assault"])
    assert share[on].mean() > share[~on].mean() + 0.08


def test_the_monitor_finds_planted_patrols_with_its_stated_false_alarm_rate(patrolled_city):
    _, panel, truth = patrolled_city
    checks = rolling_checks(panel, every=1, settings=SETTINGS)
    found = monitor_accuracy(checks, truth)
    # measured: recall 0.525 of 40 fully patrolled windows, 6 of 8 operations,
    # false alarms 1.1% of 2,058 unpatrolled windows (stated rate: 5%)
    assert found["positives"] >= 30 and found["negatives"] > 1500
    assert found["recall"] >= 0.4
    assert found["operations_detected"] >= found["operations"] // 2
    assert found["false_alarm_rate"] <= SETTINGS.alpha
    flagged = checks.loc[checks["flagged"]]
    assert flagged["was_hotspot"].mean() > 0.5  # patrols go to hotspots


def test_without_patrols_false_alarms_stay_under_the_stated_rate(synthetic_city):
    checks = rolling_checks(_panel(synthetic_city), every=1, settings=SETTINGS)
    tested = checks.loc[checks["tested"]]
    assert len(tested) > 1500
    assert tested["flagged"].mean() <= SETTINGS.alpha
    bonferroni = FeedbackSettings(correction="bonferroni")
    strict = rolling_checks(_panel(synthetic_city), every=4, settings=bonferroni)
    # per check, the chance of any false flag in the city is at most alpha
    assert strict.groupby("window_end")["flagged"].any().mean() <= bonferroni.alpha


def test_missing_weeks_are_left_out_of_the_monitor():
    weeks = pd.date_range("2024-01-01", periods=40, freq="7D")
    panel = pd.DataFrame({"area_code": "A", "week_start": weeks, "police_violence": 6.0,
                          "ae_assault": 4.0, "violence": 8.0})  # fmt: skip
    panel.loc[panel["week_start"] >= weeks[36], "police_violence"] = 12.0
    panel.loc[panel["week_start"] >= weeks[38], ["police_violence", "ae_assault"]] = float("nan")
    row = recording_shift(panel, settings=SETTINGS).iloc[0]
    assert row["police_window"] == 6 * 8 + 12 * 2 and row["ae_window"] == 40
    assert row["tested"] and not row["flagged"]


def test_the_card_states_gaps_and_flags_with_their_counts(patrolled_city, tmp_path):
    _, panel, _ = patrolled_city
    gaps = [{"from": "2022-05", "to": "2022-06", "length": 2}]
    coverage = {"police": {"unit": "month", "first": "2022-01", "last": "2023-07",
                           "periods": 19, "covered": [], "gaps": gaps}}  # fmt: skip
    write_panel(panel, tmp_path, coverage=coverage)
    counts = limitation_counts(tmp_path)
    assert counts["coverage"]["police"]["missing"] == 2
    feedback = counts["feedback"]
    assert feedback["areas_tested"] > 40 and feedback["false_alarm_rate"] == 0.05
    lines = data_limitations(counts)
    assert lines[0].startswith("Coverage gap: police has no records in 2 of 19 months")
    assert f"in {feedback['areas_flagged']} of {feedback['areas_tested']} areas" in lines[1]
