"""A year of weekly cycles on the tiny synthetic city, with a planted feed outage.

The last 52 weeks of the city are cut into weekly deliveries; the panel, a real
LightGBM forecaster (registered and approved as the production version) and
the first snapshot come from the weeks before. Each cycle appends a week,
scores the published forecast and refreshes the snapshot. For three weeks late
in the year the A&E (ISTV) feed stops.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest
from registry_setup import build_layers, publish_version

from governance.policy import load_policy
from monitoring.monitoring import read_log
from monitoring.weekly import MSG_WEEK_GAP, MSG_WEEK_IN_PANEL
from monitoring.weekly_cycle import MONITORING_DIR, REVIEW_FILE, refresh_snapshot, run_weekly
from monitoring.weekly_slice import split_weeks
from training.config import ModelParams, load_params
from training.errors import LinkageError
from training.features import feature_columns
from training.model import fit_forecaster
from training.panel import read_panel

pytestmark = pytest.mark.slow

N_WEEKS = 52
OUTAGE = range(44, 47)  # ISTV sends nothing these weeks (0-based cycle numbers)


@pytest.fixture(scope="module")
def replay(synthetic_city: Path, tmp_path_factory: pytest.TempPathFactory):
    """Run every weekly cycle once; return what each left behind."""
    base = tmp_path_factory.mktemp("weekly")
    history, weeks = split_weeks(synthetic_city, base / "split", n_weeks=N_WEEKS)
    root = base / "root"
    shutil.copytree(history, root / "data" / "01_raw")
    params = load_params(None, root=root)
    # one OpenMP thread: two threads on a busy two-core machine are many times slower
    model = ModelParams(num_boost_round=60, min_data_in_leaf=20, num_threads=1)
    params = params.model_copy(update={"model": model})
    policy = load_policy()
    linked, panel, features = build_layers(params)
    forecaster = fit_forecaster(features, feature_columns(features), params.model)
    latest = features.loc[features["origin_week"] == features["origin_week"].max()]
    publish_version(params, policy, forecaster, latest)  # the approved production version
    assert refresh_snapshot(params, policy, panel, linked.areas, linked.adjacency).refreshed
    for k in OUTAGE:
        shutil.rmtree(weeks[k][1] / "istv")
    panels, results = [panel], []
    for _, folder in weeks:
        results.append(run_weekly(params, policy, folder))
        panels.append(read_panel(params.paths.resolve("panel")))
    return {"params": params, "policy": policy, "weeks": weeks, "panels": panels,
            "results": results, "root": root}  # fmt: skip


def test_panel_grows_one_week_per_cycle_keeping_earlier_rows(replay):
    panels, weeks = replay["panels"], replay["weeks"]
    n_areas = panels[0]["area_code"].nunique()
    for k, (week, _) in enumerate(weeks):
        before, after = panels[k], panels[k + 1]
        assert len(after) == len(before) + n_areas
        assert after["week_start"].max() == week
        kept = after.loc[after["week_start"] < week].reset_index(drop=True)
        pd.testing.assert_frame_equal(kept, before.reset_index(drop=True))


def test_every_week_is_scored_and_logged(replay):
    entries = read_log(replay["root"] / MONITORING_DIR / "monitoring.jsonl")
    assert [e["week"] for e in entries] == [f"{w:%Y-%m-%d}" for w, _ in replay["weeks"]]
    # an outage week's target is missing (A&E delivered nothing): not scored, not zeros
    scored = [e for k, e in enumerate(entries) if k not in OUTAGE]
    assert all(e["score"] is not None and e["score"]["sum_y"] > 0 for e in scored)
    assert all(entries[k]["score"] is None and entries[k]["gaps"] == ["istv"] for k in OUTAGE)
    assert all(e["snapshot_origin"] == e["week"] for e in entries)
    assert all(e["snapshot_refreshed"] and e["snapshot_model_version"] == "1" for e in entries)
    html = (replay["root"] / MONITORING_DIR / "monitoring_report.html").read_text()
    assert html.count("data:image/png;base64,") >= 2


def test_clean_weeks_stay_within_policy(replay):
    policy = replay["policy"]
    clean = [r.entry for k, r in enumerate(replay["results"]) if k < OUTAGE.start]
    for entry in clean:
        assert entry["window"]["pai"] >= policy.monitoring.min_pai
        assert not [b for b in entry["review_reasons"] if b.startswith(("drift.", "accuracy."))]
    # single-week drift findings happen (PSI over 60 areas is noisy); they must stay rare
    drift_weeks = [e["week"] for e in clean if any(b.startswith("drift.") for b in e["breaches"])]
    assert len(drift_weeks) <= 2, drift_weeks
    flagged = [e["week"] for e in clean if e["review_required"]]
    # fairness is judged per district and deprivation group of a 60-area city:
    # at most one short episode of review in a clean year
    assert len(flagged) <= 2, flagged


def test_feed_outage_is_detected_and_flags_review_after_breach_weeks(replay):
    results, policy = replay["results"], replay["policy"]
    breach_weeks = policy.monitoring.breach_weeks
    for k in OUTAGE:
        assert "drift.istv.count" in results[k].entry["breaches"], k
    first_flag = OUTAGE.start + breach_weeks - 1
    assert "drift.istv.count" not in results[first_flag - 1].entry["review_reasons"]
    assert "drift.istv.count" in results[first_flag].entry["review_reasons"]
    assert "drift.istv.count" not in results[OUTAGE.stop].entry["breaches"]
    flag = json.loads((replay["root"] / MONITORING_DIR / REVIEW_FILE).read_text())
    assert flag["week"] >= f"{replay['weeks'][first_flag][0]:%Y-%m-%d}"


def test_a_week_already_in_the_panel_or_a_gap_is_refused(replay):
    params, policy, weeks = replay["params"], replay["policy"], replay["weeks"]
    log = replay["root"] / MONITORING_DIR / "monitoring.jsonl"
    lines = log.read_text()
    with pytest.raises(LinkageError) as repeated:
        run_weekly(params, policy, weeks[-1][1])
    week, last = f"{weeks[-1][0]:%Y-%m-%d}", f"{weeks[-1][0]:%Y-%m-%d}"
    assert str(repeated.value) == MSG_WEEK_IN_PANEL.format(week=week, last=last)
    future = weeks[-1][0] + pd.Timedelta(weeks=2)
    with pytest.raises(LinkageError) as gap:
        run_weekly(params, policy, weeks[-1][1], week=future)
    expected = f"{weeks[-1][0] + pd.Timedelta(weeks=1):%Y-%m-%d}"
    assert str(gap.value) == MSG_WEEK_GAP.format(week=f"{future:%Y-%m-%d}", last=last,
                                                 expected=expected)  # fmt: skip
    assert log.read_text() == lines
