"""Partners' real formats: day-first dates, receptionists' free text, edge and swapped points."""

from __future__ import annotations

import csv
import shutil

import pandas as pd
import pytest
from rawfiles import ISTV_HEADER, write_csv, write_reference

from training.config import LinkParams, SourceParams
from training.link.geo import area_reach_km
from training.link.linker import RESCUE_SWAPPED, RawLayout, link_sources
from training.sources._dates import parse_datetimes
from training.sources.istv import read_istv


def _arithmetic_holds(report: dict) -> None:
    for source, entry in report.items():
        assert entry["records_in"] == entry["linked"] + sum(entry["quarantined"].values()), source


def _rewrite_dates(path, out, fmt: str, *, every: int = 1) -> None:
    """Copy an ISTV file with its dates rewritten as ``fmt`` (every ``every``-th row)."""
    with path.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    for i, row in enumerate(rows):
        if i % every:
            continue
        for column in ("arrival_datetime", "assault_datetime"):
            if row[column]:
                row[column] = pd.Timestamp(row[column]).strftime(fmt)
    with out.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


@pytest.fixture(scope="module")
def iso_istv(synthetic_city):
    return link_sources(
        synthetic_city, SourceParams(), LinkParams(), layout=_istv_layout(synthetic_city)
    )


def _istv_layout(raw, istv=None):
    return RawLayout(istv=istv or raw / "istv", reference=raw / "reference")


def test_the_tiny_citys_ae_files_written_day_first_link_as_the_iso_ones(
    synthetic_city, iso_istv, tmp_path
):
    folder = tmp_path / "istv"
    folder.mkdir()
    for path in sorted((synthetic_city / "istv").glob("*.csv")):
        _rewrite_dates(path, folder / path.name, "%d/%m/%Y %H:%M")
    result = link_sources(
        synthetic_city, SourceParams(), LinkParams(), layout=_istv_layout(synthetic_city, folder)
    )
    uk, iso = result.report["istv"], iso_istv.report["istv"]
    assert uk["linked"] == iso["linked"] > 3000
    assert "invalid_date" not in uk["quarantined"]
    assert uk["rescued_by"]["day_first_date"] == uk["linked"]
    pd.testing.assert_series_equal(
        result.records["date"].reset_index(drop=True),
        iso_istv.records["date"].reset_index(drop=True),
    )
    _arithmetic_holds(result.report)


def test_a_file_mixing_iso_and_day_first_rows_reads_each_by_its_form(
    synthetic_city, iso_istv, tmp_path
):
    folder = tmp_path / "istv"
    folder.mkdir()
    for path in sorted((synthetic_city / "istv").glob("*.csv")):
        _rewrite_dates(path, folder / path.name, "%d-%m-%Y %H:%M:%S", every=3)
    result = link_sources(
        synthetic_city, SourceParams(), LinkParams(), layout=_istv_layout(synthetic_city, folder)
    )
    assert result.report["istv"]["linked"] == iso_istv.report["istv"]["linked"]
    assert (result.records["date"].to_numpy() == iso_istv.records["date"].to_numpy()).all()
    rescued = result.report["istv"]["rescued_by"]["day_first_date"]
    assert 0.25 * result.report["istv"]["linked"] < rescued < 0.42 * result.report["istv"]["linked"]


def test_an_iso_date_is_never_read_day_first_and_month_first_is_a_setting():
    text = pd.Series(["2023-01-02", "2023-01-02 10:00:30", "02/01/2023", "01/13/2023"])
    day_first = parse_datetimes(text)
    month_first = parse_datetimes(text, month_first=True)
    assert day_first.dt.strftime("%Y-%m-%d").tolist()[:3] == ["2023-01-02"] * 3
    assert pd.isna(day_first.iat[3])  # no 13th month: unreadable, not guessed
    assert month_first.dt.strftime("%Y-%m-%d").tolist() == [
        "2023-01-02", "2023-01-02", "2023-02-01", "2023-01-13",
    ]  # fmt: skip


def test_month_first_partner_is_read_month_first_from_params(tmp_path):
    raw = tmp_path / "raw"
    write_reference(raw / "reference")
    write_csv(raw / "istv" / "S.csv", ISTV_HEADER,
              [["S", "03/14/2024 21:40", "", "other", "street", "High Street"]])  # fmt: skip
    refused = link_sources(raw, SourceParams(), LinkParams())
    assert refused.report["istv"]["quarantined"] == {"invalid_date": 1}
    read = link_sources(raw, SourceParams(month_first=("istv",)), LinkParams())
    assert read.records["date"].tolist() == [pd.Timestamp("2024-03-14")]


def test_each_timestamp_dates_the_record_when_the_other_is_unreadable(tmp_path):
    write_csv(
        tmp_path / "S.csv",
        ISTV_HEADER,
        [["S", "14/03/2023 21:40", "", "other", "street", "x"],
         ["S", "garbled", "14/03/2023 20:55", "other", "street", "x"],
         ["S", "2023-03-15 01:00", "unknown", "other", "street", "x"],
         ["S", "garbled", "unknown", "other", "street", "x"]],
    )  # fmt: skip
    records, quarantine = read_istv(tmp_path)
    assert records["date"].tolist() == [pd.Timestamp("2023-03-14")] * 2 + [
        pd.Timestamp("2023-03-15")
    ]
    assert records["rescue"].tolist() == [
        "day_first_date", "dated_by_assault_time", "dated_by_arrival_time",
    ]  # fmt: skip
    assert quarantine[["row", "reason"]].values.tolist() == [[5, "invalid_date"]]


PREFIXED = {
    "location_outside": ["o/s High Street", "OUTSIDE MILL LANE", "outside of Mill Lane"],
    "location_near": ["near Mill Lane", "Nr. Mill Ln"],
    "location_opposite": ["opp Mill Lane", "Opposite High Street"],
    "location_behind": ["behind Mill Lane"],
    "location_by": ["by Mill Lane"],
    "location_in": ["in Mill Lane"],
    "location_at": ["at Mill Ln"],
    "location_junction": ["junction of Mill Lane and Church Road", "j/o Mill Ln/Church Rd"],
    "location_corner": ["corner of High St & Church Road"],
    "location_venue_pub": ["Red Lion pub"],
}


def test_free_text_with_each_prefix_links_and_each_rule_is_counted(tmp_path):
    raw = tmp_path / "raw"
    write_reference(raw / "reference")
    texts = [t for group in PREFIXED.values() for t in group]
    write_csv(raw / "istv" / "S.csv", ISTV_HEADER,
              [["", "2024-03-04 10:00", "", "other", "street", t] for t in texts])  # fmt: skip
    result = link_sources(raw, SourceParams(), LinkParams())
    report = result.report["istv"]
    assert report["linked"] == len(texts), result.quarantine
    assert report["rescued_by"] == {rule: len(group) for rule, group in PREFIXED.items()}
    where = dict(zip(texts, result.records["area_code"], strict=True))
    assert where["j/o Mill Ln/Church Rd"] == "SYN00002"  # the first street named
    assert where["corner of High St & Church Road"] == "SYN00001"
    assert where["Red Lion pub"] == "SYN00002"  # the gazetteer's "The Red Lion"
    _arithmetic_holds(result.report)


def test_a_text_that_matched_before_is_not_counted_as_rescued(tmp_path):
    raw = tmp_path / "raw"
    write_reference(raw / "reference")
    write_csv(raw / "istv" / "S.csv", ISTV_HEADER,
              [["", "2024-03-04 10:00", "", "other", "street", t]
               for t in ("The Red Lion", "On or near High Street", "at High Street")])  # fmt: skip
    report = link_sources(raw, SourceParams(), LinkParams()).report["istv"]
    # "at high street" is within the fuzzy score of "high street" without the rule
    assert report["linked"] == 3 and report["rescued_by"] == {}


AMBULANCE_HEADER = ["incident_id", "incident_datetime", "latitude", "longitude", "category"]


def _ambulance_raw(tmp_path, rows, *, km2: str = "0.7"):
    raw = tmp_path / "raw"
    write_reference(raw / "reference", boundaries=False)
    areas = raw / "reference" / "areas.csv"
    areas.write_text(areas.read_text().replace(",0.7,", f",{km2},"))
    write_csv(raw / "ambulance" / "callouts.csv", AMBULANCE_HEADER, rows)
    return raw


def test_a_point_inside_a_large_rural_area_links_beyond_the_old_constant(tmp_path):
    # 2.2 km north of SYN00001's centroid (51.5045, -0.105): beyond the old 1.5 km.
    north = str(51.5045 + 2.2 / 111.32)
    rows = [["r1", "2024-03-04 10:00", north, "-0.105", "assault"]]
    rural = link_sources(_ambulance_raw(tmp_path / "a", rows, km2="12.0"), SourceParams(),
                         LinkParams())  # fmt: skip
    assert rural.records["area_code"].tolist() == ["SYN00001"]
    urban = link_sources(_ambulance_raw(tmp_path / "b", rows), SourceParams(), LinkParams())
    assert urban.report["ambulance"]["quarantined"] == {"outside_all_areas": 1}
    reach = area_reach_km(pd.DataFrame({"area_km2": [12.0, 0.7, None]}), LinkParams())
    assert reach.tolist() == pytest.approx([2.93, 0.708, 1.5], abs=0.01)


def test_swapped_coordinates_are_repaired_and_counted_never_silently(tmp_path):
    rows = [["s1", "2024-03-04 10:00", "-0.105", "51.503", "assault"],
            ["s2", "2024-03-04 11:00", "51.503", "-0.095", "assault"],
            ["s3", "2024-03-04 12:00", "-3.0", "55.0", "assault"]]  # fmt: skip
    result = link_sources(_ambulance_raw(tmp_path, rows), SourceParams(), LinkParams())
    report = result.report["ambulance"]
    assert result.records["area_code"].tolist() == ["SYN00001", "SYN00002"]
    assert report["rescued_by"] == {RESCUE_SWAPPED: 1}
    assert report["quarantined"] == {"outside_all_areas": 1}
    _arithmetic_holds(result.report)


def test_the_linkage_report_names_rescues_in_markdown(tmp_path):
    from training.link.report import report_markdown

    rows = [[f"s{i}", "04/03/2024 10:00", "-0.105", "51.503", "assault"] for i in range(6)]
    result = link_sources(_ambulance_raw(tmp_path, rows), SourceParams(), LinkParams())
    text = report_markdown(result.report, reference="x")
    assert f"day_first_date 6, {RESCUE_SWAPPED} 6" in text
    shutil.rmtree(tmp_path / "raw")
