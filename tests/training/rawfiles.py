"""Tiny raw-layer files written in tests (a 2 x 1 grid of 1 km squares)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

POLICE_HEADER = ["Crime ID", "Month", "Reported by", "Falls within", "Longitude", "Latitude",
                 "Location", "LSOA code", "LSOA name", "Crime type", "Last outcome category",
                 "Context"]  # fmt: skip
ISTV_HEADER = ["site_code", "arrival_datetime", "assault_datetime", "assault_method",
               "location_type", "location_description"]  # fmt: skip
# Two square areas side by side near (51.5, -0.1); SYN00001 west, SYN00002 east.
AREAS = [("SYN00001", -0.110, -0.100), ("SYN00002", -0.100, -0.090)]
LAT0, LAT1 = 51.500, 51.509


def police_uk_sample() -> Path:
    """Return the real police.uk download in ``../shared/data`` (fail when absent)."""
    import pytest

    repo = Path(__file__).resolve().parents[2]
    for base in (repo.parent / "shared", Path("/work/shared")):
        folder = base / "data" / "police-uk-sample"
        if folder.is_dir():
            return folder
    pytest.fail(f"police.uk sample not found next to {repo}")


def write_csv(path: Path, header: list[str], rows: list[list[str]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def police_row(crime_id="", month="2024-03", lon="", lat="", location="No Location",
               code="", crime="Violence and sexual offences", date=None) -> list[str]:  # fmt: skip
    row = [crime_id, month, "Force", "Force", lon, lat, location, code, "", crime, "", ""]
    return row if date is None else [*row, date]


def write_reference(ref: Path, *, boundaries: bool = True) -> None:
    write_csv(
        ref / "areas.csv",
        ["area_code", "area_name", "district", "latitude", "longitude", "area_km2",
         "population", "imd_decile", "audit_share_white", "audit_ethnic_band"],
        [[code, f"Area {i}", "D", str((LAT0 + LAT1) / 2), str((w + e) / 2), "0.7", "1500",
          str(3 + i), "0.5", "mixed"] for i, (code, w, e) in enumerate(AREAS)],
    )  # fmt: skip
    write_csv(ref / "adjacency.csv", ["area_code", "neighbour_code"], [["SYN00001", "SYN00002"]])
    write_csv(
        ref / "gazetteer.csv",
        ["name", "area_code", "kind"],
        [["High Street", "SYN00001", "street"], ["Mill Lane", "SYN00002", "street"],
         ["Church Road", "SYN00001", "street"], ["Church Road", "SYN00002", "street"],
         ["The Red Lion", "SYN00002", "venue"]],
    )  # fmt: skip
    if boundaries:
        features = [
            {
                "type": "Feature",
                "properties": {"area_code": code},
                "geometry": {
                    "type": "Polygon",
                    "coordinates": [[[w, LAT0], [e, LAT0], [e, LAT1], [w, LAT1], [w, LAT0]]],
                },
            }
            for code, w, e in AREAS
        ]
        (ref / "boundaries.geojson").write_text(
            json.dumps({"type": "FeatureCollection", "features": features})
        )


def write_tiny_raw(raw: Path, *, boundaries: bool = True) -> Path:
    """A raw layer with one of each linkage outcome; returns ``raw``."""
    write_reference(raw / "reference", boundaries=boundaries)
    write_csv(
        raw / "police" / "2024-03" / "2024-03-force-street.csv",
        [*POLICE_HEADER, "Date"],
        [
            police_row("c1", code="SYN00001", location="On or near High St", date="2024-03-04"),
            police_row("c2", code="SYN00001", crime="Burglary", date="2024-03-05"),
            police_row("c3", code="E01000001", date="2024-03-05"),  # unknown area code
            police_row("c4", lon="-0.095", lat="51.504", date="2024-03-06"),  # polygon east
            police_row("c5", lon="-0.300", lat="51.700", date="2024-03-06"),  # outside
            police_row("", crime="Anti-social behaviour", date="2024-03-07"),  # no location
            police_row("c7", code="SYN00002", date="2024-04-01"),  # month/date mismatch
            police_row("c8", code="SYN00002", date="2024-03-32"),  # invalid date
        ],
    )
    write_csv(
        raw / "istv" / "SITE1.csv",
        ISTV_HEADER,
        [
            ["SITE1", "2024-03-04 23:10", "2024-03-04 22:00", "knife/sharp object", "street",
             "HIGH ST."],
            ["SITE1", "2024-03-05 01:10", "", "body part", "street", "on or near mil lane"],
            ["SITE1", "2024-03-05 01:10", "", "body part", "street", "Church Rd"],
            ["SITE1", "2024-03-05 02:00", "", "other", "home", "unknown"],
            ["SITE1", "2024-03-05 03:00", "", "other", "street", "Zzyzx Boulevard"],
            ["SITE1", "not a date", "", "other", "street", "High Street"],
        ],
    )  # fmt: skip
    write_csv(
        raw / "ambulance" / "callouts.csv",
        ["incident_id", "incident_datetime", "latitude", "longitude", "category"],
        [["a1", "2024-03-04 22:05", "51.503", "-0.105", "assault"],
         ["a2", "2024-03-06 10:00", "51.503", "-0.095", "fall"],
         ["a3", "2024-03-06 11:00", "52.900", "-0.095", "assault"]],
    )  # fmt: skip
    council = raw / "council"
    write_csv(
        council / "school_exclusions.csv",
        ["area_code", "date", "exclusion_type"],
        [["SYN00001", "2024-03-04", "suspension"], ["SYN00009", "2024-03-04", "permanent"]],
    )
    write_csv(council / "evictions.csv", ["area_code", "date"], [["SYN00002", "2024-03-08"]])
    write_csv(
        council / "licensed_premises.csv",
        ["premises_id", "name", "latitude", "longitude", "premises_type", "latest_closing_hour"],
        [["p1", "The Red Lion", "51.504", "-0.095", "pub", "01:30"],
         ["p2", "Cafe", "51.504", "-0.095", "cafe", "23:00"],
         ["p3", "Club", "51.504", "-0.105", "nightclub", "05:00"],
         ["p4", "Far", "53.0", "-0.105", "pub", "00:00"]],
    )  # fmt: skip
    return raw
