"""The real police.uk sample, read unchanged, checked against the csv module."""

from __future__ import annotations

import csv
import hashlib
from collections import Counter
from pathlib import Path

import pandas as pd
import pytest
from rawfiles import police_uk_sample

from training.config import LinkParams, SourceParams
from training.link.linker import RawLayout, link_sources
from training.panel import build_panel


def _expected(folder: Path):
    rows = []
    for path in sorted(folder.rglob("*-street.csv")):
        with path.open(newline="") as handle:
            rows.extend(csv.DictReader(handle))
    located = [r for r in rows if r["Location"] != "No Location"]
    return rows, located


def _digest(folder: Path) -> str:
    return "".join(
        hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.rglob("*")) if p.is_file()
    )


def test_real_sample_links_at_month_grain():
    folder = police_uk_sample()
    before = _digest(folder)
    rows, located = _expected(folder)
    violent = SourceParams().violent_crime_types
    result = link_sources(folder, SourceParams(), LinkParams(), layout=RawLayout(police=folder))
    report = result.report["police"]
    assert report["records_in"] == len(rows) == 2000
    assert report["linked"] == len(located)
    assert report["quarantined"] == {"no_location": len(rows) - len(located)}
    assert report["linked_by"] == {"code": len(located)}
    records = result.records
    assert set(records["grain"]) == {"month"} and records["week_start"].isna().all()
    assert set(records["date"]) == {pd.Timestamp(r["Month"] + "-01") for r in rows}
    assert Counter(records["category"]) == Counter(r["Crime type"] for r in located)
    assert records["is_violence"].sum() == sum(r["Crime type"] in violent for r in located)
    assert set(result.areas["area_code"]) == {r["LSOA code"] for r in located}
    panel = build_panel(records, result.areas)
    assert panel["police_violence"].sum() == pytest.approx(records["is_violence"].sum())
    assert panel["police_other"].sum() == pytest.approx((~records["is_violence"]).sum())
    assert _digest(folder) == before


def test_real_sample_with_an_areas_file_quarantines_unlisted_codes(tmp_path):
    folder = police_uk_sample()
    _, located = _expected(folder)
    listed = sorted({r["LSOA code"] for r in located})[:10]
    areas = tmp_path / "areas.csv"
    areas.write_text(
        "area_code,area_name,district,latitude,longitude,area_km2,population,imd_decile\n"
        + "".join(f"{c},n,d,53.8,-1.6,1,1500,5\n" for c in listed)
    )
    result = link_sources(folder, SourceParams(), LinkParams(),
                          layout=RawLayout(police=folder, areas_file=areas))  # fmt: skip
    in_listed = sum(r["LSOA code"] in listed for r in located)
    report = result.report["police"]
    assert report["linked"] == in_listed
    assert report["quarantined"]["unknown_area_code"] == len(located) - in_listed
