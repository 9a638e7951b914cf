from __future__ import annotations

import pandas as pd
import pytest

from training.errors import LinkageError
from training.panel import PANEL_COLUMNS, build_panel, read_panel_layer, write_panel

AREAS = pd.DataFrame({"area_code": ["SYN00001", "SYN00002", "SYN00003"]})


def _rec(source, area, date, *, violence=True, category="x", grain="day", rid=None):
    return {"source": source, "record_id": rid or f"{source}{area}{date}{category}",
            "area_code": area, "date": pd.Timestamp(date), "grain": grain,
            "category": category, "is_violence": violence}  # fmt: skip


def _records(rows):
    return pd.DataFrame([dict(r, record_id=f"r{i}") for i, r in enumerate(rows)])


def test_violence_is_deduplicated_by_area_and_day():
    records = _records([
        _rec("police", "SYN00001", "2024-03-04"), _rec("police", "SYN00001", "2024-03-04"),
        _rec("istv", "SYN00001", "2024-03-04", category="knife/sharp object"),
        _rec("istv", "SYN00001", "2024-03-05"),  # another day: not a duplicate
        _rec("police", "SYN00002", "2024-03-06", violence=False),
        _rec("ambulance", "SYN00002", "2024-03-06"),
        _rec("exclusions", "SYN00003", "2024-03-12", violence=False),
        _rec("evictions", "SYN00003", "2024-03-13", violence=False),
    ])  # fmt: skip
    panel = build_panel(records, AREAS).set_index(["area_code", "week_start"])
    week = pd.Timestamp("2024-03-04")
    one = panel.loc[("SYN00001", week)]
    assert one[["police_violence", "ae_assault", "ae_weapon", "violence"]].tolist() == [2, 2, 1, 3]
    two = panel.loc[("SYN00002", week)]
    assert two[["police_other", "ambulance_assault", "violence"]].tolist() == [1, 1, 0]
    later = panel.loc[("SYN00003", week + pd.Timedelta(weeks=1))]
    assert later[["exclusions", "evictions"]].tolist() == [1, 1]


def test_full_grid_with_explicit_zeros():
    records = _records([_rec("police", "SYN00001", "2024-03-04"),
                        _rec("police", "SYN00002", "2024-03-27")])  # fmt: skip
    panel = build_panel(records, AREAS)
    assert list(panel.columns) == PANEL_COLUMNS
    weeks = pd.date_range("2024-03-04", "2024-03-25", freq="7D")
    assert len(panel) == len(AREAS) * len(weeks)
    assert set(panel["week_start"]) == set(weeks)
    assert (panel["week_start"].dt.weekday == 0).all()
    assert (panel.drop(columns=["area_code", "week_start"]).dtypes == "float64").all()
    assert panel["violence"].sum() == 2
    assert panel.loc[panel["area_code"] == "SYN00003", "violence"].eq(0).all()


def test_month_grain_is_spread_by_days():
    # March 2024 has 31 days; Friday 1st-Sunday 3rd fall in the week of 26 Feb.
    records = _records([_rec("police", "SYN00001", "2024-03-01", grain="month")] * 31)
    panel = build_panel(records, AREAS)
    mine = panel.loc[panel["area_code"] == "SYN00001"].set_index("week_start")["police_violence"]
    assert mine.index.min() == pd.Timestamp("2024-02-26")
    assert mine.index.max() == pd.Timestamp("2024-03-25")
    assert mine.loc["2024-02-26"] == pytest.approx(3)
    assert mine.loc["2024-03-04"] == pytest.approx(7)
    assert mine.sum() == pytest.approx(31)


def test_unknown_area_is_an_error():
    with pytest.raises(LinkageError, match="missing from the areas frame"):
        build_panel(_records([_rec("police", "SYN00009", "2024-03-04")]), AREAS)


def test_panel_roundtrip(tmp_path):
    panel = build_panel(_records([_rec("istv", "SYN00001", "2024-03-04")]), AREAS)
    adjacency = pd.DataFrame({"area_code": ["SYN00001"], "neighbour_code": ["SYN00002"]})
    write_panel(panel, tmp_path, areas=AREAS, adjacency=adjacency)
    back, areas, adj = read_panel_layer(tmp_path)
    pd.testing.assert_frame_equal(back, panel, check_dtype=False)
    assert back["week_start"].dtype == "datetime64[ns]"
    assert areas["area_code"].tolist() == AREAS["area_code"].tolist() and len(adj) == 1
