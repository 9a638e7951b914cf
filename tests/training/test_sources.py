from __future__ import annotations

import pandas as pd
import pytest
from rawfiles import ISTV_HEADER, POLICE_HEADER, police_row, write_csv

from training.errors import SchemaError
from training.sources._csv import MSG_EMPTY_FILE, MSG_MISSING_COLUMN
from training.sources.council import is_late, read_premises
from training.sources.istv import read_istv
from training.sources.police_uk import read_police

VIOLENT = ("Violence and sexual offences",)


def test_month_grain_without_date_column(tmp_path):
    write_csv(
        tmp_path / "2024-02" / "2024-02-f-street.csv",
        POLICE_HEADER,
        [
            police_row("x1", month="2024-02", code="SYN00001"),
            police_row("", month="2024-02", code="SYN00001", crime="Anti-social behaviour"),
        ],
    )
    records, quarantine = read_police(tmp_path, violent_crime_types=VIOLENT)
    assert quarantine.empty
    assert records["grain"].tolist() == ["month", "month"]
    assert records["date"].tolist() == [pd.Timestamp("2024-02-01")] * 2
    assert records["record_id"].tolist() == ["x1", "2024-02-f-street.csv:3"]
    assert records["is_violence"].tolist() == [True, False]


def test_missing_column_names_file_and_field(tmp_path):
    header = [c for c in POLICE_HEADER if c != "Crime type"]
    path = write_csv(tmp_path / "2024-02" / "2024-02-f-street.csv", header, [])
    with pytest.raises(SchemaError) as info:
        read_police(tmp_path, violent_crime_types=VIOLENT)
    assert info.value.file == str(path) and info.value.field == "Crime type"
    assert MSG_MISSING_COLUMN.split("{")[0] in str(info.value)


def test_empty_file_is_a_schema_error(tmp_path):
    path = tmp_path / "istv" / "SITE.csv"
    path.parent.mkdir()
    path.write_bytes(b"")
    with pytest.raises(SchemaError, match=MSG_EMPTY_FILE.replace("(", r"\(").replace(")", r"\)")):
        read_istv(path.parent)


def test_unreadable_csv_is_a_schema_error(tmp_path):
    path = tmp_path / "SITE.csv"
    path.write_text(",".join(ISTV_HEADER) + "\n" + "a,b,c,d,e,f,g,h,i\n")
    with pytest.raises(SchemaError, match="not a readable CSV"):
        read_istv(tmp_path)


def test_unparseable_dates_are_quarantined_with_line_numbers(tmp_path):
    # Row 3 spans two lines in the file, so the bad row after it is on line 5.
    path = tmp_path / "SITE.csv"
    path.write_text(
        ",".join(ISTV_HEADER) + "\n"
        "S,2024-01-01 10:00,,other,street,High Street\n"
        'S,2024-01-02 10:00,,other,street,"two\nlines"\n'
        "S,2024-13-40 10:00,,other,street,High Street\n"
        "S,2024-01-03 10:00,yesterday,other,street,High Street\n"
        "S,,never,other,street,High Street\n"
    )
    records, quarantine = read_istv(tmp_path)
    # an unreadable assault time is dated by the arrival time: only rows with neither go
    assert records["row"].tolist() == [2, 3, 6]
    assert records["rescue"].tolist() == ["", "", "dated_by_arrival_time"]
    assert quarantine[["row", "field", "value", "reason"]].values.tolist() == [
        [7, "arrival_datetime", "", "missing_value"],
        [5, "arrival_datetime", "2024-13-40 10:00", "invalid_date"],
    ]
    assert set(quarantine["file"]) == {str(path)}


def test_istv_reads_no_patient_fields(tmp_path):
    write_csv(tmp_path / "S.csv", [*ISTV_HEADER, "nhs_number"],
              [["S", "2024-01-01 10:00", "", "firearm", "street", "x", "123"]])  # fmt: skip
    records, _ = read_istv(tmp_path)
    assert "nhs_number" not in records.columns
    assert not records.astype(str).isin(["123"]).any().any()


def test_police_bad_coordinates_and_duplicates(tmp_path):
    write_csv(tmp_path / "2024-02" / "2024-02-f-street.csv", POLICE_HEADER,
              [police_row("a", month="2024-02", lon="-0.1", lat="95"),
               police_row("b", month="2024-02", lon="-0.1", lat=""),
               police_row("c", month="2024-02", code="SYN00001"),
               police_row("c", month="2024-02", code="SYN00001")])  # fmt: skip
    records, quarantine = read_police(tmp_path, violent_crime_types=VIOLENT)
    assert records["record_id"].tolist() == ["c"]
    got = quarantine.set_index("row")[["field", "reason"]].to_dict("index")
    assert got == {2: {"field": "Latitude", "reason": "invalid_coordinates"},
                   3: {"field": "Latitude", "reason": "invalid_coordinates"},
                   5: {"field": "Crime ID", "reason": "duplicate_id"}}  # fmt: skip


def test_premises_late_flag(tmp_path):
    closing = pd.Series(["00:00", "00:30", "05:59", "06:00", "23:30", "24:00"])
    assert is_late(closing).tolist() == [False, True, True, False, False, False]
    path = write_csv(tmp_path / "licensed_premises.csv",
                     ["premises_id", "name", "latitude", "longitude", "premises_type",
                      "latest_closing_hour"],
                     [["p1", "A", "51.5", "-0.1", "pub", "02:00"],
                      ["p2", "B", "51.5", "-0.1", "pub", "late"]])  # fmt: skip
    premises, quarantine = read_premises(path)
    assert premises["late"].tolist() == [True]
    assert quarantine[["row", "reason"]].values.tolist() == [[3, "invalid_value"]]


def test_every_schema_column_is_documented():
    from pathlib import Path

    from training.sources import ambulance, council, istv, police_uk

    doc = (Path(__file__).resolve().parents[2] / "docs" / "data-contract.md").read_text()
    schemas = [
        police_uk.POLICE_SCHEMA,
        istv.ISTV_SCHEMA,
        ambulance.AMBULANCE_SCHEMA,
        council.EXCLUSIONS_SCHEMA,
        council.EVICTIONS_SCHEMA,
        council.PREMISES_SCHEMA,
    ]
    for schema in schemas:
        for column in schema.columns:
            assert f"`{column}`" in doc, (schema.name, column)
            for check in schema.columns[column].checks:
                assert f"`{check.name}`" in doc
