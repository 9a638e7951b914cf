from __future__ import annotations

import json
import time

import pandas as pd
import pytest
from rawfiles import write_tiny_raw
from typer.testing import CliRunner

from harmcast.cli import app
from training.config import LinkParams, SourceParams
from training.link.linker import link_sources
from training.panel import build_panel

runner = CliRunner()


def test_ingest_and_panel_commands(tmp_path):
    write_tiny_raw(tmp_path / "data" / "01_raw")
    result = runner.invoke(app, ["ingest", "--root", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert "Linkage report" in result.output and "istv" in result.output
    linked = tmp_path / "data" / "02_linked"
    report = json.loads((linked / "linkage_report.json").read_text())
    assert report["police"]["records_in"] == 8
    assert "<5" in (linked / "linkage_report.md").read_text()
    result = runner.invoke(app, ["panel", "--root", str(tmp_path)])
    assert result.exit_code == 0, result.output
    panel = pd.read_parquet(tmp_path / "data" / "03_panel" / "panel.parquet")
    assert panel["area_code"].nunique() == 2
    assert (tmp_path / "data" / "03_panel" / "adjacency.parquet").is_file()


def test_structural_error_exits_nonzero_without_traceback(tmp_path):
    raw = write_tiny_raw(tmp_path / "data" / "01_raw")
    (raw / "istv" / "EMPTY.csv").write_bytes(b"")
    result = runner.invoke(app, ["ingest", "--root", str(tmp_path)])
    assert result.exit_code == 1
    output = result.output.replace("\n", "")
    assert "EMPTY.csv" in output and "file is empty" in output
    assert "Traceback" not in result.output


def test_police_only_with_derived_reference(tmp_path):
    raw = write_tiny_raw(tmp_path / "raw")
    result = runner.invoke(
        app, ["ingest", "--root", str(tmp_path), "--police", str(raw / "police")]
    )
    assert result.exit_code == 0, result.output
    assert "derived" in result.output
    report = json.loads((tmp_path / "data" / "02_linked" / "linkage_report.json").read_text())
    assert list(report) == ["police"]


def test_panel_without_ingest_fails_clearly(tmp_path):
    result = runner.invoke(app, ["panel", "--root", str(tmp_path)])
    assert result.exit_code == 1 and "harmcast ingest" in result.output


@pytest.mark.slow
def test_synthetic_city_end_to_end(synthetic_city, tmp_path):
    started = time.perf_counter()
    result = link_sources(synthetic_city, SourceParams(), LinkParams())
    elapsed = time.perf_counter() - started
    assert elapsed < 30
    for source, entry in result.report.items():
        assert entry["records_in"] == entry["linked"] + sum(entry["quarantined"].values())
        assert entry["match_rate"] > 0.75, source
    areas = pd.read_csv(synthetic_city / "reference" / "areas.csv")
    assert len(result.areas) == len(areas)
    panel = build_panel(result.records, result.areas)
    assert len(panel) == len(areas) * panel["week_start"].nunique()
    oracle = pd.read_parquet(synthetic_city / "oracle" / "expected_counts.parquet")
    merged = panel.merge(oracle, on=["area_code", "week_start"])
    assert len(merged) > 0.9 * len(oracle)
    # The linked target tracks the true expected counts the city was drawn from.
    assert merged["violence"].corr(merged["expected_violence"]) > 0.3
