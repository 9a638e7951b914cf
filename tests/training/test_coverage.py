"""Coverage is data: gaps in a source are missing in the panel, never zeros."""

from __future__ import annotations

import csv
import json

import numpy as np
import pandas as pd
import pytest
from rawfiles import police_uk_sample
from typer.testing import CliRunner

from harmcast.cli import app
from training.baselines.predict import predict_baselines
from training.config import FeatureParams
from training.coverage import covered_weeks, describe_gaps, source_coverage
from training.features import build_features
from training.metrics.scores import score_predictions
from training.panel import build_panel

runner = CliRunner()
JULYS = ("2016-07", "2017-07", "2018-07")


def _three_julys(folder):
    """The real July 2016 sample copied as July 2017 and July 2018 (ids made unique)."""
    sample = police_uk_sample()
    source = next(sample.rglob("*-street.csv"))
    for month in JULYS:
        out = folder / month / source.name.replace("2016-07", month)
        out.parent.mkdir(parents=True)
        with source.open(newline="") as handle, out.open("w", newline="") as target:
            reader = csv.DictReader(handle)
            writer = csv.DictWriter(target, fieldnames=reader.fieldnames)
            writer.writeheader()
            for row in reader:
                row["Month"] = month
                row["Crime ID"] = row["Crime ID"] and f"{row['Crime ID']}-{month}"
                writer.writerow(row)
    return folder


@pytest.fixture(scope="module")
def julys(tmp_path_factory):
    root = tmp_path_factory.mktemp("julys")
    police = _three_julys(root / "download")
    ingest = runner.invoke(app, ["ingest", "--root", str(root), "--police", str(police)])
    assert ingest.exit_code == 0, ingest.output
    panel = runner.invoke(app, ["panel", "--root", str(root)])
    assert panel.exit_code == 0, panel.output
    return root, ingest, panel


def test_three_julys_name_their_gaps_in_the_linkage_report(julys):
    root, ingest, _ = julys
    report = json.loads((root / "data" / "02_linked" / "linkage_report.json").read_text())
    coverage = report["police"]["coverage"]
    assert coverage["unit"] == "month" and coverage["covered"] == list(JULYS)
    assert coverage["gaps"] == [
        {"from": "2016-08", "to": "2017-06", "length": 11},
        {"from": "2017-08", "to": "2018-06", "length": 11},
    ]
    md = (root / "data" / "02_linked" / "linkage_report.md").read_text()
    assert "2016-08 to 2017-06; 2017-08 to 2018-06" in md
    assert "coverage gap" in ingest.output


def test_three_julys_panel_observes_only_the_three_months(julys):
    root, _, command = julys
    panel = pd.read_parquet(root / "data" / "03_panel" / "panel.parquet")
    weeks = panel.drop_duplicates("week_start").set_index("week_start")
    observed = weeks.index[weeks["violence"].notna()]
    last_day = weeks.index + pd.Timedelta(days=6)
    months = zip(weeks.index.strftime("%Y-%m"), last_day.strftime("%Y-%m"), strict=True)
    touches_july = [w for w, m in zip(weeks.index, months, strict=True) if set(m) & set(JULYS)]
    assert list(observed) == touches_july and 15 <= len(observed) <= 18
    assert len(weeks) == 110  # the span is still the whole grid, gaps included
    gap = panel.loc[~panel["week_start"].isin(observed)]
    assert gap[["police_violence", "police_other", "violence"]].isna().all().all()
    assert (panel.loc[panel["week_start"].isin(observed), "violence"] >= 0).all()
    assert "police: no records 2016-08 to 2017-06 (11 months), 2017-08 to 2018-06" in " ".join(
        command.output.split()
    )
    assert "target observed in" in command.output
    saved = json.loads((root / "data" / "03_panel" / "coverage.json").read_text())
    assert len(saved["police"]["gaps"]) == 2


def _panel_with_a_gap():
    """Two areas x 30 weeks of A&E and police days; police stops for weeks 12-17."""
    weeks = pd.date_range("2024-01-01", periods=30, freq="7D")
    rows = []
    for i, week in enumerate(weeks):
        for area in ("A", "B"):
            for day in range(3):
                date = week + pd.Timedelta(days=day)
                rows.append(("istv", area, date, "body part", True))
                if not 12 <= i < 18:
                    rows += [("police", area, date, "Violence and sexual offences", True)] * 2
    records = pd.DataFrame(rows, columns=["source", "area_code", "date", "category", "is_violence"])
    records = records.assign(grain="day", record_id=[str(i) for i in range(len(records))])
    areas = pd.DataFrame({"area_code": ["A", "B"], "population": 1000.0, "area_km2": 1.0,
                          "imd_decile": 5, "premises": 0, "late_premises": 0})  # fmt: skip
    return build_panel(records, areas), areas, weeks


def test_a_gap_inside_a_day_grain_source_is_missing_for_its_columns_and_the_target():
    panel, _, weeks = _panel_with_a_gap()
    gap = panel["week_start"].isin(weeks[12:18])
    assert panel.loc[gap, ["police_violence", "violence"]].isna().all().all()
    assert (panel.loc[gap, "ae_assault"] == 3).all()  # A&E still covered
    assert (panel.loc[~gap, "violence"] == 6).all()
    assert panel["ambulance_assault"].eq(0).all()  # not a source of this partnership
    months = pd.to_datetime(["2024-01-01", "2024-02-01", "2024-04-01"])
    coverage = source_coverage(pd.DataFrame({"source": "police", "date": months, "grain": "month"}))
    mondays = pd.date_range("2024-02-19", periods=8, freq="7D")
    assert covered_weeks(coverage["police"], mondays).tolist() == [
        True, True, False, False, False, False, True, True,
    ]  # fmt: skip
    assert describe_gaps(coverage) == [
        "police: no records 2024-03 (1 month) inside its span 2024-01 to 2024-04"
    ]


def test_features_treat_missing_as_missing():
    panel, areas, weeks = _panel_with_a_gap()
    adjacency = pd.DataFrame({"area_code": ["A", "B"], "neighbour_code": ["B", "A"]})
    params = FeatureParams(lags=[1], windows=[4], ewm_half_lives=[3], horizons=[1],
                           min_history_weeks=2)  # fmt: skip
    features = build_features(panel, areas, adjacency, params).set_index(
        ["area_code", "origin_week"]
    )
    inside = features.loc[("A", weeks[15])]
    assert np.isnan(inside["police_violence_lag1"]) and np.isnan(inside["violence_lag1"])
    assert np.isnan(inside["police_violence_mean4"])  # four weeks all in the gap
    assert np.isnan(inside["nb_police_violence_lag1"])
    assert inside["ae_assault_lag1"] == 3
    edge = features.loc[("A", weeks[13])]
    assert edge["police_violence_ewm3"] == pytest.approx(6.0)  # observed weeks only, no zeros
    assert edge["police_violence_mean4"] == pytest.approx(6.0)
    assert np.isnan(features.loc[("A", weeks[11]), "y"])  # target week 12 is not covered


def test_baselines_carry_over_a_gap_and_the_gap_is_never_scored():
    panel, areas, weeks = _panel_with_a_gap()
    adjacency = pd.DataFrame({"area_code": ["A", "B"], "neighbour_code": ["B", "A"]})
    predictions = predict_baselines(panel, adjacency, weeks[10:25], [1],
                                    methods=["last_week", "mean_4"])  # fmt: skip
    assert np.isfinite(predictions["mu"]).all()
    last = predictions.loc[predictions["method"] == "last_week"].set_index("origin_week")
    assert (last.loc[weeks[15], "mu"] == 6).all()  # carried from week 11, not zero
    in_gap = predictions["target_week"].isin(weeks[12:18])
    assert predictions.loc[in_gap, "y"].isna().all()
    scored = score_predictions(predictions, areas, [0.5])
    # 15 target weeks (11-25), of which 6 (12-17) are not covered
    assert scored["weeks"].tolist() == [9, 9] and scored["n"].tolist() == [18, 18]
