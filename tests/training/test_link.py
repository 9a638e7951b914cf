from __future__ import annotations

import json

import pandas as pd
import pytest
from rawfiles import write_tiny_raw

from training.config import LinkParams, SourceParams
from training.disclosure import suppress_small
from training.errors import LinkageError
from training.link.linker import (
    MSG_NO_SOURCES,
    QUARANTINE_REASONS,
    RECORD_COLUMNS,
    RawLayout,
    link_sources,
    write_linked,
)
from training.link.report import report_markdown
from training.link.text import catchments, match_locations, normalise_location


@pytest.fixture()
def tiny(tmp_path):
    raw = write_tiny_raw(tmp_path / "raw")
    return raw, link_sources(raw, SourceParams(), LinkParams())


def _q(result, source):
    q = result.quarantine
    return q.loc[q["source"] == source].set_index("row")


def test_every_record_is_linked_or_quarantined(tiny):
    _, result = tiny
    for source, entry in result.report.items():
        n_linked = (
            (result.records["source"] == source).sum()
            if source != "premises"
            else result.areas["premises"].sum()
        )
        n_quarantined = (result.quarantine["source"] == source).sum()
        assert entry["linked"] == n_linked
        assert sum(entry["quarantined"].values()) == n_quarantined
        assert entry["records_in"] == n_linked + n_quarantined
    assert result.report["police"]["records_in"] == 8
    assert result.report["istv"]["records_in"] == 6
    assert set(result.quarantine["reason"]) <= set(QUARANTINE_REASONS)


def test_each_outcome_has_its_reason_row_and_field(tiny):
    raw, result = tiny
    police = _q(result, "police")
    assert police.loc[4, ["field", "value", "reason"]].tolist() == [
        "LSOA code", "E01000001", "unknown_area_code"]  # fmt: skip
    assert police.loc[6, "reason"] == "outside_all_areas"
    assert police.loc[7, "reason"] == "no_location"
    assert police.loc[8, ["field", "reason"]].tolist() == ["Date", "month_date_mismatch"]
    assert police.loc[9, ["field", "value", "reason"]].tolist() == [
        "Date", "2024-03-32", "invalid_date"]  # fmt: skip
    assert police["file"].str.endswith("2024-03-force-street.csv").all()
    istv = _q(result, "istv")
    assert istv.loc[4, "reason"] == "ambiguous_location"
    assert istv.loc[5, "reason"] == "no_location"
    assert istv.loc[6, "reason"] == "unmatched_location"
    assert istv.loc[7, ["field", "reason"]].tolist() == ["arrival_datetime", "invalid_date"]
    assert _q(result, "ambulance").loc[4, "reason"] == "outside_all_areas"
    assert _q(result, "exclusions").loc[3, "reason"] == "unknown_area_code"
    assert _q(result, "premises").loc[5, "reason"] == "outside_all_areas"


def test_linked_records_follow_the_contract(tiny):
    _, result = tiny
    records = result.records
    assert list(records.columns) == RECORD_COLUMNS
    assert str(records["date"].dtype) == "datetime64[ns]"
    assert not records.duplicated(["source", "record_id"]).any()
    by_id = records.set_index("record_id")
    assert by_id.loc["c4", ["area_code", "link_method"]].tolist() == ["SYN00002", "polygon"]
    assert by_id.loc["c1", "week_start"] == pd.Timestamp("2024-03-04")
    istv = records.loc[records["source"] == "istv"].set_index("area_code")
    assert istv.loc["SYN00001", "link_method"] == "gazetteer_exact"
    assert istv.loc["SYN00002", "link_method"] == "gazetteer_fuzzy"  # "mil lane"
    # The assault time is used when given: 22:00 on the 4th, arrival after 23:00.
    assert istv.loc["SYN00001", "date"] == pd.Timestamp("2024-03-04")
    assert records.loc[records["source"] == "ambulance", "is_violence"].tolist() == [True, False]


def test_areas_get_premises_and_adjacency_is_symmetric(tiny):
    _, result = tiny
    areas = result.areas.set_index("area_code")
    assert areas.loc["SYN00002", ["premises", "late_premises"]].tolist() == [2, 1]
    assert areas.loc["SYN00001", ["premises", "late_premises"]].tolist() == [1, 1]
    assert "audit_share_white" in areas.columns
    pairs = set(map(tuple, result.adjacency.to_numpy()))
    assert pairs == {("SYN00001", "SYN00002"), ("SYN00002", "SYN00001")}


def test_nearest_centroid_without_boundaries(tmp_path):
    raw = write_tiny_raw(tmp_path / "raw", boundaries=False)
    result = link_sources(raw, SourceParams(), LinkParams(nearest_max_km=1.0))
    amb = result.records.loc[result.records["source"] == "ambulance"]
    assert set(amb["link_method"]) == {"nearest"}
    assert amb["area_code"].tolist() == ["SYN00001", "SYN00002"]
    assert result.report["ambulance"]["quarantined"] == {"outside_all_areas": 1}


def test_write_linked_and_markdown_suppression(tiny, tmp_path):
    _, result = tiny
    files = write_linked(result, tmp_path / "linked")
    assert {f.name for f in files} >= {"records.parquet", "quarantine.csv", "areas.parquet",
                                       "adjacency.parquet", "linkage_report.json"}  # fmt: skip
    assert json.loads((tmp_path / "linked" / "linkage_report.json").read_text()) == result.report
    back = pd.read_parquet(tmp_path / "linked" / "records.parquet")
    pd.testing.assert_frame_equal(back, result.records, check_dtype=False)
    markdown = report_markdown(result.report, reference="test")
    assert "| istv | 6 | <5 |" in markdown
    assert suppress_small(0) == 0 and suppress_small(4) == "<5" and suppress_small(5) == 5


def test_no_sources_is_a_linkage_error(tmp_path):
    with pytest.raises(LinkageError, match="no source folders under"):
        link_sources(tmp_path, SourceParams(), LinkParams())
    assert "{raw_dir}" in MSG_NO_SOURCES


def test_derived_reference_quarantines_malformed_codes(tmp_path):
    from rawfiles import POLICE_HEADER, police_row, write_csv

    folder = tmp_path / "police"
    write_csv(folder / "2024-01" / "2024-01-f-street.csv", POLICE_HEADER,
              [police_row("a", month="2024-01", code="E01000001", lon="-1", lat="53"),
               police_row("b", month="2024-01", code="BADCODE", lon="-1", lat="53")])  # fmt: skip
    result = link_sources(tmp_path, SourceParams(), LinkParams(), layout=RawLayout(police=folder))
    assert result.areas["area_code"].tolist() == ["E01000001"]
    assert result.report["police"]["quarantined"] == {"unknown_area_code": 1}
    assert "derived" in result.reference


# Site S1 serves area A (its exact matches land there), S2 serves B.
# "Station Road" exists in both A and B: a city-wide fuzzy match is a tie.
_GAZ = pd.DataFrame(
    {
        "name": ["Mill Lane", "Quay Street", "Station Road", "Station Road", "Harbour Way"],
        "area_code": ["A", "B", "A", "B", "C"],
    }
)


def _match(texts, sites):
    site = None if sites is None else pd.Series(sites)
    return match_locations(pd.Series(texts), _GAZ, min_score=88, site=site)


def test_catchments_are_where_a_sites_exact_matches_land():
    keys = pd.DataFrame(
        {"site": ["S1", "S1", "S2", "S2", ""], "text": ["mill lane", "x", "quay street",
                                                       "station road", "harbour way"]}
    )  # fmt: skip
    exact = {"mill lane": ("A",), "quay street": ("B",), "station road": ("A", "B"),
             "harbour way": ("C",)}  # fmt: skip
    # an ambiguous exact match says nothing of the catchment; no site, no catchment
    assert catchments(keys, exact) == {"S1": frozenset({"A"}), "S2": frozenset({"B"})}


def test_fuzzy_match_searches_the_sites_catchment_first():
    texts = ["Mill Lane", "Quay St", "Staton Rd", "Staton Rd"]
    found = _match(texts, ["S1", "S2", "S1", "S2"])
    assert found["area_code"].tolist() == ["A", "B", "A", "B"]
    assert found["method"].tolist()[2:] == ["gazetteer_fuzzy", "gazetteer_fuzzy"]
    # without sites the same typo ties across A and B
    city_wide = _match(texts, None)
    assert city_wide["reason"].tolist()[2:] == ["ambiguous_location", "ambiguous_location"]


def test_fuzzy_match_outside_the_catchment_is_still_found_city_wide():
    found = _match(["Mill Lane", "Harbur Way", "Harbur Way"], ["S1", "S1", ""])
    assert found["area_code"].tolist() == ["A", "C", "C"]
    assert found["method"].tolist() == ["gazetteer_exact", "gazetteer_fuzzy", "gazetteer_fuzzy"]


def test_missing_text_or_site_is_no_location_or_city_wide():
    found = _match(["Mill Lane", None, "Harbur Way"], ["S1", "S1", None])
    assert found["reason"].tolist() == ["", "no_location", ""]
    assert found["area_code"].tolist() == ["A", "", "C"]


def test_exact_match_stays_city_wide_even_with_a_site():
    found = _match(["Mill Lane", "Station Road"], ["S1", "S1"])
    assert found["reason"].tolist() == ["", "ambiguous_location"]


def test_normalise_and_fuzzy_thresholds():
    text = pd.Series(["On or near St. John's  Rd", "HIGH-ST"])
    assert normalise_location(text).tolist() == ["street johns road", "high street"]
    gaz = pd.DataFrame({"name": ["Station Road"], "area_code": ["A"]})
    found = match_locations(pd.Series(["Staton Rd", "Stanley Grove"]), gaz, min_score=88)
    assert found["area_code"].tolist() == ["A", ""]
    assert found["reason"].tolist() == ["", "unmatched_location"]
